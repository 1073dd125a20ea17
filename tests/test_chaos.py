"""Reduced reliability checks against a real `ownsona serve` (the full ones are `bench/chaos`).

The same code as the harness (`bench/harness/crash.py`, `fuzz.py`, `loadgen.py`), bounded to a
few seconds each: a SIGKILL during concurrent writes, a hypothesis fuzz of the transport and the
tools, and sustained mixed load at 32 clients. The checkers' own negative controls come first, so a
checker that could never fail would show up here.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.harness import wire
from bench.harness.crash import check_store, crash_round
from bench.harness.fuzz import StoreWatch, fuzz, log_problems, problems
from bench.harness.loadgen import LoadSpec, percentile, run_in_subprocess
from bench.harness.procs import PYTHON, ServerProcess, ServerSpec, free_port, ownsona_spec, post
from bench.harness.seed import seed_store

TOOLS = {"remember": {"properties": {"text": {"type": "string"}, "tags": {"type": "array"}}}}


def _result(payload: dict[str, object], *, is_error: bool = False) -> bytes:
    result = {"content": [{"type": "text", "text": json.dumps(payload)}], "structuredContent": payload}
    if is_error:
        result["isError"] = True
    return json.dumps({"jsonrpc": "2.0", "id": 1, "result": result}).encode()


def _rpc_error(code: int, message: str) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}).encode()


REQUEST = wire.encode(wire.tool_call("remember", {"text": 5}, 1))


# --- the checkers catch what they are meant to catch ---------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (500, b"{}", "HTTP 500"),
        (200, _rpc_error(-32603, "Internal error; the server log has the details."), "internal error"),
        (200, _rpc_error(-32600, ""), "without a message"),
        (200, _rpc_error(-32602, "Invalid params"), "names no field"),
        (200, _result({"ok": False, "error": {"code": "INTERNAL_ERROR", "message": "Internal error."}}, is_error=True),
         "tool crashed"),
        (200, _result({"ok": False, "error": {"code": "INVALID_INPUT", "message": "Bad."}}, is_error=True),
         "names no field"),
        (200, b"<html>", "not JSON"),
        (202, b"{}", "202 with a body"),
    ],
)
def test_fuzz_invariants_flag_broken_responses(status: int, body: bytes, expected: str) -> None:
    found, accepted = problems(status, body, REQUEST, TOOLS)
    assert not accepted or status == 202
    assert any(expected in problem for problem in found), found


@pytest.mark.parametrize(
    ("status", "body", "accepted"),
    [
        (200, _result({"ok": True, "memory_id": 1, "message": "Ok"}), True),
        (200, _result({"ok": False, "error": {"code": "INVALID_INPUT", "message": "text: Input should be a valid "
                                                                                 "string."}}, is_error=True), False),
        (200, _rpc_error(-32602, "Invalid params: check params.arguments"), False),
        (415, _rpc_error(-32600, "Unsupported Media Type: send application/json."), False),
        (202, b"", True),
    ],
)
def test_fuzz_invariants_accept_well_formed_answers(status: int, body: bytes, accepted: bool) -> None:
    assert problems(status, body, REQUEST, TOOLS) == ([], accepted)


def test_log_check_flags_error_events_tracebacks_and_plain_text() -> None:
    log = "\n".join([
        json.dumps({"event": "request", "level": "info"}),
        json.dumps({"event": "tool_crashed", "level": "error"}),
        "Traceback (most recent call last):",
    ])
    assert [p.split(":")[0] for p in log_problems(log)] == ["line 2", "line 3 is not JSON"]
    assert log_problems(json.dumps({"event": "request", "level": "warning"})) == []


def test_store_check_reports_lost_and_altered_writes(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, text TEXT, deleted_at INTEGER)")
        conn.executemany("INSERT INTO memories VALUES (?, ?, ?)", [(1, "kept", None), (2, "edited", None),
                                                                    (3, "forgotten", 5)])
    missing, changed, integrity = check_store(database, {1: "kept", 2: "original", 3: "forgotten", 4: "never"})
    assert (missing, changed, integrity) == ([3, 4], [2], "ok")


def test_store_watch_sees_every_commit_by_another_connection_and_nothing_else(tmp_path: Path) -> None:
    database = tmp_path / "store.db"
    with sqlite3.connect(database) as conn:
        conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, text TEXT)")
    watch = StoreWatch(database)
    try:
        assert not watch.changed()
        with sqlite3.connect(database) as conn:
            conn.execute("SELECT count(*) FROM memories").fetchone()
        assert not watch.changed()
        with sqlite3.connect(database) as conn:
            conn.execute("INSERT INTO memories (text) VALUES ('x')")
        assert watch.changed()
        assert not watch.changed()
    finally:
        watch.close()


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert (percentile(values, 0.5), percentile(values, 0.99), percentile(values, 1.0)) == (50.0, 99.0, 100.0)
    assert percentile([], 0.5) == 0.0


# --- against real servers ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["echo-baseline", "echo-stack"])
def test_load_generator_measures_a_server_from_its_own_process(tmp_path: Path, kind: str) -> None:
    """The two servers `bench/run` compares for issue 2, driven the way `bench/run` drives them."""
    token = secrets.token_urlsafe(32)
    port = free_port()
    spec = ServerSpec(kind, [PYTHON, "-m", "bench.harness.servers", kind, "--port", str(port)], port,
                      env={"OWNSONA_HOME": str(tmp_path), "OWNSONA_API_TOKEN": token}, token=token,
                      path="/echo" if kind == "echo-baseline" else "/mcp")
    with ServerProcess(spec, tmp_path / "server.log") as server:
        assert server.wait_ready() > 0
        result = run_in_subprocess(LoadSpec(url=spec.url, token=token, scenario="echo", concurrency=4,
                                            max_requests=300, max_seconds=20))
        assert server.rss_mb() > 10
    assert (result.requests, result.errors) == (300, 0), result.error_samples
    assert 0 < result.p50_ms <= result.p99_ms <= result.max_ms
    assert result.rps > 0


def test_sigkill_during_concurrent_writes_loses_no_acknowledged_write(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    spec = ownsona_spec(home, secrets.token_urlsafe(32))
    report = crash_round(spec, home / "ownsona.db", tmp_path / "server.log", clients=8, kill_after=1.0, nonce="t")
    assert report.acknowledged > 0
    assert report.missing == []
    assert report.changed == []
    assert report.integrity == "ok"
    assert report.served_after_restart


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One `ownsona serve` over 300 seeded memories, shared by the load and fuzz tests."""
    root = tmp_path_factory.mktemp("chaos")
    home = root / "home"
    seed_store(home, 300)
    server = ServerProcess(ownsona_spec(home, secrets.token_urlsafe(32)), root / "server.log")
    with server:
        server.wait_ready()
        yield server


