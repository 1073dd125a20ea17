"""`ownsona doctor`: an end-to-end check of a deployed server, as a client sees it.

It walks the path every assistant takes (through nginx, TLS and the token check) with plain
JSON-RPC over aiohttp: the 401 challenge without a token and with a wrong one, `initialize`,
`tools/list`, then `remember` → `recall` → `forget` (hard delete) of a memory it made itself, so a
healthy server is left as it was found. Unlike a smoke script it asserts every step and the exit
status says whether the deployment works. The token is sent only as a bearer header and never
printed; URLs are printed without their query string.
"""

from __future__ import annotations

import json
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

CLIENT_PROTOCOL_VERSION = "2025-06-18"
REQUIRED_TOOLS = ("remember", "recall", "forget")
EXPECTED_CHALLENGE = 'Bearer realm="ownsona"'
DOCTOR_TAG = "ownsona-doctor"


class DoctorError(Exception):
    """A step failed; the message is what the report shows."""


@dataclass
class CheckResult:
    name: str
    ok: bool
    detail: str


@dataclass
class DoctorReport:
    url: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    def render(self) -> str:
        lines = [f"ownsona doctor: {self.url}"]
        for result in self.results:
            lines.append(f"  {'PASS' if result.ok else 'FAIL'}  {result.name}: {result.detail}")
        failed = sum(not r.ok for r in self.results)
        lines.append(
            f"all {len(self.results)} checks passed" if not failed else f"{failed} of {len(self.results)} checks FAILED"
        )
        return "\n".join(lines)


def mcp_url(url: str) -> str:
    """Accept `https://host` or `https://host/mcp`; refuse anything but http(s), and any query."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DoctorError(f"not an http(s) URL: {display_url(url)}")
    if parts.query:
        raise DoctorError(
            "give the URL without a query: a ?token= on the command line is visible to every user of this "
            "host; pass the token with --token-file or OWNSONA_DOCTOR_TOKEN (and --query-token to send it "
            "as ?token=)"
        )
    path = parts.path if parts.path not in ("", "/") else "/mcp"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def display_url(url: str) -> str:
    """The URL without query or fragment: a `?token=` must not reach the terminal or CI logs."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def tool_payload(result: Any) -> dict[str, Any]:
    """The JSON object carried by a tool result's first text content (the OwnSona wire contract)."""
    if not isinstance(result, dict):
        raise DoctorError("tools/call returned no result object")
    for item in result.get("content") or []:
        if isinstance(item, dict) and item.get("type") == "text":
            try:
                payload = json.loads(item["text"])
            except (TypeError, ValueError):
                raise DoctorError("tool result text is not JSON") from None
            if isinstance(payload, dict):
                return payload
    raise DoctorError("tool result has no JSON text content")


