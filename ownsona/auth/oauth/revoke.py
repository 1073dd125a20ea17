"""`POST /oauth/revoke` (RFC 7009): a refresh or access token ends its whole grant.

Ending the grant rather than the single token is deliberate: a client that says "forget this
token" means "sign me out", and the grant's other tokens would otherwise live on. Unknown,
expired or foreign tokens get the same 200, so the endpoint reveals nothing about them.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from ownsona.auth.oauth.access_tokens import TokenRejected, check
from ownsona.auth.oauth.client_auth import ClientAuthFailed, authenticate_client
from ownsona.auth.oauth.grants import grant_of_refresh_token, revoke_grant
from ownsona.auth.oauth.httputil import CORS, NO_STORE, oauth_error, remote_address
from ownsona.auth.oauth.state import OAUTH_STATE_KEY, OAuthState

log = structlog.get_logger("ownsona.oauth")


async def _grant_of(state: OAuthState, token: str) -> tuple[str, str] | None:
    """(grant_id, client_id) for a refresh token or a correctly signed access token (expired or not)."""
    if token.count(".") == 2 and state.keyring is not None:
        try:
            claims = check(token, state.keyring, issuer=state.issuer, audience=state.mcp_url, now=state.now(),
                           check_time=False)
        except TokenRejected:
            return None
        return claims.grant_id, claims.client_id
    return await state.db.read(lambda conn: grant_of_refresh_token(conn, token))


async def post_revoke(request: web.Request) -> web.Response:
    state = request.app[OAUTH_STATE_KEY]
    form = await request.post()
    try:
        client = await authenticate_client(request, form, state)
    except ClientAuthFailed as exc:
        return exc.response()
    token = form.get("token")
    if not isinstance(token, str) or not token:
        return oauth_error("invalid_request", "token is required")
    found = await _grant_of(state, token)
    if found is not None and found[1] == client.client_id:
        grant_id = found[0]
        now = state.now()
        if await state.db.write(lambda conn: revoke_grant(conn, grant_id, "revoked by client", now)):
            log.info("oauth_token_revoked", remote=remote_address(request, state.settings),
                     client_id=client.client_id, grant_id=grant_id)
    return web.Response(status=200, headers={**NO_STORE, **CORS})
