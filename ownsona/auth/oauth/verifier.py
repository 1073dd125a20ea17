"""The resource-server side: turn an OAuth access token presented at /mcp into a Principal.

Verification is in-process against the key ring (no JWKS fetch over the network), then one
indexed read confirms the grant and client are not revoked, so revocation takes effect at once.
A rejection's reason is bound into the request's log context, so the auth middleware's single
`auth_failed` event says why, without a second event and without the token.
"""

from __future__ import annotations

import structlog

from ownsona.auth.oauth.access_tokens import TokenRejected, check
from ownsona.auth.oauth.grants import grant_is_live
from ownsona.auth.oauth.state import OAuthState
from ownsona.auth.principal import Principal


class AccessTokenVerifier:
    """Checks signature, alg allow-list, typ, iss, aud, exp/nbf, then the grant's liveness."""

    def __init__(self, state: OAuthState) -> None:
        self._state = state

    async def verify(self, bearer: str) -> Principal | None:
        state = self._state
        if state.keyring is None:
            return None
        try:
            claims = check(bearer, state.keyring, issuer=state.issuer, audience=state.mcp_url, now=state.now())
        except TokenRejected as exc:
            structlog.contextvars.bind_contextvars(oauth_rejected=str(exc))
            return None
        live = await state.db.read(lambda conn: grant_is_live(conn, claims.grant_id, claims.client_id))
        if not live:
            structlog.contextvars.bind_contextvars(oauth_rejected="revoked")
            return None
        return Principal(user_id=claims.user_id, credential_name=f"oauth:{claims.client_id}",
                         client_id=claims.client_id, scopes=claims.scopes)
