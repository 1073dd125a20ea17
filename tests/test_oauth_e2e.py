"""End to end: the MCP SDK's own OAuth client, with a real headless Chromium doing the browser step.

The SDK discovers the server from the 401, registers itself (DCR), opens the authorize URL (here:
in Chromium, which signs in with the owner password and clicks Allow), receives the redirect on
a loopback callback, exchanges the code, and then calls `remember` and `recall` on the real
server (store, builtin embedder, memory tools). A refresh rotates the tokens; revocation ends
them. Afterwards no secret of the whole exchange appears anywhere in the captured logs.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import mcp
import pytest
from aiohttp import web
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from cdp import Chromium, find_chromium
from conftest import token_store_for
from oauthkit import PASSWORD, oauth_settings
from ownsona.access_log import StructuredAccessLogger
from ownsona.auth.oauth.keys import key_directory
from ownsona.auth.oauth.password import set_owner_password
from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.db import Database
from ownsona.server import build_server_app

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs

if not find_chromium():
    if os.environ.get("CI"):
        raise RuntimeError("chromium is required under CI (apt-get install chromium)")
    pytest.skip("chromium is not installed (set CI=true to make this a failure)", allow_module_level=True)


class MemoryStorage:
    """The SDK's TokenStorage, in memory; keeps every token it was given so the test can check them."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.history: list[OAuthToken] = []
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens
        self.history.append(tokens)

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


async def start_callback_server(aiohttp_server: Any) -> tuple[str, asyncio.Future[dict[str, str]]]:
    """The client's loopback redirect target (RFC 8252); resolves a future with the query."""
    received: asyncio.Future[dict[str, str]] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.Response:
        if not received.done():
            received.set_result(dict(request.query))
        return web.Response(text="<p id='done'>Signed in; you can close this tab.</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/callback", callback)
    server = await aiohttp_server(app, access_log=None)  # the client's own server; its log is not ours
    return str(server.make_url("/callback")), received


async def test_sdk_oauth_client_with_chromium_signs_in_calls_recall_refreshes_and_is_revoked(
    home: Path, tmp_path: Path, aiohttp_server: Any, unused_tcp_port: int, captured_logs: io.StringIO,
) -> None:

    settings = oauth_settings(home, unused_tcp_port)
    db = Database(settings.database_path, [OAUTH_SCHEMA])
    await db.open()
    await set_owner_password(db, PASSWORD)
    await db.close()
    server = await aiohttp_server(build_server_app(settings, token_store_for(settings)), port=unused_tcp_port,
                                  access_log_class=StructuredAccessLogger)
    base = settings.public_url
    mcp_url = f"{base}/mcp"
    callback_url, received = await start_callback_server(aiohttp_server)
    sent_forms: list[dict[str, list[str]]] = []  # every form the SDK posted (token requests)

    async def record(request: httpx2.Request) -> None:
        if request.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            sent_forms.append(parse_qs(request.content.decode()))

    async with Chromium(tmp_path / "chromium") as page:

        async def sign_in_in_browser(authorization_url: str) -> None:
            await page.navigate(authorization_url)
            await page.wait_for("document.getElementById('password')")
            await page.evaluate(f"document.getElementById('password').value = {json.dumps(PASSWORD)}")
            await page.evaluate("document.getElementById('sign-in').click()")
            await page.wait_for("document.getElementById('allow')")
            await page.evaluate("document.getElementById('allow').click()")

        async def wait_for_callback() -> AuthorizationCodeResult:
            query = await asyncio.wait_for(received, timeout=30)
            return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

        storage = MemoryStorage()
        provider = OAuthClientProvider(
            server_url=mcp_url,
            client_metadata=OAuthClientMetadata(
                client_name="SDK end-to-end", redirect_uris=[callback_url],
                grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=storage,
            redirect_handler=sign_in_in_browser,
            callback_handler=wait_for_callback,
        )
        async with httpx2.AsyncClient(auth=provider, event_hooks={"request": [record]}) as http:
            async with mcp.Client(streamable_http_client(mcp_url, http_client=http)) as session:
                remembered = await session.call_tool(
                    "remember", {"text": "The owner's bicycle is a green Brompton.", "dedup_policy": "insert"})
                assert not remembered.is_error, remembered.content
                recalled = await session.call_tool("recall", {"query": "what bicycle does the owner ride"})
                assert not recalled.is_error, recalled.content
                assert "Brompton" in json.dumps(recalled.structured_content)

                cookies = {c["name"]: c for c in await page.cookies()}
                assert cookies["__Host-ownsona_session"]["secure"] and cookies["__Host-ownsona_session"]["httpOnly"]
                assert cookies["__Host-ownsona_csrf"]["sameSite"] == "Lax"
                assert received.result()["iss"] == base

                first = storage.tokens
                assert first is not None and first.refresh_token
                provider.context.token_expiry_time = 1.0  # long past: the next call refreshes first
                again = await session.call_tool("recall", {"query": "Brompton"})
                assert not again.is_error
                second = storage.tokens
                assert second is not None and second.refresh_token
                assert second.access_token != first.access_token
                assert second.refresh_token != first.refresh_token

        client_id = storage.client.client_id if storage.client else ""
        async with httpx2.AsyncClient() as raw:
            ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
            bearer = {"Authorization": f"Bearer {second.access_token}", "Accept": "application/json"}
            assert (await raw.post(mcp_url, json=ping, headers=bearer)).status_code == 200
            revoked = await raw.post(f"{base}/oauth/revoke", data={"token": second.refresh_token, "client_id": client_id})
            assert revoked.status_code == 200
            assert (await raw.post(mcp_url, json=ping, headers=bearer)).status_code == 401
            refresh = await raw.post(f"{base}/oauth/token", data={
                "grant_type": "refresh_token", "refresh_token": second.refresh_token, "client_id": client_id})
            assert refresh.status_code == 400 and refresh.json()["error"] == "invalid_grant"

    await server.close()
    secrets = [PASSWORD, received.result()["code"], first.access_token, first.refresh_token,
               second.access_token, second.refresh_token]
    secrets += [value for form in sent_forms for key in ("code_verifier", "code", "refresh_token")
                for value in form.get(key, [])]
    secrets += [json.loads(p.read_text())["d"] for p in key_directory(settings.home).glob("*.jwk")]
    assert any("code_verifier" in form for form in sent_forms)
    text = captured_logs.getvalue()
    assert "oauth_login_succeeded" in text and "oauth_token_issued" in text and "oauth_token_revoked" in text
    leaked = [s[:6] + "…" for s in secrets if s and s in text]
    assert not leaked, f"secrets in the logs: {leaked}"
