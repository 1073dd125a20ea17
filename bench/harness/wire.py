"""MCP over HTTP as a client sends it: request bodies, headers, and what counts as a failure.

Every benchmark target (OwnSona, the SDK's server, the bare echo endpoint) is driven with the same
bytes, so the figures compare servers, not clients. The handshake-era version 2025-06-18 is used:
both servers answer it statelessly without an `initialize` first, and it carries
`structuredContent`, so no server is spared any work.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = "2025-06-18"


def request(method: str, params: dict[str, Any] | None, request_id: int | str) -> dict[str, Any]:
    """A JSON-RPC 2.0 request object."""
    message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def tool_call(name: str, arguments: dict[str, Any], request_id: int | str) -> dict[str, Any]:
    return request("tools/call", {"name": name, "arguments": arguments}, request_id)


def initialize(request_id: int | str = 0) -> dict[str, Any]:
    return request(
        "initialize",
        {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "ownsona-bench", "version": "1"},
        },
        request_id,
    )


def encode(message: Any) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def headers(token: str | None) -> dict[str, str]:
    """What a Streamable HTTP client sends with every POST."""
    result = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        "MCP-Protocol-Version": PROTOCOL_VERSION,
    }
    if token:
        result["Authorization"] = f"Bearer {token}"
    return result


def failure(status: int, body: bytes) -> str | None:
    """Why a response to a request is not a success, or None when it is one.

    A success is HTTP 200 carrying a JSON-RPC `result` that is not a tool error (`isError`).
    """
    if status != 200:
        return f"HTTP {status}"
    try:
        payload = json.loads(body)
    except ValueError:
        return "response is not JSON"
    if not isinstance(payload, dict):
        return "response is not a JSON object"
    if "error" in payload:
        error = payload["error"] if isinstance(payload["error"], dict) else {}
        return f"JSON-RPC {error.get('code')}: {str(error.get('message'))[:120]}"
    result = payload.get("result")
    if not isinstance(result, dict):
        return "response has no result"
    if result.get("isError"):
        return f"tool error: {tool_text(result)[:160]}"
    return None


def tool_text(result: dict[str, Any]) -> str:
    """The text of a tool result's first content block ('' if it has none)."""
    content = result.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("text", ""))
    return ""


def tool_payload(result: dict[str, Any]) -> dict[str, Any]:
    """A memory tool's payload: `structuredContent` when present, else the JSON in the text block."""
    structured = result.get("structuredContent")
    if isinstance(structured, dict):
        return structured
    try:
        payload = json.loads(tool_text(result))
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}
