"""`POST /oauth/token`: authorization-code exchange and refresh-token rotation."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from ownsona.auth.oauth.access_tokens import mint
from ownsona.auth.oauth.client_auth import ClientAuthFailed, authenticate_client
from ownsona.auth.oauth.grants import Issued, Refused, exchange_code, use_refresh_token
from ownsona.auth.oauth.httputil import NO_STORE, json_response, oauth_error, remote_address
from ownsona.auth.oauth.state import OAUTH_STATE_KEY, OAuthState
from ownsona.auth.oauth.urls import canonical_resource

log = structlog.get_logger("ownsona.oauth")

GRANT_TYPES = ("authorization_code", "refresh_token")


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value if isinstance(value, str) and value else None


async def post_token(request: web.Request) -> web.Response:
    state = request.app[OAUTH_STATE_KEY]
    form = await request.post()
    grant_type = _text(form, "grant_type")
    if grant_type is None:
        return oauth_error("invalid_request", "grant_type is required")
    if grant_type not in GRANT_TYPES:
        return oauth_error("unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
    try:
        client = await authenticate_client(request, form, state)
    except ClientAuthFailed as exc:
        log.info("oauth_token_refused", remote=remote_address(request, state.settings), error="invalid_client")
        return exc.response()
    if grant_type not in client.grant_types:
        return oauth_error("unauthorized_client", "this client may not use that grant type")
    resource = None
    if "resource" in form:
        resource = canonical_resource(str(form["resource"]), state.issuer, state.mcp_url)
        if resource is None:
            return oauth_error("invalid_target", "resource must be this server's MCP URL")

    now = state.now()
    outcome: Issued | Refused
    if grant_type == "authorization_code":
        code, verifier = _text(form, "code"), _text(form, "code_verifier")
        if code is None or verifier is None:
            return oauth_error("invalid_request", "code and code_verifier are required")
        redirect_uri = _text(form, "redirect_uri")
        issue_refresh = "refresh_token" in client.grant_types
        outcome = await state.db.write(lambda conn: exchange_code(
            conn, code=code, client_id=client.client_id, redirect_uri=redirect_uri, verifier=verifier,
            resource=resource, issue_refresh=issue_refresh, lifetimes=state.lifetimes, now=now))
    else:
        token = _text(form, "refresh_token")
        if token is None:
            return oauth_error("invalid_request", "refresh_token is required")
        scope = _text(form, "scope")
        outcome = await state.db.write(lambda conn: use_refresh_token(
            conn, token=token, client_id=client.client_id, scope=scope, resource=resource,
            lifetimes=state.lifetimes, now=now))
    return _respond(request, state, grant_type, outcome, now)


def _respond(request: web.Request, state: OAuthState, grant_type: str, outcome: Issued | Refused, now: int
             ) -> web.Response:
    address = remote_address(request, state.settings)
    if isinstance(outcome, Refused):
        if outcome.event:
            log.warning(outcome.event, remote=address, grant_id=outcome.grant_id, action="grant revoked")
        else:
            log.info("oauth_token_refused", remote=address, grant_type=grant_type, error=outcome.error)
        return oauth_error(outcome.error, outcome.description)
    keyring = state.keyring
    if keyring is None:
        return oauth_error("temporarily_unavailable", "the server is starting", status=503)
    ttl = state.settings.oauth_access_token_ttl_seconds
    body: dict[str, Any] = {
        "access_token": mint(keyring, issuer=state.issuer, issued=outcome, ttl=ttl, now=now),
        "token_type": "Bearer",
        "expires_in": ttl,
        "scope": outcome.scope,
    }
    if outcome.refresh_token:
        body["refresh_token"] = outcome.refresh_token
    log.info("oauth_token_issued", remote=address, grant_type=grant_type, client_id=outcome.client_id,
             grant_id=outcome.grant_id)
    return json_response(body, headers=NO_STORE)