def test_sustained_mixed_load_at_32_clients_has_no_errors(live_server: ServerProcess) -> None:
    spec = live_server.spec
    result = run_in_subprocess(LoadSpec(url=spec.url, token=spec.token, scenario="mixed", concurrency=32,
                                        max_requests=2_000, max_seconds=5, nonce=secrets.token_hex(3)))
    assert result.errors == 0, result.error_samples
    assert result.requests >= 100


def test_fuzzed_bodies_headers_and_arguments_keep_the_invariants(live_server: ServerProcess) -> None:
    database = Path(live_server.spec.env["OWNSONA_HOME"]) / "ownsona.db"
    lines_before = len(live_server.log_text().splitlines())
    report = fuzz(live_server.spec, database, examples=300, derandomize=True)
    assert report.failure is None, report.failure
    assert report.accepted > 0 and report.refused > 0  # both paths were exercised
    new_log = "\n".join(live_server.log_text().splitlines()[lines_before:])
    assert log_problems(new_log) == []


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("confirm", {"id": 2**63}, "id"),
        ("get_memory", {"id": 2**63}, "id"),
        ("forget", {"id": 2**63}, "id"),
        ("count_memories", {"min_chars": 2**63}, "min_chars"),
        ("list_memories", {"max_chars": 2**64}, "max_chars"),
    ],
)
def test_integers_beyond_sqlite_range_are_refused_by_name(
    live_server: ServerProcess, tool: str, arguments: dict[str, int], field: str
) -> None:
    """Found by the fuzzer: SQLite integers stop at 2**63-1; a larger one must not crash the tool."""
    status, body = post(live_server.spec, wire.tool_call(tool, arguments, 1))
    payload = wire.tool_payload(json.loads(body)["result"])
    assert status == 200
    assert payload["error"]["code"] == "INVALID_INPUT", payload
    assert field in payload["error"]["message"]
