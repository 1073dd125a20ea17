"""MCP protocol facts the transport needs: versions, error codes, envelope keys, status mapping.

Everything here comes from `mcp_types` (the SDK's standalone wire package) or the specification,
so the transport never imports the full `mcp` SDK (it loads Starlette, uvicorn and more).
"""

from __future__ import annotations

from typing import Any, Final

from mcp_types import (
    CLIENT_CAPABILITIES_META_KEY,
    CLIENT_INFO_META_KEY,
    PROTOCOL_VERSION_META_KEY,
    SERVER_INFO_META_KEY,
)
from mcp_types.jsonrpc import (
    HEADER_MISMATCH,
    INTERNAL_ERROR,
    INVALID_PARAMS,
    INVALID_REQUEST,
    METHOD_NOT_FOUND,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    PARSE_ERROR,
    UNSUPPORTED_PROTOCOL_VERSION,
)
from mcp_types.version import (
    HANDSHAKE_PROTOCOL_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    MODERN_PROTOCOL_VERSIONS,
)

__all__ = [
    "CLIENT_CAPABILITIES_META_KEY",
    "CLIENT_INFO_META_KEY",
    "DEFAULT_NEGOTIATED_VERSION",
    "HANDSHAKE_PROTOCOL_VERSIONS",
    "HEADER_MISMATCH",
    "INTERNAL_ERROR",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "LATEST_HANDSHAKE_VERSION",
    "METHOD_NOT_FOUND",
    "MODERN_PROTOCOL_VERSIONS",
    "PARSE_ERROR",
    "PROTOCOL_VERSION_META_KEY",
    "SERVER_INFO_META_KEY",
    "SUPPORTED_VERSIONS",
    "UNSUPPORTED_PROTOCOL_VERSION",
    "JsonRpcError",
    "http_status",
]

# What a request without MCP-Protocol-Version is answered in (the spec's rule since 2025-06-18).
DEFAULT_NEGOTIATED_VERSION: Final = "2025-03-26"

SUPPORTED_VERSIONS: Final[tuple[str, ...]] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)

# Versions whose CallToolResult has `structuredContent` (it arrived in 2025-06-18).
STRUCTURED_CONTENT_VERSIONS: Final[frozenset[str]] = frozenset(
    v for v in SUPPORTED_VERSIONS if v >= "2025-06-18"
)

HEADER_PROTOCOL_VERSION: Final = "MCP-Protocol-Version"
HEADER_METHOD: Final = "Mcp-Method"
HEADER_NAME: Final = "Mcp-Name"

# Methods whose 2026-07-28 requests carry an `Mcp-Name` header, and the param it mirrors.
NAME_BEARING_METHODS: Final[dict[str, str]] = {
    "tools/call": "name",
    "resources/read": "uri",
    "prompts/get": "name",
}

# The 2026-07-28 era maps JSON-RPC errors to HTTP statuses; older eras answer 200.
_MODERN_STATUS: Final[dict[int, int]] = {
    PARSE_ERROR: 400,
    INVALID_REQUEST: 400,
    INVALID_PARAMS: 400,
    HEADER_MISMATCH: 400,
    MISSING_REQUIRED_CLIENT_CAPABILITY: 400,
    UNSUPPORTED_PROTOCOL_VERSION: 400,
    METHOD_NOT_FOUND: 404,
}


def http_status(code: int, *, modern: bool) -> int:
    """The HTTP status for a JSON-RPC error in the negotiated era."""
    return _MODERN_STATUS.get(code, 200) if modern else 200


class JsonRpcError(Exception):
    """A JSON-RPC error response; `message` must be safe to send (no values, no internals)."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def body(self, request_id: Any) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return {"jsonrpc": "2.0", "id": request_id, "error": error}


def unsupported_version(requested: Any) -> JsonRpcError:
    return JsonRpcError(
        UNSUPPORTED_PROTOCOL_VERSION,
        "Unsupported protocol version",
        {"supported": list(SUPPORTED_VERSIONS), "requested": requested if isinstance(requested, str) else None},
    )
