"""Streamable HTTP for MCP, stateless, JSON responses only: one POST in, one JSON reply out.

Why our own: aiohttp owns HTTP (DESIGN.md), and the SDK's server stack would bring Starlette and
its ASGI bridge. Shapes are validated with `mcp_types`, the SDK's standalone wire models.

Eras: the handshake era (2024-11-05 … 2025-11-25) negotiates with `initialize` and answers every
JSON-RPC error with HTTP 200; the stateless 2026-07-28 era carries the version in each request's
`_meta`, checks it against the headers, and maps error codes to HTTP statuses. No session is kept:
ChatGPT does not resend `Mcp-Session-Id`, so any it sends is ignored.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from mcp_types import jsonrpc_message_adapter
from mcp_types.jsonrpc import JSONRPCNotification, JSONRPCRequest
from mcp_types.methods import parse_client_request, serialize_server_result
from pydantic import ValidationError

from ownsona import __version__
from ownsona.auth.principal import PRINCIPAL_KEY
from ownsona.mcp import protocol as p
from ownsona.mcp.registry import ToolContext, ToolRegistry

log = structlog.get_logger("ownsona.mcp")

SERVER_NAME = "ownsona"
INSTRUCTIONS = (
    "OwnSona is the user's long-term memory, shared by all of their assistants. "
    "Call `recall` before answering anything that depends on who the user is, what they prefer, "
    "or what they told another assistant; call `remember` when the user states a durable fact "
    "or asks you to remember something."
)
JSON_CONTENT_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class Exchange:
    """One JSON-RPC request, with the protocol version it is answered in."""

    request_id: Any
    method: str
    params: dict[str, Any] | None
    version: str

    @property
    def modern(self) -> bool:
        return self.version in p.MODERN_PROTOCOL_VERSIONS


class McpEndpoint:
    """The `/mcp` route. Auth has already run (middleware); this class speaks MCP only."""

    def __init__(self, registry: ToolRegistry, *, allowed_origins: frozenset[str], max_body_bytes: int) -> None:
        self._registry = registry
        self._max_body_bytes = max_body_bytes
        self._allowed_origins = allowed_origins
        self._cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._server_info = {"name": SERVER_NAME, "title": "OwnSona", "version": __version__}

    def add_routes(self, app: web.Application, path: str = "/mcp") -> None:
        app.router.add_post(path, self.post)
        app.router.add_route("*", path, self.not_allowed)

    async def not_allowed(self, request: web.Request) -> web.Response:
        """GET (server stream) and DELETE (session end) are not offered: stateless, JSON only."""
        raise web.HTTPMethodNotAllowed(request.method, ["POST"])

    # --- HTTP ----------------------------------------------------------------------------------

    async def post(self, request: web.Request) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin is not None and origin not in self._allowed_origins:
            log.warning("origin_rejected", path=request.path)
            return _http_error(403, "Forbidden: Origin not allowed.")
        if not _content_type_ok(request):
            return _http_error(415, "Unsupported Media Type: send application/json.")
        if not _accepts_json(request.headers.get("Accept")):
            return _http_error(406, "Not Acceptable: this server answers with application/json.")

        if request.content_length is not None and request.content_length > self._max_body_bytes:
            return _http_error(413, "Request body too large.")  # refused before reading a byte of it
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _http_error(413, "Request body too large.")
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return self._reply_error(None, p.JsonRpcError(p.PARSE_ERROR, "Parse error: body is not valid JSON"), request)
        if isinstance(body, list):
            error = p.JsonRpcError(p.INVALID_REQUEST, "Invalid Request: batch requests are not supported")
            return self._reply_error(None, error, request)
        try:
            message = jsonrpc_message_adapter.validate_python(body, by_name=False)
        except ValidationError:
            request_id = body.get("id") if isinstance(body, dict) and isinstance(body.get("id"), (str, int)) else None
            error = p.JsonRpcError(p.INVALID_REQUEST, "Invalid Request: not a JSON-RPC 2.0 message")
            return self._reply_error(request_id, error, request)

        if not isinstance(message, JSONRPCRequest):
            # Notifications and client responses need no answer; a notification with a
            # bad version header is still refused, so a client learns early.
            if isinstance(message, JSONRPCNotification):
                header = request.headers.get(p.HEADER_PROTOCOL_VERSION)
                if header is not None and header not in p.SUPPORTED_VERSIONS:
                    return self._reply_error(None, p.unsupported_version(header), request, modern=True)
            return web.Response(status=202)

        try:
            exchange = self._classify(message, request)
        except p.JsonRpcError as error:
            return self._reply_error(message.id, error, request, modern=True)
        try:
            result = await self._dispatch(exchange, request)
        except p.JsonRpcError as error:
            return self._reply_error(exchange.request_id, error, request, modern=exchange.modern)
        except Exception:
            log.exception("mcp_method_failed", method=exchange.method[:100])
            error = p.JsonRpcError(p.INTERNAL_ERROR, "Internal error; the server log has the details.")
            return self._reply_error(exchange.request_id, error, request, modern=exchange.modern)
        if exchange.modern:
            result = {**result, "resultType": "complete"}
            result["_meta"] = {**result.get("_meta", {}), p.SERVER_INFO_META_KEY: self._server_info}
        return _json_response({"jsonrpc": "2.0", "id": exchange.request_id, "result": result})

    def _reply_error(
        self, request_id: Any, error: p.JsonRpcError, request: web.Request, *, modern: bool | None = None
    ) -> web.Response:
        if modern is None:
            modern = request.headers.get(p.HEADER_PROTOCOL_VERSION) in p.MODERN_PROTOCOL_VERSIONS
        return _json_response(error.body(request_id), status=p.http_status(error.code, modern=modern))

    # --- eras ----------------------------------------------------------------------------------

    def _classify(self, message: JSONRPCRequest, request: web.Request) -> Exchange:
        """Decide which protocol version answers this request, enforcing the 2026 envelope rules."""
        params = message.params if isinstance(message.params, dict) else None
        header = request.headers.get(p.HEADER_PROTOCOL_VERSION)
        if header is None:
            return Exchange(message.id, message.method, params, p.DEFAULT_NEGOTIATED_VERSION)
        if header in p.HANDSHAKE_PROTOCOL_VERSIONS or message.method == "initialize":
            return Exchange(message.id, message.method, params, header if header in p.SUPPORTED_VERSIONS else p.DEFAULT_NEGOTIATED_VERSION)
        if header not in p.MODERN_PROTOCOL_VERSIONS:
            raise p.unsupported_version(header)
        self._check_modern_envelope(message.method, params, request)
        return Exchange(message.id, message.method, params, header)

    @staticmethod
    def _check_modern_envelope(method: str, params: dict[str, Any] | None, request: web.Request) -> None:
        meta = params.get("_meta") if params else None
        if not isinstance(meta, dict):
            raise p.JsonRpcError(p.INVALID_PARAMS, "params._meta must be an object carrying the protocol envelope")
        missing = [k for k in (p.PROTOCOL_VERSION_META_KEY, p.CLIENT_CAPABILITIES_META_KEY) if k not in meta]
        if missing:
            raise p.JsonRpcError(p.INVALID_PARAMS, f"params._meta is missing: {', '.join(missing)}")
        for name in (p.HEADER_PROTOCOL_VERSION, p.HEADER_METHOD, p.HEADER_NAME):
            if len(request.headers.getall(name, [])) > 1:
                raise p.JsonRpcError(p.HEADER_MISMATCH, f"{name} header is sent more than once")
        if request.headers.get(p.HEADER_PROTOCOL_VERSION) != meta[p.PROTOCOL_VERSION_META_KEY]:
            raise p.JsonRpcError(p.HEADER_MISMATCH, f"{p.HEADER_PROTOCOL_VERSION} header does not match params._meta")
        if request.headers.get(p.HEADER_METHOD) != method:
            raise p.JsonRpcError(p.HEADER_MISMATCH, f"{p.HEADER_METHOD} header does not match the method")
        name_key = p.NAME_BEARING_METHODS.get(method)
        if name_key and params is not None and params.get(name_key) is not None:
            if _decode_header_value(request.headers.get(p.HEADER_NAME)) != params.get(name_key):
                raise p.JsonRpcError(p.HEADER_MISMATCH, f"{p.HEADER_NAME} header does not match params.{name_key}")

    # --- methods -------------------------------------------------------------------------------

    async def _dispatch(self, exchange: Exchange, request: web.Request) -> dict[str, Any]:
        try:
            parsed = parse_client_request(exchange.method, exchange.version, exchange.params)
        except KeyError:
            raise p.JsonRpcError(p.METHOD_NOT_FOUND, f"Method not found: {exchange.method[:100]}") from None
        except ValidationError as exc:
            raise p.JsonRpcError(p.INVALID_PARAMS, _describe_params_error(exc)) from None

        if exchange.method == "initialize":
            return self._initialize(parsed.params.protocol_version)
        if exchange.method == "server/discover":
            return self._cached(exchange, lambda: self._discover())
        if exchange.method == "ping":
            return {}
        if exchange.method == "tools/list":
            return self._cached(exchange, lambda: {"tools": self._registry.descriptors()})
        if exchange.method == "tools/call":
            return await self._call_tool(parsed.params.name, parsed.params.arguments, exchange, request)
        raise p.JsonRpcError(p.METHOD_NOT_FOUND, f"Method not found: {exchange.method[:100]}")

    def _initialize(self, requested: str) -> dict[str, Any]:
        """Echo a handshake version we speak; otherwise counter-offer the latest one."""
        version = requested if requested in p.HANDSHAKE_PROTOCOL_VERSIONS else p.LATEST_HANDSHAKE_VERSION
        key = ("initialize", version)
        if key not in self._cache:
            result = {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": self._server_info,
                "instructions": INSTRUCTIONS,
            }
            self._cache[key] = serialize_server_result("initialize", version, result)
        return self._cache[key]

    def _discover(self) -> dict[str, Any]:
        return {
            "supportedVersions": list(p.SUPPORTED_VERSIONS),
            "capabilities": {"tools": {"listChanged": False}},
            "instructions": INSTRUCTIONS,
        }

    def _cached(self, exchange: Exchange, build: Any) -> dict[str, Any]:
        """Results that never change while the server runs are shaped once per version."""
        key = (exchange.method, exchange.version)
        if key not in self._cache:
            result = build()
            if exchange.modern:
                # 2026-07-28 cacheable results must say how long a client may cache them; a
                # restart may change the tool set, so nothing is cached across requests.
                result = {"ttlMs": 0, "cacheScope": "private", "resultType": "complete", **result}
            self._cache[key] = serialize_server_result(exchange.method, exchange.version, result)
        return self._cache[key]

    async def _call_tool(
        self, name: str, arguments: dict[str, Any] | None, exchange: Exchange, request: web.Request
    ) -> dict[str, Any]:
        if name not in self._registry:
            raise p.JsonRpcError(p.INVALID_PARAMS, f"Unknown tool: {name[:100]}")
        ctx = ToolContext(principal=request[PRINCIPAL_KEY])
        result = await self._registry.call(name, arguments, ctx)
        if exchange.version not in p.STRUCTURED_CONTENT_VERSIONS:
            result = {k: v for k, v in result.items() if k != "structuredContent"}
        return result


# --- helpers ---------------------------------------------------------------------------------


def _json_response(payload: dict[str, Any], status: int = 200) -> web.Response:
    body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type=JSON_CONTENT_TYPE)


def _http_error(status: int, message: str) -> web.Response:
    """A transport-level refusal; the body is a JSON-RPC error without id, as the spec allows."""
    return _json_response({"jsonrpc": "2.0", "id": None, "error": {"code": p.INVALID_REQUEST, "message": message}}, status)


def _content_type_ok(request: web.Request) -> bool:
    if "Content-Type" not in request.headers:
        return True  # some clients omit it; the body is still parsed strictly as JSON
    return request.content_type in ("application/json", "application/json-rpc")


def _accepts_json(accept: str | None) -> bool:
    """Lenient: a missing header, `*/*`, `application/*` or `application/json` anywhere is fine."""
    if accept is None or not accept.strip():
        return True
    for item in accept.split(","):
        media = item.split(";", 1)[0].strip().lower()
        if media in ("*/*", "application/*", "application/json"):
            return True
    return False


def _describe_params_error(exc: ValidationError) -> str:
    fields = []
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        loc = ".".join(str(part) for part in err.get("loc", ()) if isinstance(part, (str, int)))
        if loc and loc not in fields:
            fields.append(loc)
    return "Invalid params" + (f": check {', '.join(fields[:10])}" if fields else "")


def _decode_header_value(value: str | None) -> str | None:
    """`Mcp-Name` carries non-ASCII names as `=?base64?…?=` (2026-07-28)."""
    if value is None or not (value.startswith("=?base64?") and value.endswith("?=")):
        return value
    payload = value[len("=?base64?") : -2]
    try:
        return base64.b64decode(payload, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
