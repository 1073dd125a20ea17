"""The static-token middleware: the whole auth matrix, byte-identical 401s, no fallback, throttling."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from structlog.testing import capture_logs

from conftest import TEST_TOKEN, make_test_registry, token_store_for
from ownsona.app import build_app
from ownsona.auth.middleware import FailureThrottle
from ownsona.auth.tokens import TokenError, TokenStore, check_token_strength
from ownsona.config import ConfigError

PING = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
CHALLENGE = 'Bearer realm="ownsona"'
FAILURE_BODY = {"ok": False, "error": {"code": "AUTH_FAILED", "message": "Authentication required."}}


@pytest.fixture
async def client(aiohttp_client: Any, settings: Any) -> TestClient:
    return await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))


async def ping(client: TestClient, *, query: str = "", headers: dict[str, str] | None = None) -> Any:
    return await client.post("/mcp" + query, json=PING, headers=headers or {})


# --- success -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [f"Bearer {TEST_TOKEN}", f"bearer {TEST_TOKEN}", f"BEARER {TEST_TOKEN}", f"  Bearer   {TEST_TOKEN}  "],
)
async def test_bearer_header_is_accepted_case_insensitively_with_spaces(client: TestClient, header: str) -> None:
    response = await ping(client, headers={"Authorization": header})
    assert response.status == 200
    assert (await response.json())["result"] == {}


async def test_query_token_is_accepted_without_a_header(client: TestClient) -> None:
    response = await ping(client, query=f"?token={TEST_TOKEN}")
    assert response.status == 200


# --- every failure looks the same --------------------------------------------------------------

FAILURES = {
    "missing": {},
    "wrong_header": {"headers": {"Authorization": "Bearer " + "x" * 43}},
    "wrong_query": {"query": "?token=" + "y" * 43},
    "empty_header": {"headers": {"Authorization": "Bearer "}},
    "empty_query": {"query": "?token="},
    "basic_scheme": {"headers": {"Authorization": "Basic dXNlcjpwYXNz"}},
    "token_as_basic": {"headers": {"Authorization": f"Basic {TEST_TOKEN}"}},
    "wrong_header_right_query": {"headers": {"Authorization": "Bearer wrong"}, "query": f"?token={TEST_TOKEN}"},
    "basic_header_right_query": {"headers": {"Authorization": "Basic abc"}, "query": f"?token={TEST_TOKEN}"},
}


@pytest.mark.parametrize("case", list(FAILURES))
async def test_every_failure_gets_the_same_401(client: TestClient, case: str) -> None:
    response = await ping(client, **FAILURES[case])
    body = await response.read()
    assert response.status == 401
    assert response.headers["WWW-Authenticate"] == CHALLENGE
    assert response.headers["Content-Type"].startswith("application/json")
    assert json.loads(body) == FAILURE_BODY


async def test_failure_responses_are_byte_identical(client: TestClient) -> None:
    seen = set()
    for case in FAILURES.values():
        response = await ping(client, **case)
        relevant = {k: v for k, v in response.headers.items() if k.lower() not in ("date", "x-request-id")}
        seen.add((response.status, await response.read(), tuple(sorted(relevant.items()))))
    assert len(seen) == 1


async def test_a_wrong_header_never_falls_back_to_the_query(client: TestClient) -> None:
    response = await ping(client, headers={"Authorization": "Bearer nope"}, query=f"?token={TEST_TOKEN}")
    assert response.status == 401


async def test_failure_is_logged_with_class_and_address_but_nothing_presented(client: TestClient) -> None:
    presented = "z" * 40 + "PRESENTED"
    with capture_logs() as events:
        await ping(client, headers={"Authorization": f"Bearer {presented}"})
        await ping(client, query=f"?token={presented}")
        await ping(client, headers={"Authorization": "Basic Zm9vOmJhcg=="})
        await ping(client)
    failures = [e for e in events if e["event"] == "auth_failed"]
    assert [e["failure"] for e in failures] == [
        "invalid_header_token", "invalid_query_token", "unsupported_scheme", "missing"]
    assert all(e["remote"] == "127.0.0.1" for e in failures)
    assert presented not in repr(events) and "Zm9v" not in repr(events)


async def test_other_paths_are_not_guarded_by_the_token_middleware(client: TestClient) -> None:
    assert (await client.get("/healthz")).status == 200
    assert (await client.get("/nothing-here")).status == 404


# --- throttling ---------------------------------------------------------------------------------


async def test_repeated_failures_are_throttled_per_address(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(auth_failure_limit="3", auth_failure_window_seconds="60")
    client = await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))
    attacker = {"X-Forwarded-For": "203.0.113.7"}  # the peer (127.0.0.1) is a trusted proxy
    for _ in range(3):
        assert (await ping(client, headers={**attacker, "Authorization": "Bearer bad"})).status == 401
    blocked = await ping(client, headers={**attacker, "Authorization": f"Bearer {TEST_TOKEN}"})
    assert blocked.status == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    # Another address is not locked out.
    other = await ping(client, headers={"X-Forwarded-For": "198.51.100.9", "Authorization": f"Bearer {TEST_TOKEN}"})
    assert other.status == 200


async def test_forwarded_for_is_ignored_from_untrusted_peers(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(auth_failure_limit="2", trusted_proxies="10.9.9.9")
    client = await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))
    for n in range(2):  # a client rotating X-Forwarded-For still counts as one address
        await ping(client, headers={"X-Forwarded-For": f"203.0.113.{n}", "Authorization": "Bearer bad"})
    response = await ping(client, headers={"X-Forwarded-For": "203.0.113.99", "Authorization": f"Bearer {TEST_TOKEN}"})
    assert response.status == 429


def test_throttle_window_slides() -> None:
    throttle = FailureThrottle(limit=2, window_seconds=10)
    throttle.record_failure("a", now=0)
    throttle.record_failure("a", now=1)
    assert throttle.retry_after("a", now=2) == 8  # the oldest failure leaves the window at t=10
    assert throttle.retry_after("b", now=2) == 0
    assert throttle.retry_after("a", now=10.5) == 0


def test_throttle_memory_is_bounded() -> None:
    throttle = FailureThrottle(limit=1, window_seconds=60, max_addresses=100)
    for n in range(1000):
        throttle.record_failure(f"10.0.{n // 256}.{n % 256}", now=0)
    assert len(throttle._failures) == 100


# --- the token store ---------------------------------------------------------------------------


def make_store(home: Path, env_token: str | None = None) -> TokenStore:
    return TokenStore(home / "tokens.json", env_token=env_token, default_user_id="default")


def test_first_start_generates_a_256_bit_token_in_a_0600_file(home: Path) -> None:
    store = make_store(home)
    assert store.ensure_default() is True
    token = store.get("default")
    assert token is not None and len(token.value) >= 43
    assert stat.S_IMODE(os.stat(home / "tokens.json").st_mode) == 0o600
    assert store.ensure_default() is False  # the second start keeps it
    assert make_store(home).load()[0].value == token.value


def test_environment_token_counts_as_default_and_suppresses_generation(home: Path) -> None:
    store = make_store(home, env_token=TEST_TOKEN)
    assert store.ensure_default() is False
    assert store.match(TEST_TOKEN).name == "default"
    assert not (home / "tokens.json").exists()


def test_named_tokens_rotate_one_at_a_time(home: Path) -> None:
    store = make_store(home)
    laptop = store.create("laptop")
    phone = store.create("phone", user_id="alice")
    assert store.match(laptop.value).name == "laptop"
    assert store.match(phone.value).user_id == "alice"
    store.revoke("laptop")
    assert store.match(laptop.value) is None
    assert store.match(phone.value) is not None
    with pytest.raises(TokenError):
        store.create("phone")
    with pytest.raises(TokenError):
        store.create("Bad Name!")
    with pytest.raises(TokenError):
        store.revoke("nobody")


def test_revocation_reaches_a_running_store_without_restart(home: Path, monkeypatch: Any) -> None:
    running = make_store(home)
    laptop = running.create("laptop")
    assert running.match(laptop.value) is not None
    make_store(home).revoke("laptop")  # what `ownsona token revoke` does from another process
    monkeypatch.setattr("ownsona.auth.tokens.RELOAD_INTERVAL_SECONDS", 0.0)
    assert running.match(laptop.value) is None


@pytest.mark.parametrize(
    "value", ["tiny1", "changeme-changeme-changeme-changeme", "a" * 40, "your-token-here-0123456789abcdefghij"]
)
def test_weak_or_placeholder_tokens_are_refused_without_echoing_them(value: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        check_token_strength(value, source="OWNSONA_API_TOKEN")
    assert "OWNSONA_API_TOKEN" in str(excinfo.value)
    assert value not in str(excinfo.value)


def test_world_readable_token_file_is_refused(home: Path) -> None:
    store = make_store(home)
    store.create("laptop")
    os.chmod(home / "tokens.json", 0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        make_store(home).load()


def test_token_repr_hides_the_value(home: Path) -> None:
    token = make_store(home).create("laptop")
    assert token.value not in repr(token)
