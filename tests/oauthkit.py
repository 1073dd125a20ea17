"""Test kit for the OAuth server: a real app on a real port, and a client that walks the flow.

The app is `ownsona.app.build_app` (static tokens, /mcp, the test tool registry) with
`setup_oauth` mounted and its verifier handed to the authenticator: the same wiring as
`server.py`, minus the memory store and embedder. Cookies are handled by hand so tests can see
and assert every attribute the server sets.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import argon2

from conftest import TEST_TOKEN, make_test_registry, token_store_for
from ownsona.app import AUTHENTICATOR_KEY, build_app
from ownsona.auth.oauth.setup import challenge_params, setup_oauth
from ownsona.auth.oauth.state import OAuthState
from ownsona.config import Settings, settings_from_environ
from ownsona.db import Database

PASSWORD = "owner-Pa55word-for-tests-9Q"
REDIRECT = "http://127.0.0.1:9/callback"
PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden_fields(html: str) -> dict[str, str]:
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Browser:
    """Just enough of a browser: a cookie jar keyed by name, filled from Set-Cookie."""

    cookies: dict[str, str] = field(default_factory=dict)
    set_cookies: list[SimpleCookie] = field(default_factory=list)

    def absorb(self, response: aiohttp.ClientResponse) -> None:
        for header in response.headers.getall("Set-Cookie", []):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            self.set_cookies.append(jar)
            for name, morsel in jar.items():
                self.cookies[name] = morsel.value

    def header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}


@dataclass
class OAuthHarness:
    settings: Settings
    db: Database
    http: aiohttp.ClientSession
    base: str
    state: OAuthState

    async def register(self, **metadata: Any) -> dict[str, Any]:
        body = {"client_name": "Test client", "redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none",
                **metadata}
        async with self.http.post(f"{self.base}/oauth/register", json=body) as response:
            assert response.status == 201, await response.text()
            return await response.json()

    async def authorize(self, browser: Browser, params: dict[str, str]) -> aiohttp.ClientResponse:
        response = await self.http.get(f"{self.base}/oauth/authorize", params=params, headers=browser.header(),
                                       allow_redirects=False)
        await response.read()
        browser.absorb(response)
        return response

    async def post_form(self, browser: Browser, form: dict[str, str], headers: dict[str, str] | None = None
                        ) -> aiohttp.ClientResponse:
        response = await self.http.post(f"{self.base}/oauth/authorize", data=form,
                                        headers={**browser.header(), **(headers or {})}, allow_redirects=False)
        await response.read()
        browser.absorb(response)
        return response

    def auth_params(self, client: dict[str, Any], challenge: str, **extra: str) -> dict[str, str]:
        return {"response_type": "code", "client_id": client["client_id"], "redirect_uri": client["redirect_uris"][0],
                "code_challenge": challenge, "code_challenge_method": "S256", "state": "st4te",
                "resource": self.settings.mcp_url or "", **extra}

    async def code_for(self, client: dict[str, Any], challenge: str, browser: Browser | None = None,
                       **extra: str) -> str:
        """Walk authorize → login → consent(allow) and return the code from the redirect."""
        browser = browser or Browser()
        page = await self.authorize(browser, self.auth_params(client, challenge, **extra))
        assert page.status == 200
        fields = hidden_fields(await page.text())
        if fields["stage"] == "login":
            page = await self.post_form(browser, {**fields, "password": PASSWORD})
            assert page.status == 200
            fields = hidden_fields(await page.text())
        assert fields["stage"] == "consent"
        done = await self.post_form(browser, {**fields, "decision": "allow"})
        assert done.status == 302, await done.text()
        return query_of(done.headers["Location"])["code"]

    async def token(self, form: dict[str, str], headers: dict[str, str] | None = None
                    ) -> tuple[int, dict[str, Any], aiohttp.ClientResponse]:
        async with self.http.post(f"{self.base}/oauth/token", data=form, headers=headers or {}) as response:
            return response.status, await response.json(), response

    async def tokens_for(self, client: dict[str, Any]) -> dict[str, Any]:
        verifier, challenge = pkce_pair()
        code = await self.code_for(client, challenge)
        status, body, _ = await self.token({
            "grant_type": "authorization_code", "code": code, "redirect_uri": client["redirect_uris"][0],
            "client_id": client["client_id"], "code_verifier": verifier, "resource": self.settings.mcp_url or ""})
        assert status == 200, body
        return body

    async def refresh(self, client: dict[str, Any], refresh_token: str, **extra: str
                      ) -> tuple[int, dict[str, Any]]:
        status, body, _ = await self.token({"grant_type": "refresh_token", "refresh_token": refresh_token,
                                            "client_id": client["client_id"], **extra})
        return status, body

    async def mcp(self, bearer: str | None, *, query: str = "") -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {bearer}"} if bearer is not None else {}
        response = await self.http.post(f"{self.base}/mcp{query}", json=PING,
                                        headers={**headers, "Accept": "application/json, text/event-stream"})
        await response.read()
        return response


StartOAuth = Callable[..., Awaitable[OAuthHarness]]


@functools.cache
def owner_hash() -> str:
    """A real argon2id hash of PASSWORD, with cheap parameters (they travel inside the hash, and
    verification uses them): the tests sign in hundreds of times. `ownsona password` is tested
    with the production parameters in test_oauth_cli.py."""
    return argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)


def oauth_settings(home: Path, port: int, **env: str) -> Settings:
    environ = {"OWNSONA_HOME": str(home), "OWNSONA_API_TOKEN": TEST_TOKEN, "HOME": str(home),
               "OWNSONA_PUBLIC_URL": f"http://127.0.0.1:{port}", "OWNSONA_OAUTH": "on"}
    environ.update({f"OWNSONA_{k.upper()}": v for k, v in env.items()})
    return settings_from_environ(environ)


async def build_oauth_app(settings: Settings, db: Database, **kwargs: Any) -> Any:
    app = build_app(settings, token_store_for(settings), make_test_registry())
    verifier = setup_oauth(app, settings, db, **kwargs)
    app[AUTHENTICATOR_KEY].set_verifier(verifier, challenge_params(settings))
    return app