class McpClient:
    """Just enough of an MCP client: JSON-RPC POSTs to one URL, the token in a bearer header or,
    with `token_in_query`, as `?token=` (ChatGPT's "No auth" mode)."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str, *, token_in_query: bool = False) -> None:
        self._session = session
        self._url = url
        self._token = token
        self._token_in_query = token_in_query
        self._next_id = 0
        self.protocol_version: str | None = None

    async def _post(self, body: dict[str, Any], token: str | None) -> tuple[int, str, str, str | None]:
        """One POST; returns status, body text, Content-Type and WWW-Authenticate."""
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.protocol_version:
            headers["MCP-Protocol-Version"] = self.protocol_version
        params: dict[str, str] = {}
        if token is not None and self._token_in_query:
            params["token"] = token
        elif token is not None:
            headers["Authorization"] = f"Bearer {token}"
        async with self._session.post(self._url, json=body, headers=headers, params=params) as response:
            text = await response.text()
            return (response.status, text, response.headers.get("Content-Type", ""),
                    response.headers.get("WWW-Authenticate"))

    async def challenge(self, token: str | None) -> tuple[int, str | None]:
        """POST an `initialize` with `token` (or none); return the status and WWW-Authenticate."""
        status, _, _, challenge = await self._post(self._message("initialize", _initialize_params()), token)
        return status, challenge

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Any:
        body = self._message(method, params)
        status, text, content_type, _ = await self._post(body, self._token)
        if status != 200:
            raise DoctorError(f"{method}: HTTP {status}{_hint(status)}")
        message = _parse_reply(text, content_type, body["id"])
        if "error" in message:
            error = message["error"] or {}
            raise DoctorError(f"{method}: JSON-RPC error {error.get('code')}: {error.get('message')}")
        return message.get("result")

    async def notify(self, method: str) -> int:
        status, _, _, _ = await self._post({"jsonrpc": "2.0", "method": method}, self._token)
        return status

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        payload = tool_payload(await self.request("tools/call", {"name": name, "arguments": arguments}))
        if payload.get("ok") is not True:
            error = payload.get("error") or {}
            raise DoctorError(f"{name}: {error.get('code', 'error')}: {error.get('message', 'ok is not true')}")
        return payload

    def _message(self, method: str, params: dict[str, Any] | None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": self._next_id, "method": method}
        if params is not None:
            message["params"] = params
        return message


def _initialize_params() -> dict[str, Any]:
    return {
        "protocolVersion": CLIENT_PROTOCOL_VERSION,
        "capabilities": {},
        "clientInfo": {"name": "ownsona-doctor", "version": "1"},
    }


def _hint(status: int) -> str:
    return {
        401: " (the token was refused: check OWNSONA_DOCTOR_TOKEN / --token-file)",
        403: " (forbidden: an Origin or scope check refused the request)",
        404: " (no MCP endpoint here: is the URL right, and does nginx proxy it?)",
        413: " (request too large for nginx or the app)",
        502: " (nginx cannot reach the app: is `systemctl status ownsona` running?)",
        504: " (the app did not answer in time)",
    }.get(status, "")


def _parse_reply(text: str, content_type: str, request_id: int) -> dict[str, Any]:
    """A JSON body, or the matching `data:` event of an SSE body (servers may choose either)."""
    candidates: list[str]
    if content_type.startswith("text/event-stream"):
        candidates = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    else:
        candidates = [text]
    for candidate in candidates:
        try:
            message = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(message, dict) and message.get("id") == request_id:
            return message
    raise DoctorError(f"no JSON-RPC reply with id {request_id} in the response")


Step = Callable[[], Awaitable[str]]


async def _check(report: DoctorReport, name: str, step: Step, token: str) -> bool:
    try:
        detail = await step()
    except DoctorError as exc:
        report.results.append(CheckResult(name, False, str(exc)))
        return False
    except aiohttp.ClientError as exc:
        # Some client errors quote the request URL, which holds the token in --query-token mode.
        message = f"connection failed: {type(exc).__name__}: {exc}".replace(token, "[token]")
        report.results.append(CheckResult(name, False, message))
        return False
    except TimeoutError:
        report.results.append(CheckResult(name, False, "timed out"))
        return False
    report.results.append(CheckResult(name, True, detail))
    return True


async def run_doctor(
    url: str,
    token: str,
    *,
    token_in_query: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    timeout_seconds: float = 30.0,
) -> DoctorReport:
    """Run every check against `url` and return the report (never raises for a failed check)."""
    target = mcp_url(url)
    report = DoctorReport(display_url(target) + (" (token as ?token=)" if token_in_query else ""))
    connector = aiohttp.TCPConnector(ssl=ssl_context if ssl_context is not None else True)
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = McpClient(session, target, token, token_in_query=token_in_query)
        await _run_steps(report, client, token)
    return report


async def _run_steps(report: DoctorReport, client: McpClient, token: str) -> None:
    async def challenge(presented: str | None) -> str:
        status, header = await client.challenge(presented)
        if status != 401:
            warning = " (the server is open to anyone!)" if status == 200 else ""
            raise DoctorError(f"expected HTTP 401, got {status}{warning}")
        if not header or not header.startswith(EXPECTED_CHALLENGE):
            raise DoctorError(f"401 without `WWW-Authenticate: {EXPECTED_CHALLENGE}` (got {header!r})")
        return f"401 with WWW-Authenticate: {header}"

    async def initialize() -> str:
        result = await client.request("initialize", _initialize_params())
        if not isinstance(result, dict) or "protocolVersion" not in result:
            raise DoctorError("initialize returned no protocolVersion")
        client.protocol_version = str(result["protocolVersion"])
        info = result.get("serverInfo") or {}
        status = await client.notify("notifications/initialized")
        if status not in (200, 202, 204):
            raise DoctorError(f"notifications/initialized: HTTP {status}")
        return f"{info.get('name', '?')} {info.get('version', '?')}, protocol {client.protocol_version}"

    async def tools_list() -> str:
        result = await client.request("tools/list", {})
        names = [t.get("name") for t in (result or {}).get("tools", []) if isinstance(t, dict)]
        missing = [name for name in REQUIRED_TOOLS if name not in names]
        if missing:
            raise DoctorError(f"missing tools: {', '.join(missing)} (server lists {len(names)})")
        return f"{len(names)} tools, including {', '.join(REQUIRED_TOOLS)}"

    nonce = secrets.token_hex(8)
    text = f"ownsona doctor check {nonce} at {datetime.now(UTC):%Y-%m-%dT%H:%M:%SZ}; safe to delete"
    created: dict[str, int] = {}

    async def remember() -> str:
        payload = await client.call_tool("remember", {"text": text, "tags": [DOCTOR_TAG], "dedup_policy": "insert"})
        memory_id = payload.get("memory_id")
        if not isinstance(memory_id, int):
            raise DoctorError("remember returned no integer memory_id")
        created["id"] = memory_id
        return f"stored test memory {memory_id}"

    async def recall() -> str:
        payload = await client.call_tool("recall", {"query": f"ownsona doctor check {nonce}", "limit": 10})
        ids = [m.get("id") for m in payload.get("matches", []) if isinstance(m, dict)]
        if created["id"] not in ids:
            raise DoctorError(f"memory {created['id']} not among {len(ids)} matches")
        return f"found memory {created['id']} (rank {ids.index(created['id']) + 1} of {len(ids)})"

    async def forget() -> str:
        payload = await client.call_tool("forget", {"id": created["id"], "hard_delete": True})
        return f"hard-deleted memory {created['id']} ({payload.get('message', 'ok')})"

    async def check(name: str, step: Step) -> bool:
        return await _check(report, name, step, token)

    await check("401 without a token", lambda: challenge(None))
    await check("401 with a wrong token", lambda: challenge("doctor-wrong-" + secrets.token_hex(16)))
    if not await check("initialize", initialize):
        return
    await check("tools/list", tools_list)
    if await check("remember", remember):
        await check("recall", recall)
        await check("forget", forget)  # always clean up what remember made
