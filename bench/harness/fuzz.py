"""Fuzzing a live server with hypothesis: JSON-RPC bodies, headers and tool arguments.

Invariants, checked on every response:
  * no 5xx;
  * a refusal is a JSON-RPC error or a tool error (`isError`) whose message is not empty, is not
    the generic internal-error text (that means an unhandled exception), and, for a bad argument
    or parameter, names a field;
  * a refused call leaves the store exactly as it was;
and, once at the end, no error or traceback in the server's log.
"""

from __future__ import annotations

import http.client
import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.harness import wire
from bench.harness.procs import LOOPBACK, ServerSpec, post

INTERNAL_ERROR_CODE = -32603
GENERIC_MESSAGES = ("internal error", "server log has the details")
# Besides the tools' own argument names, these name what a refusal may be about.
ENVELOPE_WORDS = {"arguments", "method", "jsonrpc", "id", "name", "tool", "_meta", "protocolversion", "header"}
KNOWN_METHODS = ["initialize", "ping", "tools/list", "tools/call", "server/discover", "notifications/initialized",
                 "resources/list", "prompts/list"]
SUPPORTED_VERSIONS = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"]
# Where integer types end: JavaScript's safe range, SQLite's 64-bit INTEGER, and just past them.
INTEGER_EDGES = [2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1]
HEADER_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)

# --- strategies ---------------------------------------------------------------------------------

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """Pick a strategy with the given relative weight (`one_of` would weigh them equally)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


def _types(schema: dict[str, Any]) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set(schema.get("type") or ())
    for option in schema.get("anyOf", []):
        found |= _types(option)
    return found


def plausible(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values of roughly the right type for one argument, edge values included."""
    types = _types(schema)
    options: list[st.SearchStrategy[Any]] = []
    if "string" in types:
        options.append(st.text(max_size=60) | st.sampled_from(["", " ", "2027-01-01T00:00:00Z", "x" * 20_000,
                                                                "AKIAIOSFODNN7EXAMPLE secret"]))
    if "integer" in types:
        options.append(st.integers(-3, 30) | st.integers(-(2**70), 2**70) | st.sampled_from(INTEGER_EDGES))
    if "number" in types:
        options.append(st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from([0.0, 0.5, 1.0, 1.5, -0.1]))
    if "boolean" in types:
        options.append(st.booleans())
    if "array" in types:
        options.append(st.lists(st.text(max_size=70) | json_scalars, max_size=20))
    if "null" in types:
        options.append(st.none())
    return st.one_of(*options) if options else json_values


