"""Random secrets, their stored hashes, and the PKCE S256 check; constant-time where it matters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")


def new_secret(nbytes: int = 32) -> str:
    """An unguessable token: 32 random bytes are 43 url-safe characters."""
    return secrets.token_urlsafe(nbytes)


def digest(value: str) -> str:
    """What the database keeps instead of a credential: its SHA-256, hex.

    A plain hash suffices (no salt, no slow KDF) because every such credential is 256 random bits.
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def pkce_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: the verifier must be 43–128 unreserved characters and hash to the challenge."""
    if not _VERIFIER.fullmatch(verifier):
        return False
    computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode("ascii")).digest()).rstrip(b"=")
    return same(computed.decode("ascii"), challenge)


def valid_challenge(challenge: str) -> bool:
    """An S256 challenge is the 43-character base64url encoding of a SHA-256 digest."""
    return re.fullmatch(r"[A-Za-z0-9\-_]{43}", challenge) is not None
