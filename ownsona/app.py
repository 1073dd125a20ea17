"""The HTTP application: middlewares, `/mcp`, `/healthz`. It serves whatever tool registry it is given.

Composition of the real server (store, embeddings, memory tools, OAuth) lives in `server.py`;
keeping this layer free of it lets tests and benchmarks run the exact HTTP stack with any tools.
"""

from __future__ import annotations

from aiohttp import web

from ownsona import __version__
from ownsona.auth.middleware import (
    Authenticator,
    FailureThrottle,
    auth_middleware,
    request_context_middleware,
)
from ownsona.auth.tokens import TokenStore
from ownsona.config import Settings
from ownsona.mcp.registry import ToolRegistry
from ownsona.mcp.transport import McpEndpoint

SETTINGS_KEY = web.AppKey("ownsona_settings", Settings)
AUTHENTICATOR_KEY = web.AppKey("ownsona_authenticator", Authenticator)
REGISTRY_KEY = web.AppKey("ownsona_registry", ToolRegistry)

MCP_PATH = "/mcp"


def build_app(settings: Settings, tokens: TokenStore, registry: ToolRegistry) -> web.Application:
    """An aiohttp app serving `registry` at /mcp behind the token middleware."""
    authenticator = Authenticator(
        tokens,
        FailureThrottle(settings.auth_failure_limit, settings.auth_failure_window_seconds),
    )
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            request_context_middleware(settings.trusted_proxies),
            auth_middleware(authenticator, frozenset({MCP_PATH})),
        ],
    )
    app[SETTINGS_KEY] = settings
    app[AUTHENTICATOR_KEY] = authenticator
    app[REGISTRY_KEY] = registry
    McpEndpoint(
        registry, allowed_origins=allowed_origins(settings), max_body_bytes=settings.max_body_bytes
    ).add_routes(app, MCP_PATH)
    app.router.add_get("/healthz", healthz)
    return app


def allowed_origins(settings: Settings) -> frozenset[str]:
    """Browsers may call /mcp only from configured origins (DNS-rebinding defence)."""
    origins = {origin.rstrip("/") for origin in settings.allowed_origins}
    if settings.public_url:
        origins.add(settings.public_url.rstrip("/"))
    return frozenset(origins)


async def healthz(request: web.Request) -> web.Response:
    """Liveness for load balancers and `ownsona doctor`: no auth, nothing secret."""
    return web.json_response({"status": "ok", "version": __version__})