def tool_arguments(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """A subset of a tool's declared arguments, sometimes junk or an extra key, sometimes not an object."""
    properties: dict[str, Any] = schema.get("properties", {})
    required = set(schema.get("required", ()))
    values = {name: weighted((6, plausible(prop)), (1, json_values)) for name, prop in properties.items()}
    typed = st.fixed_dictionaries(
        {name: v for name, v in values.items() if name in required},
        optional={name: v for name, v in values.items() if name not in required},
    ) | st.fixed_dictionaries({}, optional=values)
    with_extra = st.tuples(typed, st.text(min_size=1, max_size=10), json_values).map(lambda t: {**t[0], t[1]: t[2]})
    return weighted((12, typed), (2, with_extra), (1, json_values))


def tool_calls(tools: dict[str, dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    names = sorted(tools)

    def call(name: str) -> st.SearchStrategy[dict[str, Any]]:
        arguments = tool_arguments(tools[name]) if name in tools else json_values
        return st.builds(lambda a, i: wire.tool_call(name, a, i), arguments, st.integers(0, 10**6))

    return weighted((12, st.sampled_from(names)), (1, st.text(max_size=20))).flatmap(call)


def envelopes() -> st.SearchStrategy[Any]:
    """JSON-RPC-shaped objects with any member missing or wrong."""
    members = {
        "jsonrpc": st.sampled_from(["2.0", "1.0", 2.0]) | json_values,
        "id": st.integers() | st.text(max_size=10) | json_values,
        "method": st.sampled_from(KNOWN_METHODS) | st.text(max_size=20) | json_values,
        "params": st.dictionaries(st.text(max_size=10), json_values, max_size=4) | json_values,
        "result": json_values,
        "error": json_values,
    }
    return st.fixed_dictionaries({}, optional=members)


def bodies(tools: dict[str, dict[str, Any]]) -> st.SearchStrategy[bytes]:
    tool_bodies = tool_calls(tools).map(wire.encode)
    return weighted(
        (16, tool_bodies),
        (2, envelopes().map(wire.encode)),
        (1, json_values.map(wire.encode)),
        (1, st.binary(max_size=64)),
        (1, tool_bodies.flatmap(lambda b: st.integers(0, len(b)).map(lambda n: b[:n]))),  # truncated JSON
    )


HEADER_VARIANTS: dict[str, st.SearchStrategy[str]] = {
    "Content-Type": st.sampled_from(["application/json; charset=utf-8", "text/plain",
                                     "application/x-www-form-urlencoded", ""]) | HEADER_TEXT,
    "Accept": st.sampled_from(["*/*", "application/json", "text/event-stream", "text/html"]) | HEADER_TEXT,
    "MCP-Protocol-Version": st.sampled_from(SUPPORTED_VERSIONS) | HEADER_TEXT,
    "Mcp-Method": st.sampled_from(KNOWN_METHODS) | HEADER_TEXT,
    "Mcp-Name": HEADER_TEXT,
    "Origin": st.sampled_from(["http://127.0.0.1", "https://evil.example", "null"]) | HEADER_TEXT,
    "Mcp-Session-Id": HEADER_TEXT,
    "Authorization": st.sampled_from(["bearer {token}", "BEARER {token}", "  Bearer   {token}  "]),
}


def header_sets(token: str) -> st.SearchStrategy[dict[str, str]]:
    """A valid client's headers with up to three of them changed or dropped; always authenticated
    (the auth matrix has its own tests, and failed auth would throttle the fuzzer's address)."""

    def mutate(names: list[str]) -> st.SearchStrategy[dict[str, str]]:
        changes = {name: HEADER_VARIANTS[name] | st.none() for name in names if name != "Authorization"}
        if "Authorization" in names:
            changes["Authorization"] = HEADER_VARIANTS["Authorization"].map(lambda v: v.format(token=token))
        return st.fixed_dictionaries(changes)

    def apply(changes: dict[str, str | None]) -> dict[str, str]:
        headers = wire.headers(token)
        for name, value in changes.items():
            if value is None:
                headers.pop(name, None)
            else:
                headers[name] = value
        headers.setdefault("Authorization", f"Bearer {token}")
        return headers

    names = st.lists(st.sampled_from(sorted(HEADER_VARIANTS)), max_size=3, unique=True)
    return names.flatmap(mutate).map(apply)


# --- invariants ---------------------------------------------------------------------------------


class StoreWatch:
    """Tells whether anything was committed to the store since the last look.

    `PRAGMA data_version` on one open connection changes whenever another connection commits,
    which is exact (no write, however small, slips through) and costs nothing per request.
    """

    def __init__(self, database: Path) -> None:
        self._conn = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        self._version = self._read()

    def _read(self) -> int:
        return int(self._conn.execute("PRAGMA data_version").fetchone()[0])

    def changed(self) -> bool:
        version = self._read()
        changed, self._version = version != self._version, version
        return changed

    def close(self) -> None:
        self._conn.close()


def _vocabulary(body: bytes, tools: dict[str, dict[str, Any]]) -> set[str]:
    words = set(ENVELOPE_WORDS)
    for schema in tools.values():
        words |= set(schema.get("properties", {}))
    try:
        message = json.loads(body)
        arguments = message["params"]["arguments"]
        words |= {str(k) for k in arguments}
    except (ValueError, KeyError, TypeError):
        pass
    return {w.lower() for w in words if w}


def _names_a_field(message: str, vocabulary: set[str]) -> bool:
    """Whether the message mentions one of the words as a whole word (`id` is not in `invalid`)."""
    lowered = message.lower()
    return any(re.search(rf"(?<![a-z0-9_]){re.escape(word)}(?![a-z0-9_])", lowered) for word in vocabulary)


def problems(status: int, body: bytes, request: bytes, tools: dict[str, dict[str, Any]]) -> tuple[list[str], bool]:
    """What is wrong with one response, and whether it was a success (a call the server accepted)."""
    if status >= 500:
        return [f"HTTP {status}"], False
    if status == 202:
        return ([] if not body else ["202 with a body"]), True
    try:
        payload = json.loads(body)
    except ValueError:
        return [f"HTTP {status} body is not JSON: {body[:80]!r}"], False
    if status == 401:
        return ([] if payload.get("error", {}).get("code") == "AUTH_FAILED" else ["401 without AUTH_FAILED"]), False
    if not isinstance(payload, dict):
        return [f"HTTP {status} body is not an object"], False
    found: list[str] = []
    if "error" in payload:
        error = payload["error"]
        message = str(error.get("message", "")) if isinstance(error, dict) else ""
        code = error.get("code") if isinstance(error, dict) else None
        if not message.strip():
            found.append(f"JSON-RPC error {code} without a message")
        if code == INTERNAL_ERROR_CODE or any(g in message.lower() for g in GENERIC_MESSAGES):
            found.append(f"JSON-RPC internal error: {message[:100]}")
        if code == -32602 and not _names_a_field(message, _vocabulary(request, tools)):
            found.append(f"-32602 names no field: {message[:100]}")
        return found, False
    result = payload.get("result")
    if status != 200 or not isinstance(result, dict):
        return [f"HTTP {status} without error or result"], False
    if not result.get("isError"):
        return [], True
    error = wire.tool_payload(result).get("error", {})
    message = str(error.get("message", "")) if isinstance(error, dict) else ""
    code = error.get("code") if isinstance(error, dict) else None
    if not code or not message.strip():
        found.append(f"tool error without code or message: {wire.tool_text(result)[:100]}")
    if code == "INTERNAL_ERROR" or any(g in message.lower() for g in GENERIC_MESSAGES):
        found.append(f"tool crashed: {message[:100]}")
    if code == "INVALID_INPUT" and not _names_a_field(message, _vocabulary(request, tools)):
        found.append(f"INVALID_INPUT names no field: {message[:100]}")
    return found, False


def log_problems(log_text: str) -> list[str]:
    """Error-level events and tracebacks in a server's JSON-lines log."""
    found = []
    for number, line in enumerate(log_text.splitlines(), 1):
        try:
            event = json.loads(line)
        except ValueError:
            if line.strip():
                found.append(f"line {number} is not JSON: {line[:120]}")
            continue
        if not isinstance(event, dict):
            continue
        if event.get("level") in ("error", "critical") or "exception" in event or "Traceback" in line:
            found.append(f"line {number}: {line[:200]}")
    return found


# --- the run ------------------------------------------------------------------------------------


def list_tools(spec: ServerSpec) -> dict[str, dict[str, Any]]:
    status, body = post(spec, wire.request("tools/list", {}, 1))
    if wire.failure(status, body):
        raise RuntimeError(f"tools/list failed: HTTP {status}")
    return {tool["name"]: tool["inputSchema"] for tool in json.loads(body)["result"]["tools"]}


@dataclass
class FuzzReport:
    examples: int = 0
    accepted: int = 0
    refused: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failure: str | None = None


class _Connection:
    """One keep-alive connection, reopened when the server closes it (as it may after a 4xx)."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._conn: http.client.HTTPConnection | None = None

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(LOOPBACK, self._port, timeout=30)
            try:
                self._conn.request("POST", path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    self.close()
                return response.status, data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def fuzz(spec: ServerSpec, database: Path, *, examples: int, derandomize: bool = False) -> FuzzReport:
    """Run `examples` hypothesis examples against a live server; `failure` holds the first broken invariant.

    `derandomize` replays the same examples on every run (the test suite's choice: a red build
    then means a regression, not a lucky draw); the harness explores afresh each time.
    """
    assert spec.token is not None
    tools = list_tools(spec)
    report = FuzzReport()
    connection = _Connection(spec.port)
    store = StoreWatch(database)

    @settings(max_examples=examples, deadline=None, database=None, derandomize=derandomize,
              suppress_health_check=list(HealthCheck))
    @given(body=bodies(tools), headers=header_sets(spec.token))
    def one_request(body: bytes, headers: dict[str, str]) -> None:
        status, answer = connection.post(spec.path, body, headers)
        found, accepted = problems(status, answer, body, tools)
        if store.changed() and not accepted:
            found.append("a refused call changed the store")
        report.examples += 1
        report.accepted += accepted
        report.refused += not accepted
        report.statuses[status] = report.statuses.get(status, 0) + 1
        assert not found, f"{found}; HTTP {status}; request {body[:300]!r}; headers {headers}; answer {answer[:300]!r}"

    try:
        one_request()
    except Exception as exc:  # the falsifying example, or hypothesis reporting a flaky one
        report.failure = f"{type(exc).__name__}: {exc}"
    finally:
        connection.close()
        store.close()
    return report
