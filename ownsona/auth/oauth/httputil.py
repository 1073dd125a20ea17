"""Small HTTP helpers shared by the OAuth endpoints: JSON errors, caching and CORS headers."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ownsona.auth.middleware import CLIENT_ADDRESS_KEY, client_address
from ownsona.config import Settings

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
# The metadata, registration, token and revocation endpoints are called by browser-based MCP
# clients too; none of them uses cookies, so a wildcard origin without credentials is safe.
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
    "Access-Control-Max-Age": "600",
}


def json_response(body: dict[str, Any], *, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json") -> web.Response:
    response = web.json_response(body, status=status, content_type=content_type)
    response.headers.update(CORS)
    response.headers.update(headers or {})
    return response


def oauth_error(error: str, description: str, *, status: int = 400, headers: dict[str, str] | None = None
                ) -> web.Response:
    """An RFC 6749 §5.2 error body; descriptions are fixed texts, never request data."""
    return json_response({"error": error, "error_description": description}, status=status,
                         headers={**NO_STORE, **(headers or {})})


async def preflight(request: web.Request) -> web.Response:
    return web.Response(status=204, headers=CORS)


def remote_address(request: web.Request, settings: Settings) -> str:
    """The caller's address as the request-context middleware decided it (proxy-aware)."""
    return request.get(CLIENT_ADDRESS_KEY) or client_address(request, frozenset(settings.trusted_proxies))
