"""Client authentication at the token and revocation endpoints (RFC 6749 §2.3).

HTTP Basic wins over form fields. Public clients must send no secret; confidential ones must
send the right one (compared as hashes, in constant time). Every failure is 401 `invalid_client`,
which also tells Claude to register afresh.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from aiohttp import web

from ownsona.auth.oauth.clients import Client, get_client, secret_matches
from ownsona.auth.oauth.httputil import oauth_error
from ownsona.auth.oauth.state import OAuthState


class ClientAuthFailed(Exception):
    def __init__(self, description: str, used_basic: bool) -> None:
        super().__init__(description)
        self.description = description
        self.used_basic = used_basic

    def response(self) -> web.Response:
        headers = {"WWW-Authenticate": 'Basic realm="ownsona"'} if self.used_basic else None
        return oauth_error("invalid_client", self.description, status=401, headers=headers)


def _credentials(request: web.Request, form: Mapping[str, Any]) -> tuple[str, str | None, bool]:
    header = request.headers.get("Authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            raise ClientAuthFailed("unsupported client authentication scheme", True)
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise ClientAuthFailed("malformed Basic credentials", True) from None
        client_id, sep, secret = decoded.partition(":")
        if not sep or not client_id:
            raise ClientAuthFailed("malformed Basic credentials", True)
        return unquote(client_id), unquote(secret), True
    form_id, form_secret = form.get("client_id"), form.get("client_secret")
    if not isinstance(form_id, str) or not form_id:
        raise ClientAuthFailed("client authentication is required", False)
    return form_id, form_secret if isinstance(form_secret, str) else None, False


async def authenticate_client(request: web.Request, form: Mapping[str, Any], state: OAuthState) -> Client:
    client_id, secret, used_basic = _credentials(request, form)
    client = await state.db.read(lambda conn: get_client(conn, client_id))
    if client is None or client.revoked_at is not None:
        raise ClientAuthFailed("unknown or revoked client", used_basic)
    if client.is_public:
        if secret:
            raise ClientAuthFailed("a public client must not send a secret", used_basic)
    elif not secret or not secret_matches(client, secret):
        raise ClientAuthFailed("client authentication failed", used_basic)
    return client
