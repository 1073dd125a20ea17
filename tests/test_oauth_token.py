"""/oauth/token and /oauth/revoke: single-use codes, client auth, JWT claims, refresh rotation."""

from __future__ import annotations

import asyncio
import base64
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from structlog.testing import capture_logs

from oauthkit import OAuthHarness, StartOAuth, build_oauth_app, oauth_settings, owner_hash, pkce_pair
from ownsona.auth.oauth.keys import key_directory
from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.auth.oauth.state import OAUTH_STATE_KEY
from ownsona.db import Database

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs


async def code_and_form(h: OAuthHarness, client: dict[str, Any]) -> dict[str, str]:
    verifier, challenge = pkce_pair()
    code = await h.code_for(client, challenge)
    return {"grant_type": "authorization_code", "code": code, "code_verifier": verifier,
            "redirect_uri": client["redirect_uris"][0], "client_id": client["client_id"], "resource": f"{h.base}/mcp"}


def claims_of(h: OAuthHarness, token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    decoded = jwt.decode(token, h.state.keyring.current)  # type: ignore[union-attr]
    return decoded.header, decoded.claims


async def test_code_exchange_returns_a_jwt_that_works_at_mcp(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    status, body, response = await h.token(await code_and_form(h, client))
    assert status == 200
    assert response.headers["Cache-Control"] == "no-store" and response.headers["Pragma"] == "no-cache"
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["scope"] == "memory"
    assert len(body["refresh_token"]) >= 43 and body["refresh_token"].count(".") == 0
    header, claims = claims_of(h, body["access_token"])
    assert header == {"alg": "ES256", "kid": h.state.keyring.current.kid, "typ": "at+jwt"}  # type: ignore[union-attr]
    assert claims["iss"] == h.base and claims["aud"] == f"{h.base}/mcp" and claims["sub"] == "default"
    assert claims["exp"] == claims["iat"] + 3600 and claims["nbf"] == claims["iat"]
    assert claims["client_id"] == client["client_id"] and claims["scope"] == "memory" and claims["jti"]
    assert (await h.mcp(body["access_token"])).status == 200
    second = await h.tokens_for(client)
    assert claims_of(h, second["access_token"])[1]["jti"] != claims["jti"]


async def test_user_id_setting_is_the_subject(start_oauth: StartOAuth) -> None:
    h = await start_oauth(user_id="alice")
    body = await h.tokens_for(await h.register())
    assert claims_of(h, body["access_token"])[1]["sub"] == "alice"


async def test_a_code_works_once_and_its_replay_revokes_what_it_minted(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    form = await code_and_form(h, client)
    status, first, _ = await h.token(form)
    assert status == 200
    with capture_logs() as events:
        status, again, _ = await h.token(form)
    assert (status, again["error"]) == (400, "invalid_grant")
    assert [e["event"] for e in events if e["event"] == "oauth_code_replayed"] == ["oauth_code_replayed"]
    assert (await h.mcp(first["access_token"])).status == 401
    assert (await h.refresh(client, first["refresh_token"]))[0] == 400


async def test_a_failed_attempt_burns_the_code(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    form = await code_and_form(h, client)
    status, body, _ = await h.token({**form, "code_verifier": "x" * 50})
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body, _ = await h.token(form)
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(("change", "error"), [
    ({"redirect_uri": "http://127.0.0.1:9/other"}, "invalid_grant"),
    ({"redirect_uri": ""}, "invalid_grant"),
    ({"code_verifier": ""}, "invalid_request"),
    ({"code": ""}, "invalid_request"),
    ({"code_verifier": "a" * 42}, "invalid_grant"),
    ({"code_verifier": "a" * 129}, "invalid_grant"),
    ({"code": "made-up-code"}, "invalid_grant"),
    ({"resource": "https://other.example/mcp"}, "invalid_target"),
])
async def test_code_exchange_checks(start_oauth: StartOAuth, change: dict[str, str], error: str) -> None:
    h = await start_oauth()
    client = await h.register()
    status, body, _ = await h.token({**await code_and_form(h, client), **change})
    assert (status, body["error"]) == (400, error)
    assert body["error_description"]


async def test_a_code_older_than_sixty_seconds_is_dead(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    form = await code_and_form(h, client)
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_codes SET expires_at = expires_at - 61"))
    status, body, _ = await h.token(form)
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_a_code_is_bound_to_its_client(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, other = await h.register(), await h.register()
    status, body, _ = await h.token({**await code_and_form(h, client), "client_id": other["client_id"]})
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize(("form", "error"), [({}, "invalid_request"), ({"grant_type": "client_credentials"},
                                                                      "unsupported_grant_type"),
                                             ({"grant_type": "password"}, "unsupported_grant_type")])
async def test_grant_type_checks(start_oauth: StartOAuth, form: dict[str, str], error: str) -> None:
    h = await start_oauth()
    status, body, _ = await h.token(form)
    assert (status, body["error"]) == (400, error)


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}


async def test_client_authentication(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    public = await h.register()
    confidential = await h.register(token_endpoint_auth_method="client_secret_basic")
    cid, secret = confidential["client_id"], confidential["client_secret"]

    status, body, _ = await h.token({**await code_and_form(h, public), "client_secret": "anything"})
    assert (status, body["error"]) == (401, "invalid_client")
    form = await code_and_form(h, confidential)
    status, body, _ = await h.token(form)  # no secret
    assert (status, body["error"]) == (401, "invalid_client")
    status, body, response = await h.token(form, basic(cid, "wrong"))
    assert (status, body["error"]) == (401, "invalid_client")
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    # Basic wins over the form: a right secret in the form cannot rescue a wrong header.
    status, body, _ = await h.token({**form, "client_secret": secret}, basic(cid, "wrong"))
    assert status == 401
    # Failed client authentication never touched the code; Basic's client id wins over the form's.
    status, body, _ = await h.token({**form, "client_id": "ignored"}, basic(cid, secret))
    assert status == 200
    status, body, _ = await h.token({**await code_and_form(h, confidential), "client_secret": secret})
    assert status == 200  # client_secret_post is accepted too
    status, body, _ = await h.token({**await code_and_form(h, confidential)}, {"Authorization": "Basic !!!"})
    assert (status, body["error"]) == (401, "invalid_client")
    status, body, _ = await h.token({**await code_and_form(h, public), "client_id": "unknown-client"})
    assert (status, body["error"]) == (401, "invalid_client")


# --- refresh -----------------------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_revokes_the_family(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_refresh_grace_seconds="0")
    client = await h.register()
    first = await h.tokens_for(client)
    status, second = await h.refresh(client, first["refresh_token"])
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"] and second["access_token"] != first["access_token"]
    await asyncio.sleep(1.05)  # past the (zero) grace window
    with capture_logs() as events:
        status, reused = await h.refresh(client, first["refresh_token"])
    assert (status, reused["error"]) == (400, "invalid_grant")
    reuse = [e for e in events if e["event"] == "oauth_refresh_reuse"]
    assert len(reuse) == 1 and reuse[0]["log_level"] == "warning" and reuse[0]["grant_id"]
    status, successor = await h.refresh(client, second["refresh_token"])
    assert (status, successor["error"]) == (400, "invalid_grant")
    assert (await h.mcp(second["access_token"])).status == 401


async def test_concurrent_refreshes_within_the_grace_window_both_succeed(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    first = await h.tokens_for(client)
    results = await asyncio.gather(*(h.refresh(client, first["refresh_token"]) for _ in range(2)))
    assert [status for status, _ in results] == [200, 200]
    for _, body in results:
        assert (await h.mcp(body["access_token"])).status == 200
        status, _ = await h.refresh(client, body["refresh_token"])
        assert status == 200


@pytest.mark.parametrize(("extra", "error"), [({"scope": "memory admin"}, "invalid_scope"),
                                              ({"resource": "https://other.example/mcp"}, "invalid_target")])
async def test_refresh_cannot_widen_scope_or_change_resource(start_oauth: StartOAuth, extra: dict[str, str],
                                                             error: str) -> None:
    h = await start_oauth()
    client = await h.register()
    first = await h.tokens_for(client)
    status, body = await h.refresh(client, first["refresh_token"], **extra)
    assert (status, body["error"]) == (400, error)


async def test_refresh_may_narrow_to_the_same_scope_and_name_the_resource(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    first = await h.tokens_for(client)
    status, body = await h.refresh(client, first["refresh_token"], scope="memory", resource=f"{h.base}/mcp")
    assert status == 200 and body["scope"] == "memory"


async def test_refresh_token_is_bound_to_its_client(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, other = await h.register(), await h.register()
    first = await h.tokens_for(client)
    status, body = await h.refresh(other, first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


@pytest.mark.parametrize("table", ["oauth_refresh_tokens", "oauth_grants"])
async def test_expired_refresh_token_and_family_end(start_oauth: StartOAuth, table: str) -> None:
    h = await start_oauth()
    client = await h.register()
    first = await h.tokens_for(client)
    await h.db.write(lambda conn: conn.execute(f"UPDATE {table} SET expires_at = 1"))
    status, body = await h.refresh(client, first["refresh_token"])
    assert (status, body["error"]) == (400, "invalid_grant")


async def test_refresh_tokens_never_outlive_the_family_cap(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_refresh_family_max_seconds="120", oauth_refresh_token_ttl_seconds="3600")
    client = await h.register()
    first = await h.tokens_for(client)
    status, second = await h.refresh(client, first["refresh_token"])
    assert status == 200
    rows = await h.db.read(lambda conn: conn.execute(
        "SELECT rt.expires_at, g.expires_at FROM oauth_refresh_tokens rt JOIN oauth_grants g USING (grant_id)"
    ).fetchall())
    assert rows and all(token_end <= family_end for token_end, family_end in rows)


# --- revocation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
async def test_revoking_either_token_ends_the_grant(start_oauth: StartOAuth, which: str) -> None:
    h = await start_oauth()
    client = await h.register()
    tokens = await h.tokens_for(client)
    async with h.http.post(f"{h.base}/oauth/revoke", data={"token": tokens[which],
                                                           "client_id": client["client_id"]}) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-store"
    assert (await h.mcp(tokens["access_token"])).status == 401
    assert (await h.refresh(client, tokens["refresh_token"]))[0] == 400


async def test_revoke_ignores_unknown_and_foreign_tokens_and_needs_a_client(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client, other = await h.register(), await h.register()
    tokens = await h.tokens_for(client)
    for form in ({"token": "nonsense", "client_id": client["client_id"]},
                 {"token": tokens["refresh_token"], "client_id": other["client_id"]}):
        async with h.http.post(f"{h.base}/oauth/revoke", data=form) as response:
            assert response.status == 200
    assert (await h.mcp(tokens["access_token"])).status == 200
    async with h.http.post(f"{h.base}/oauth/revoke", data={"token": tokens["refresh_token"]}) as response:
        assert response.status == 401
    async with h.http.post(f"{h.base}/oauth/revoke", data={"client_id": client["client_id"]}) as response:
        assert response.status == 400


# --- state at rest and across restarts --------------------------------------------------------------


async def test_secrets_at_rest_are_hashed_and_files_are_private(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register()
    form = await code_and_form(h, client)
    tokens = (await h.token(form))[1]
    with sqlite3.connect(h.settings.database_path) as conn:
        dump = "\n".join(conn.iterdump())
    for secret in (tokens["refresh_token"], tokens["access_token"], form["code"], form["code_verifier"]):
        assert secret not in dump
    assert stat.S_IMODE(os.stat(h.settings.database_path).st_mode) == 0o600
    directory = key_directory(h.settings.home)
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    [key_file] = list(directory.glob("*.jwk"))
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert key_file.stem == h.state.keyring.current.kid  # type: ignore[union-attr]
    assert h.state.keyring.current.thumbprint() == key_file.stem  # type: ignore[union-attr]


async def test_state_survives_a_restart(home: Path, aiohttp_server: Any, unused_tcp_port: int) -> None:
    settings = oauth_settings(home, unused_tcp_port)

    async def run_server() -> tuple[Any, Database]:
        db = Database(settings.database_path, [OAUTH_SCHEMA])
        await db.open()
        await db.write(lambda conn: conn.execute(
            "INSERT OR IGNORE INTO oauth_owner (id, password_hash, updated_at) VALUES (1, ?, 0)", (owner_hash(),)))
        server = await aiohttp_server(await build_oauth_app(settings, db), port=unused_tcp_port)
        return server, db

    server, db = await run_server()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        h = OAuthHarness(settings, db, http, settings.public_url or "", server.app[OAUTH_STATE_KEY])
        client = await h.register()
        tokens = await h.tokens_for(client)
        kid = h.state.keyring.current.kid  # type: ignore[union-attr]
        await server.close()
        await db.close()

        server, db = await run_server()
        h = OAuthHarness(settings, db, http, settings.public_url or "", server.app[OAUTH_STATE_KEY])
        assert h.state.keyring.current.kid == kid  # type: ignore[union-attr]
        assert (await h.mcp(tokens["access_token"])).status == 200
        status, refreshed = await h.refresh(client, tokens["refresh_token"])
        assert status == 200
        assert (await h.mcp(refreshed["access_token"])).status == 200
    await server.close()
    await db.close()


async def test_pruning_drops_only_what_nothing_can_use(start_oauth: StartOAuth) -> None:
    from ownsona.auth.oauth.grants import prune

    h = await start_oauth()
    client = await h.register()
    live = await h.tokens_for(client)
    dead = await h.tokens_for(client)
    dead_sid = claims_of(h, dead["access_token"])[1]["sid"]
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_grants SET expires_at = 1 WHERE grant_id = ?",
                                               (dead_sid,)))
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_codes SET expires_at = 1"))
    await h.db.write(lambda conn: prune(conn, int(time.time())))
    counts = await h.db.read(lambda conn: {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                                           for t in ("oauth_codes", "oauth_grants", "oauth_refresh_tokens")})
    assert counts == {"oauth_codes": 0, "oauth_grants": 1, "oauth_refresh_tokens": 1}
    assert (await h.mcp(dead["access_token"])).status == 401
    assert (await h.mcp(live["access_token"])).status == 200
    assert (await h.refresh(client, live["refresh_token"]))[0] == 200
