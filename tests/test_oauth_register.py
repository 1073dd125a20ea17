"""Dynamic client registration (RFC 7591): public and confidential clients, redirect policy, limits."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from structlog.testing import capture_logs

from oauthkit import REDIRECT, OAuthHarness, StartOAuth
from ownsona.auth.oauth.crypto import digest

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs


async def post(h: OAuthHarness, body: Any = None, *, data: bytes | None = None) -> tuple[int, dict[str, Any]]:
    kwargs: dict[str, Any] = {"data": data} if data is not None else {"json": body}
    async with h.http.post(f"{h.base}/oauth/register", **kwargs) as response:
        return response.status, await response.json()


async def test_public_client_gets_an_id_and_no_secret(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    status, body = await post(h, {"client_name": "Claude", "redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                                  "token_endpoint_auth_method": "none"})
    assert status == 201
    assert body["client_id"] and "client_secret" not in body
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["redirect_uris"] == ["https://claude.ai/api/mcp/auth_callback"]


async def test_omitted_auth_method_makes_a_confidential_client_whose_secret_is_stored_hashed(
    start_oauth: StartOAuth,
) -> None:
    h = await start_oauth()
    status, body = await post(h, {"redirect_uris": ["https://chatgpt.com/connector_platform_oauth_redirect"]})
    assert status == 201
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert len(body["client_secret"]) == 43 and body["client_secret_expires_at"] == 0
    with sqlite3.connect(h.settings.database_path) as conn:
        dump = "\n".join(conn.iterdump())
    assert body["client_secret"] not in dump
    assert digest(body["client_secret"]) in dump


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"client_name": "x"}, "invalid_redirect_uri"),
        ({"redirect_uris": []}, "invalid_redirect_uri"),
        ({"redirect_uris": "http://127.0.0.1/cb"}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://127.0.0.1/cb#frag"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["http://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://evil.example/cb"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["https://chatgpt.com/connector/oauth/abc/extra"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["com.example.app:/callback"]}, "invalid_redirect_uri"),
        ({"redirect_uris": ["javascript:alert(1)"]}, "invalid_redirect_uri"),
        ({"redirect_uris": [REDIRECT], "grant_types": ["client_credentials"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "grant_types": ["implicit"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "response_types": ["token"]}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "scope": "admin"}, "invalid_client_metadata"),
        ({"redirect_uris": [REDIRECT], "client_name": "x" * 101}, "invalid_client_metadata"),
        (["not", "an", "object"], "invalid_client_metadata"),
    ],
)

async def test_bad_metadata_is_refused(start_oauth: StartOAuth, body: Any, error: str) -> None:
    h = await start_oauth()
    status, answer = await post(h, body)
    assert status == 400
    assert answer["error"] == error
    assert answer["error_description"]


async def test_non_json_body_is_invalid_client_metadata(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    status, answer = await post(h, data=b"{not json")
    assert (status, answer["error"]) == (400, "invalid_client_metadata")


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1:53111/callback", "http://localhost/cb", "http://[::1]:8080/cb",
    "https://chatgpt.com/connector_platform_oauth_redirect", "https://chatgpt.com/connector/oauth/call_8f2a",
    "https://claude.ai/api/mcp/auth_callback", "https://claude.com/api/mcp/auth_callback",
])
async def test_default_policy_allows_loopback_and_the_hosted_assistants(start_oauth: StartOAuth, uri: str) -> None:
    h = await start_oauth()
    status, body = await post(h, {"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
    assert status == 201, body


async def test_configured_allowlist_extends_the_policy(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_redirect_allowlist="https://app.example/oauth/*,https://other.example/cb")
    for uri in ("https://app.example/oauth/cb1", "https://other.example/cb"):
        status, _ = await post(h, {"redirect_uris": [uri], "token_endpoint_auth_method": "none"})
        assert status == 201
    status, _ = await post(h, {"redirect_uris": ["https://other.example/cb2"], "token_endpoint_auth_method": "none"})
    assert status == 400


async def test_registrations_are_rate_limited_per_address(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_dcr_rate_limit="3")
    for _ in range(3):
        status, _ = await post(h, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
        assert status == 201
    async with h.http.post(f"{h.base}/oauth/register", json={"redirect_uris": [REDIRECT]}) as response:
        assert response.status == 429
        assert int(response.headers["Retry-After"]) > 0
        assert (await response.json())["error"] == "temporarily_unavailable"


async def test_client_count_is_capped(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_dcr_max_clients="2")
    for _ in range(2):
        status, _ = await post(h, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
        assert status == 201
    status, body = await post(h, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    assert status == 429 and body["error"] == "temporarily_unavailable"


async def test_cap_makes_room_by_pruning_day_old_clients_that_never_signed_in(start_oauth: StartOAuth) -> None:
    h = await start_oauth(oauth_dcr_max_clients="2")
    stale = [(await post(h, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"}))[1]["client_id"]
             for _ in range(2)]
    await h.db.write(lambda conn: conn.execute("UPDATE oauth_clients SET created_at = created_at - 90000"))
    status, _ = await post(h, {"redirect_uris": [REDIRECT], "token_endpoint_auth_method": "none"})
    assert status == 201
    ids = await h.db.read(lambda conn: [r[0] for r in conn.execute("SELECT client_id FROM oauth_clients")])
    assert not set(stale) & set(ids)


async def test_each_registration_is_one_audit_event_without_the_secret(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    with capture_logs() as events:
        status, body = await post(h, {"redirect_uris": ["https://claude.ai/api/mcp/auth_callback"],
                                      "client_name": "Claude"})
        await post(h, {"redirect_uris": ["https://evil.example/cb"]})
    assert status == 201
    registered = [e for e in events if e["event"] == "oauth_client_registered"]
    assert len(registered) == 1
    assert registered[0]["log_level"] == "info" and registered[0]["remote"] == "127.0.0.1"
    assert registered[0]["client_id"] == body["client_id"] and registered[0]["redirect_hosts"] == ["claude.ai"]
    assert [e["reason"] for e in events if e["event"] == "oauth_registration_rejected"] == ["invalid_redirect_uri"]
    assert body["client_secret"] not in repr(events)


def test_registered_client_ids_can_be_typed_on_a_command_line() -> None:
    """url-safe base64 ids began with '-' one time in 64, which argparse reads as an option."""
    from ownsona.auth.oauth.register import new_client_id

    ids = {new_client_id() for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(r"dcr-[0-9a-f]{32}", client_id) for client_id in ids)
