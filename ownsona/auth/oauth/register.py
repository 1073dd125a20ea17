"""`POST /oauth/register`: RFC 7591 dynamic client registration, rate-limited and capped."""

from __future__ import annotations

import json
import secrets

import structlog
from aiohttp import web

from ownsona.auth.oauth.clients import Client, ClientMetadataError, parse_metadata, register_client
from ownsona.auth.oauth.crypto import digest, new_secret
from ownsona.auth.oauth.httputil import NO_STORE, json_response, oauth_error, remote_address
from ownsona.auth.oauth.state import OAUTH_STATE_KEY
from ownsona.auth.oauth.urls import redirect_host

log = structlog.get_logger("ownsona.oauth")

MAX_BODY_BYTES = 16 * 1024


def new_client_id() -> str:
    """A registered client's public id. Hex after a fixed prefix, so it never begins with '-' and an
    operator can pass it to `ownsona oauth revoke ID` as it is (url-safe base64 sometimes does)."""
    return "dcr-" + secrets.token_hex(16)


async def post_register(request: web.Request) -> web.Response:
    state = request.app[OAUTH_STATE_KEY]
    address = remote_address(request, state.settings)
    wait = state.dcr_limiter.blocked_for(address)
    if wait:
        log.warning("oauth_registration_rejected", remote=address, reason="rate_limited")
        return oauth_error("temporarily_unavailable", "too many registrations from this address; retry later",
                           status=429, headers={"Retry-After": str(int(wait) + 1)})
    try:
        raw = await request.content.read(MAX_BODY_BYTES + 1)
        if len(raw) > MAX_BODY_BYTES:
            raise ClientMetadataError("invalid_client_metadata", "the registration request is too large")
        try:
            body = json.loads(raw)
        except ValueError:
            raise ClientMetadataError("invalid_client_metadata", "the body must be JSON") from None
        metadata = parse_metadata(body, state.allowlist)
    except ClientMetadataError as exc:
        log.info("oauth_registration_rejected", remote=address, reason=exc.error)
        return oauth_error(exc.error, exc.description)

    state.dcr_limiter.hit(address)
    now = state.now()
    secret = None if metadata["auth_method"] == "none" else new_secret()
    client = Client(
        client_id=new_client_id(), source="dcr", created_at=now,
        secret_hash=digest(secret) if secret else None, **metadata,
    )
    stored = await state.db.write(lambda conn: register_client(conn, client, state.settings.oauth_dcr_max_clients, now))
    if not stored:
        log.warning("oauth_registration_rejected", remote=address, reason="client_cap_reached")
        return oauth_error("temporarily_unavailable", "this server has reached its client limit", status=429)
    log.info("oauth_client_registered", remote=address, client_id=client.client_id, client_name=client.client_name,
             auth_method=client.auth_method, redirect_hosts=sorted({redirect_host(u) for u in client.redirect_uris}))
    response = {
        "client_id": client.client_id,
        "client_id_issued_at": now,
        "client_name": client.client_name,
        "redirect_uris": list(client.redirect_uris),
        "grant_types": list(client.grant_types),
        "response_types": ["code"],
        "token_endpoint_auth_method": client.auth_method,
        "scope": client.scope,
    }
    if secret:
        response.update(client_secret=secret, client_secret_expires_at=0)
    return json_response(response, status=201, headers=NO_STORE)
