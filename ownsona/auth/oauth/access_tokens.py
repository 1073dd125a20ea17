"""Access tokens: RFC 9068-shaped JWTs, minted with the current key and checked against the ring.

Claims: iss, sub (the user), aud (the MCP URL), exp, iat, nbf, jti, client_id, scope, and `sid`,
the grant id, by which revoking a grant ends its access tokens before they expire.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import GuestProtocol, Key

from ownsona.auth.oauth.grants import Issued
from ownsona.auth.oauth.keys import ALGORITHM, KeyRing

TOKEN_TYPE = "at+jwt"
CLOCK_SKEW_SECONDS = 60
MAX_TOKEN_LENGTH = 4096


def mint(keyring: KeyRing, *, issuer: str, issued: Issued, ttl: int, now: int) -> str:
    header = {"alg": ALGORITHM, "kid": keyring.current.kid, "typ": TOKEN_TYPE}
    claims = {
        "iss": issuer,
        "sub": issued.user_id,
        "aud": issued.resource,
        "exp": now + ttl,
        "iat": now,
        "nbf": now,
        "jti": uuid.uuid4().hex,
        "client_id": issued.client_id,
        "scope": issued.scope,
        "sid": issued.grant_id,
    }
    return jwt.encode(header, claims, keyring.current, algorithms=[ALGORITHM])


class TokenRejected(Exception):
    """Why a bearer is not a valid access token; the reason is a fixed word, safe to log."""


@dataclass(frozen=True)
class TokenClaims:
    user_id: str
    client_id: str
    grant_id: str
    scopes: tuple[str, ...]
    exp: int


def _key_lookup(keyring: KeyRing) -> Any:
    keys = {key.kid: key for key in keyring.published.keys}

    def lookup(obj: GuestProtocol) -> Key:
        kid = obj.headers().get("kid")
        if not kid:
            raise TokenRejected("missing_kid")
        key = keys.get(kid)
        if key is None:
            raise TokenRejected("unknown_kid")
        return key

    return lookup


def _audience_matches(aud: Any, expected: str) -> bool:
    if isinstance(aud, str):
        return aud == expected
    return isinstance(aud, list) and expected in aud


def check(bearer: str, keyring: KeyRing, *, issuer: str, audience: str, now: int, check_time: bool = True
          ) -> TokenClaims:
    """Signature (ES256 only, known kid), type, issuer, audience and times; raises TokenRejected."""
    if len(bearer) > MAX_TOKEN_LENGTH or bearer.count(".") != 2:
        raise TokenRejected("malformed")
    try:
        token = jwt.decode(bearer, _key_lookup(keyring), algorithms=[ALGORITHM])
    except TokenRejected:
        raise
    except (JoseError, ValueError, KeyError, TypeError):
        raise TokenRejected("bad_signature_or_format") from None
    if token.header.get("typ") != TOKEN_TYPE:
        raise TokenRejected("wrong_type")
    claims = token.claims
    if not isinstance(claims.get("iss"), str) or claims["iss"].rstrip("/") != issuer:
        raise TokenRejected("wrong_issuer")
    if not _audience_matches(claims.get("aud"), audience):
        raise TokenRejected("wrong_audience")
    exp, nbf = claims.get("exp"), claims.get("nbf")
    if not isinstance(exp, int):
        raise TokenRejected("missing_exp")
    if check_time and now > exp + CLOCK_SKEW_SECONDS:
        raise TokenRejected("expired")
    if check_time and isinstance(nbf, int) and nbf > now + CLOCK_SKEW_SECONDS:
        raise TokenRejected("not_yet_valid")
    sub, client_id, sid = claims.get("sub"), claims.get("client_id"), claims.get("sid")
    if not (isinstance(sub, str) and sub and isinstance(client_id, str) and client_id and isinstance(sid, str)
            and sid):
        raise TokenRejected("missing_claims")
    scope = claims.get("scope", "")
    return TokenClaims(user_id=sub, client_id=client_id, grant_id=sid,
                       scopes=tuple(scope.split()) if isinstance(scope, str) else (), exp=exp)
