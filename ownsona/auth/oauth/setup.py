"""Wiring: `setup_oauth` adds the authorization server's routes to the app and returns the
verifier the auth middleware consults for bearers that are not static tokens.

All public routes live under `/oauth/` and `/.well-known/`, outside the middleware's protected
paths. Start-up work (owner-password check, signing keys, the pruning task) is an `on_startup`
hook, which aiohttp runs after every cleanup context: the store is open by then whichever order
the app registered things in.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import structlog
from aiohttp import web

from ownsona.auth.oauth import authorize, metadata, register, revoke, token_endpoint
from ownsona.auth.oauth.access_tokens import CLOCK_SKEW_SECONDS
from ownsona.auth.oauth.clients import SCOPES_SUPPORTED
from ownsona.auth.oauth.grants import prune
from ownsona.auth.oauth.httputil import preflight
from ownsona.auth.oauth.keys import load_keyring
from ownsona.auth.oauth.password import owner_password_hash
from ownsona.auth.oauth.state import OAUTH_STATE_KEY, OAuthState
from ownsona.auth.oauth.verifier import AccessTokenVerifier
from ownsona.config import ConfigError, Settings
from ownsona.db import Database

log = structlog.get_logger("ownsona.oauth")

PRUNE_INTERVAL_SECONDS = 600


def challenge_params(settings: Settings) -> dict[str, str]:
    """Extra `WWW-Authenticate` parameters for /mcp's 401 when OAuth is on: where the metadata is
    (RFC 9728 §5.1) and which scope to ask for (MCP 2025-11-25 makes clients follow it)."""
    if not settings.oauth or not settings.public_url:
        return {}
    return {"resource_metadata": f"{settings.public_url}/.well-known/oauth-protected-resource",
            "scope": " ".join(SCOPES_SUPPORTED)}


async def check_oauth_ready(settings: Settings, db: Database) -> None:
    """Refuse to start an authorization server nobody can sign in to. `db` must be open."""
    if settings.oauth and await owner_password_hash(db) is None:
        raise ConfigError(
            "OWNSONA_OAUTH is on but no owner password is set; set one with `ownsona password` "
            "(same OWNSONA_HOME / environment as the server), then start again"
        )


def setup_oauth(app: web.Application, settings: Settings, db: Database, *,
                cimd_ssl: ssl.SSLContext | None = None) -> AccessTokenVerifier:
    """Add discovery, registration, authorize, token, revoke and JWKS routes; return the verifier.

    `cimd_ssl` lets a deployment (or a test) trust a private CA when fetching metadata documents.
    """
    state = OAuthState.from_settings(settings, db, cimd_ssl)
    app[OAUTH_STATE_KEY] = state
    router = app.router
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp"):
        router.add_get(path, metadata.get_protected_resource)
        router.add_route("OPTIONS", path, preflight)
    for path in ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"):
        router.add_get(path, metadata.get_authorization_server)
        router.add_route("OPTIONS", path, preflight)
    router.add_get("/oauth/jwks", metadata.get_jwks)
    router.add_get("/oauth/authorize", authorize.get_authorize)
    router.add_post("/oauth/authorize", authorize.post_authorize)
    for path, handler in (("/oauth/token", token_endpoint.post_token), ("/oauth/revoke", revoke.post_revoke)) + (
        (("/oauth/register", register.post_register),) if settings.oauth_dcr else ()
    ):
        router.add_post(path, handler)
        router.add_route("OPTIONS", path, preflight)
    app.on_startup.append(_start)
    app.on_shutdown.append(_stop)
    return AccessTokenVerifier(state)


async def _start(app: web.Application) -> None:
    state = app[OAUTH_STATE_KEY]
    await check_oauth_ready(state.settings, state.db)
    keep = state.settings.oauth_access_token_ttl_seconds + CLOCK_SKEW_SECONDS
    state.keyring = await load_keyring(state.db, state.settings.home, keep)
    log.info("oauth_ready", issuer=state.issuer, kid=state.keyring.current.kid,
             dcr=state.settings.oauth_dcr, cimd=state.settings.oauth_cimd)
    state.pruner = asyncio.create_task(_prune_forever(state))


async def _stop(app: web.Application) -> None:
    """Runs before the cleanup contexts close the store, so no prune is cut off mid-write."""
    state = app[OAUTH_STATE_KEY]
    if state.pruner is not None:
        state.pruner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.pruner
        state.pruner = None
    await state.cimd.close()


async def _prune_forever(state: OAuthState) -> None:
    while True:
        now = state.now()
        try:
            await state.db.write(lambda conn: prune(conn, now))
        except Exception:  # noqa: BLE001 - pruning is housekeeping; the next round retries
            log.exception("oauth_prune_failed")
        await asyncio.sleep(PRUNE_INTERVAL_SECONDS)
