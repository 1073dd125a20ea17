"""/mcp as an OAuth resource server: every way an access token can be wrong is a 401."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from conftest import TEST_TOKEN
from oauthkit import OAuthHarness, StartOAuth, build_oauth_app, oauth_settings, owner_hash
from ownsona.auth.oauth.keys import rotate_key
from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.auth.oauth.state import OAUTH_STATE_KEY
from ownsona.auth.oauth.verifier import AccessTokenVerifier
from ownsona.db import Database

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs


def b64(data: Any) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def valid_pair(h: OAuthHarness) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A real token's header and claims (so forged variants differ in exactly one thing)."""
    client = await h.register()
    token = (await h.tokens_for(client))["access_token"]
    decoded = jwt.decode(token, h.state.keyring.current)  # type: ignore[union-attr]
    return dict(decoded.header), dict(decoded.claims), token


def sign(h: OAuthHarness, header: dict[str, Any], claims: dict[str, Any], key: ECKey | None = None) -> str:
    return jwt.encode(header, claims, key or h.state.keyring.current, algorithms=["ES256"])  # type: ignore[arg-type]


async def status_of(h: OAuthHarness, token: str) -> int:
    return (await h.mcp(token)).status


async def test_a_valid_token_and_the_static_token_both_work(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, _, token = await valid_pair(h)
    assert await status_of(h, token) == 200
    assert await status_of(h, TEST_TOKEN) == 200
    response = await h.http.post(f"{h.base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                                 headers={"Authorization": f"bearer {token}", "Accept": "application/json"})
    assert response.status == 200  # scheme is case-insensitive
    assert await status_of(h, "") == 401
    assert (await h.mcp(None)).status == 401  # nothing carries over from the previous request


async def test_the_verifier_names_the_user_and_the_client(start_oauth: StartOAuth) -> None:
    h = await start_oauth(user_id="alice")
    _, claims, token = await valid_pair(h)
    principal = await AccessTokenVerifier(h.state).verify(token)
    assert principal is not None
    assert principal.user_id == "alice"
    assert principal.client_id == claims["client_id"]
    assert principal.credential_name == f"oauth:{claims['client_id']}"
    assert principal.scopes == ("memory",)


@pytest.mark.parametrize("shape", ["two.segments", "a.b.c.d", "!!!.???.***", "e30.e30.", "bm90IGpzb24.e30.sig"])
async def test_malformed_tokens_are_refused(start_oauth: StartOAuth, shape: str) -> None:
    h = await start_oauth()
    assert await status_of(h, shape) == 401


async def test_alg_none_and_hs256_confusion_are_refused(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    header, claims, _ = await valid_pair(h)
    unsigned = f"{b64({**header, 'alg': 'none'})}.{b64(claims)}."
    assert await status_of(h, unsigned) == 401
    public = json.dumps(h.state.keyring.jwks()["keys"][0]).encode()  # type: ignore[union-attr]
    signing_input = f"{b64({**header, 'alg': 'HS256'})}.{b64(claims)}"
    mac = hmac.new(public, signing_input.encode(), hashlib.sha256).digest()
    assert await status_of(h, f"{signing_input}.{b64(mac)}") == 401


async def test_kid_must_be_present_and_known_and_the_key_must_be_ours(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    header, claims, _ = await valid_pair(h)
    assert await status_of(h, sign(h, {k: v for k, v in header.items() if k != "kid"}, claims)) == 401
    assert await status_of(h, sign(h, {**header, "kid": "unknown"}, claims)) == 401
    stranger = ECKey.generate_key("P-256")
    assert await status_of(h, sign(h, header, claims, stranger)) == 401  # our kid, another key


async def test_tampered_payload_or_signature_is_refused(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, claims, token = await valid_pair(h)
    head, _, signature = token.split(".")
    assert await status_of(h, f"{head}.{b64({**claims, 'sub': 'mallory'})}.{signature}") == 401
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert await status_of(h, f"{head}.{token.split('.')[1]}.{flipped}") == 401


@pytest.mark.parametrize(("change", "expected"), [
    ({"iss": "https://evil.example"}, 401),
    ({"iss": "{base}/"}, 200),
    ({"aud": None}, 401),
    ({"aud": "https://evil.example/mcp"}, 401),
    ({"aud": "{base}"}, 401),
    ({"aud": "{base}/mcp/"}, 401),
    ({"aud": ["https://other.example", "{base}/mcp"]}, 200),
    ({"exp": None}, 401),
    ({"exp": "{now-61}"}, 401),
    ({"exp": "{now-30}"}, 200),
    ({"nbf": "{now+61}"}, 401),
    ({"nbf": "{now+30}"}, 200),
    ({"sub": None}, 401),
    ({"sid": "not-a-grant"}, 401),
])
async def test_claim_checks(start_oauth: StartOAuth, change: dict[str, Any], expected: int) -> None:
    h = await start_oauth()
    header, claims, _ = await valid_pair(h)
    now = int(time.time())

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        if not isinstance(value, str):
            return value
        for name, number in (("{now-61}", now - 61), ("{now-30}", now - 30), ("{now+61}", now + 61),
                             ("{now+30}", now + 30)):
            if value == name:
                return number
        return value.replace("{base}", h.base)

    for key, value in change.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = fill(value)
    assert await status_of(h, sign(h, header, claims)) == expected


async def test_only_access_tokens_are_accepted(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    header, claims, _ = await valid_pair(h)
    assert await status_of(h, sign(h, {**header, "typ": "JWT"}, claims)) == 401


async def test_an_access_token_in_the_query_string_is_refused(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    _, _, token = await valid_pair(h)
    assert (await h.mcp(None, query=f"?token={token}")).status == 401


async def test_a_rejected_token_is_one_warning_that_says_why_without_the_token(
    start_oauth: StartOAuth, captured_logs: io.StringIO,
) -> None:
    h = await start_oauth()
    header, claims, _ = await valid_pair(h)
    expired = sign(h, header, {**claims, "exp": int(time.time()) - 600})
    captured_logs.truncate(0)
    captured_logs.seek(0)
    assert await status_of(h, expired) == 401
    events = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    failures = [e for e in events if e.get("logger") != "aiohttp.access"]
    assert len(failures) == 1
    assert failures[0]["event"] == "auth_failed" and failures[0]["level"] == "warning"
    assert failures[0]["oauth_rejected"] == "expired"
    assert expired not in captured_logs.getvalue() and expired.split(".")[2] not in captured_logs.getvalue()


async def test_after_key_rotation_old_tokens_still_verify_and_both_keys_are_published(
    home: Path, aiohttp_server: Any, unused_tcp_port: int,
) -> None:

    settings = oauth_settings(home, unused_tcp_port)

    async def run() -> tuple[Any, Database, OAuthHarness, aiohttp.ClientSession]:
        db = Database(settings.database_path, [OAUTH_SCHEMA])
        await db.open()
        await db.write(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO oauth_owner (id, password_hash, updated_at) VALUES (1, ?, 0)", (owner_hash(),)))
        server = await aiohttp_server(await build_oauth_app(settings, db), port=unused_tcp_port)
        http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        return server, db, OAuthHarness(settings, db, http, settings.public_url or "", server.app[OAUTH_STATE_KEY]), http

    server, db, h, http = await run()
    client = await h.register()
    old = await h.tokens_for(client)
    old_kid = h.state.keyring.current.kid  # type: ignore[union-attr]
    new_kid = await rotate_key(db, settings.home)
    await http.close()
    await server.close()
    await db.close()

    server, db, h, http = await run()
    assert h.state.keyring.current.kid == new_kid != old_kid  # type: ignore[union-attr]
    async with http.get(f"{h.base}/oauth/jwks") as response:
        kids = {key["kid"] for key in (await response.json(content_type=None))["keys"]}
    assert kids == {old_kid, new_kid}
    assert await status_of(h, old["access_token"]) == 200
    status, fresh = await h.refresh(client, old["refresh_token"])
    assert status == 200
    assert jwt.decode(fresh["access_token"], h.state.keyring.current).header["kid"] == new_kid  # type: ignore[union-attr]
    assert await status_of(h, fresh["access_token"]) == 200
    await http.close()
    await server.close()
    await db.close()


async def test_a_lost_key_file_is_replaced_and_clients_recover_by_refreshing(
    home: Path, aiohttp_server: Any, unused_tcp_port: int,
) -> None:
    settings = oauth_settings(home, unused_tcp_port)
    db = Database(settings.database_path, [OAUTH_SCHEMA])
    await db.open()
    await db.write(lambda conn: conn.execute(
        "INSERT INTO oauth_owner (id, password_hash, updated_at) VALUES (1, ?, 0)", (owner_hash(),)))
    server = await aiohttp_server(await build_oauth_app(settings, db), port=unused_tcp_port)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        h = OAuthHarness(settings, db, http, settings.public_url or "", server.app[OAUTH_STATE_KEY])
        client = await h.register()
        tokens = await h.tokens_for(client)
        old_kid = h.state.keyring.current.kid  # type: ignore[union-attr]
        await server.close()
        for path in (home / "oauth-keys").glob("*.jwk"):
            path.unlink()

        server = await aiohttp_server(await build_oauth_app(settings, db), port=unused_tcp_port)
        h = OAuthHarness(settings, db, http, settings.public_url or "", server.app[OAUTH_STATE_KEY])
        assert h.state.keyring.current.kid != old_kid  # type: ignore[union-attr]
        assert await status_of(h, tokens["access_token"]) == 401
        status, fresh = await h.refresh(client, tokens["refresh_token"])
        assert status == 200 and await status_of(h, fresh["access_token"]) == 200
        await server.close()
    await db.close()
