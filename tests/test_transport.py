"""/mcp as a client sees it: the SDK client in both eras, and every protocol edge case of issue 2."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
import mcp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from mcp.client.streamable_http import streamable_http_client

from conftest import TEST_TOKEN, make_test_registry, token_store_for
from ownsona.app import build_app

AUTH = {"Authorization": f"Bearer {TEST_TOKEN}"}
MODERN = "2026-07-28"


@pytest.fixture
async def client(aiohttp_client: Any, settings: Any) -> TestClient:
    return await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))


def rpc(method: str, params: dict[str, Any] | None = None, request_id: int | str | None = 1) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if request_id is not None:
        body["id"] = request_id
    if params is not None:
        body["params"] = params
    return body


def modern_params(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        **(extra or {}),
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    }


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    headers = {**AUTH, "MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name:
        headers["Mcp-Name"] = name
    return headers


async def post(client: TestClient, body: Any, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    return await client.post("/mcp", json=body, headers={**AUTH, **(headers or {})}, **kwargs)


# --- the SDK client is the conformance oracle ---------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
@pytest.mark.parametrize("credential", ["header", "query"])
async def test_sdk_client_lists_and_calls_tools(aiohttp_server: Any, settings: Any, mode: str, credential: str) -> None:
    server = await aiohttp_server(build_app(settings, token_store_for(settings), make_test_registry()))
    url = str(server.make_url("/mcp"))
    headers: dict[str, str] = {}
    if credential == "header":
        headers = AUTH
    else:
        url += f"?token={TEST_TOKEN}"
    async with httpx2.AsyncClient(headers=headers) as http:
        async with mcp.Client(streamable_http_client(url, http_client=http), mode=mode) as session:
            tools = await session.list_tools()
            assert [t.name for t in tools.tools] == ["echo", "refuse", "crash"]
            echo = tools.tools[0]
            assert echo.annotations is not None and echo.annotations.read_only_hint is True
            assert echo.input_schema["properties"]["times"]["maximum"] == 5
            result = await session.call_tool("echo", {"text": "hi", "times": 2})
            assert not result.is_error
            assert result.structured_content == {"ok": True, "echo": "hi hi", "user_id": "default"}
            assert json.loads(result.content[0].text) == result.structured_content
            assert session.protocol_version == (MODERN if mode == "auto" else "2025-11-25")
            assert session.server_info is not None and session.server_info.name == "ownsona"
            if mode == "auto":
                assert result.meta and "io.modelcontextprotocol/serverInfo" in result.meta


# --- initialize and versions -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"])
async def test_initialize_echoes_known_handshake_versions(client: TestClient, version: str) -> None:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    response = await post(client, rpc("initialize", params))
    body = await response.json()
    assert response.status == 200
    assert body["result"]["protocolVersion"] == version
    assert body["result"]["serverInfo"]["name"] == "ownsona"
    assert body["result"]["capabilities"]["tools"] == {"listChanged": False}


@pytest.mark.parametrize("version", ["1999-01-01", MODERN])
async def test_initialize_counter_offers_latest_handshake_version(client: TestClient, version: str) -> None:
    params = {"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}
    body = await (await post(client, rpc("initialize", params))).json()
    assert body["result"]["protocolVersion"] == "2025-11-25"


async def test_missing_version_header_means_2025_03_26(client: TestClient) -> None:
    body = await (await post(client, rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}}))).json()
    # 2025-03-26 has no structuredContent; the text content carries the payload.
    assert "structuredContent" not in body["result"]
    assert json.loads(body["result"]["content"][0]["text"])["echo"] == "x"


async def test_version_header_selects_structured_content(client: TestClient) -> None:
    call = rpc("tools/call", {"name": "echo", "arguments": {"text": "x"}})
    body = await (await post(client, call, {"MCP-Protocol-Version": "2025-06-18"})).json()
    assert body["result"]["structuredContent"]["echo"] == "x"


async def test_unsupported_version_header_is_400_with_supported_list(client: TestClient) -> None:
    response = await post(client, rpc("tools/list"), {"MCP-Protocol-Version": "2030-01-01"})
    body = await response.json()
    assert response.status == 400
    assert body["error"]["code"] == -32022
    assert "2025-11-25" in body["error"]["data"]["supported"]
    assert MODERN in body["error"]["data"]["supported"]


# --- simple methods and non-requests -----------------------------------------------------------


async def test_ping_answers_empty_result(client: TestClient) -> None:
    body = await (await post(client, rpc("ping"))).json()
    assert body == {"jsonrpc": "2.0", "id": 1, "result": {}}


@pytest.mark.parametrize(
    "message",
    [
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 3}},
        {"jsonrpc": "2.0", "id": 7, "result": {}},
        {"jsonrpc": "2.0", "id": 7, "error": {"code": -1, "message": "no"}},
    ],
)
async def test_notifications_and_client_responses_get_202_without_body(client: TestClient, message: Any) -> None:
    response = await post(client, message)
    assert response.status == 202
    assert await response.read() == b""


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT"])
async def test_other_http_methods_get_405_with_allow_post(client: TestClient, method: str) -> None:
    response = await client.request(method, "/mcp", headers=AUTH)
    assert response.status == 405
    assert response.headers["Allow"] == "POST"


# --- lenient headers ---------------------------------------------------------------------------


@pytest.mark.parametrize("accept", [None, "*/*", "application/json", "application/json, text/event-stream"])
async def test_accept_is_lenient(client: TestClient, accept: str | None) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    response = await client.post("/mcp", data=json.dumps(rpc("ping")), headers=headers)
    assert response.status == 200


async def test_accept_without_json_is_406(client: TestClient) -> None:
    response = await post(client, rpc("ping"), {"Accept": "text/event-stream"})
    assert response.status == 406


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/json;charset=UTF-8"])
async def test_content_type_with_parameters_is_fine(client: TestClient, content_type: str) -> None:
    response = await client.post("/mcp", data=json.dumps(rpc("ping")), headers={**AUTH, "Content-Type": content_type})
    assert response.status == 200


async def test_non_json_content_type_is_415(client: TestClient) -> None:
    response = await client.post("/mcp", data=json.dumps(rpc("ping")), headers={**AUTH, "Content-Type": "text/plain"})
    assert response.status == 415


# --- JSON-RPC errors, handshake era (HTTP 200) and 2026 era (mapped statuses) -----------------


async def raw_post(client: TestClient, data: bytes, headers: dict[str, str] | None = None) -> Any:
    return await client.post("/mcp", data=data, headers={**AUTH, "Content-Type": "application/json", **(headers or {})})


async def test_malformed_json_is_parse_error(client: TestClient) -> None:
    response = await raw_post(client, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    body = await response.json()
    assert body["error"]["code"] == -32700 and body["id"] is None
    assert response.status == 200


async def test_malformed_json_is_400_in_the_modern_era(client: TestClient) -> None:
    response = await raw_post(client, b"{nope", {"MCP-Protocol-Version": MODERN})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32700


async def test_batch_is_invalid_request(client: TestClient) -> None:
    body = await (await post(client, [rpc("ping"), rpc("ping", request_id=2)])).json()
    assert body["error"]["code"] == -32600


@pytest.mark.parametrize(
    "message",
    [{"jsonrpc": "1.0", "id": 1, "method": "ping"}, {"id": 1, "method": "ping"}, {"jsonrpc": "2.0", "id": 1}, "ping", 3],
)
async def test_invalid_envelopes_are_invalid_request(client: TestClient, message: Any) -> None:
    body = await (await post(client, message)).json()
    assert body["error"]["code"] == -32600


async def test_unknown_method_is_method_not_found(client: TestClient) -> None:
    response = await post(client, rpc("resources/list"))
    assert response.status == 200
    assert (await response.json())["error"]["code"] == -32601


async def test_unknown_method_is_404_in_the_modern_era(client: TestClient) -> None:
    response = await post(client, rpc("nope/nothing", modern_params()), modern_headers("nope/nothing"))
    assert response.status == 404
    assert (await response.json())["error"]["code"] == -32601


async def test_bad_params_are_invalid_params(client: TestClient) -> None:
    response = await post(client, rpc("tools/call", {"arguments": {}}), {"MCP-Protocol-Version": "2025-11-25"})
    body = await response.json()
    assert response.status == 200
    assert body["error"]["code"] == -32602
    assert "name" in body["error"]["message"]


async def test_bad_params_are_400_in_the_modern_era(client: TestClient) -> None:
    params = modern_params({"arguments": {}})
    response = await post(client, rpc("tools/call", params), modern_headers("tools/call"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32602


async def test_unknown_tool_is_invalid_params(client: TestClient) -> None:
    body = await (await post(client, rpc("tools/call", {"name": "nope", "arguments": {}}))).json()
    assert body["error"]["code"] == -32602
    assert "Unknown tool: nope" in body["error"]["message"]


# --- the 2026-07-28 envelope -------------------------------------------------------------------


async def test_server_discover_lists_versions_and_stamps_server_info(client: TestClient) -> None:
    response = await post(client, rpc("server/discover", modern_params()), modern_headers("server/discover"))
    result = (await response.json())["result"]
    assert response.status == 200
    assert MODERN in result["supportedVersions"] and "2024-11-05" in result["supportedVersions"]
    assert result["resultType"] == "complete"
    assert result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"] == "ownsona"


async def test_modern_request_without_meta_is_invalid_params(client: TestClient) -> None:
    response = await post(client, rpc("tools/list", {}), modern_headers("tools/list"))
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32602


@pytest.mark.parametrize(
    "headers",
    [
        {"Mcp-Method": "tools/list"},  # method header disagrees with the body
        {"Mcp-Name": "crash"},  # name header disagrees with params.name
    ],
)
async def test_modern_header_body_mismatch_is_400(client: TestClient, headers: dict[str, str]) -> None:
    params = modern_params({"name": "echo", "arguments": {"text": "x"}})
    response = await post(client, rpc("tools/call", params), {**modern_headers("tools/call", "echo"), **headers})
    assert response.status == 400
    assert (await response.json())["error"]["code"] == -32020


async def test_modern_tool_call_carries_result_type(client: TestClient) -> None:
    params = modern_params({"name": "echo", "arguments": {"text": "x"}})
    response = await post(client, rpc("tools/call", params), modern_headers("tools/call", "echo"))
    result = (await response.json())["result"]
    assert result["resultType"] == "complete"
    assert result["structuredContent"]["echo"] == "x"


# --- body limit and Origin ---------------------------------------------------------------------


async def test_body_over_limit_is_413_without_reading_it(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(max_body_bytes="2048")
    client = await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))
    port = client.server.port
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        "POST /mcp HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {TEST_TOKEN}\r\nContent-Length: 104857600\r\n\r\n"
    )
    writer.write(head.encode() + b"{")  # 100 MiB announced, one byte sent
    await writer.drain()
    status_line = await asyncio.wait_for(reader.readline(), timeout=5)
    writer.close()
    assert b" 413 " in status_line


async def test_chunked_body_over_limit_is_413(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(max_body_bytes="2048")
    client = await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 1024

    response = await client.post("/mcp", data=chunks(), headers={**AUTH, "Content-Type": "application/json"})
    assert response.status == 413


async def test_foreign_origin_is_403(client: TestClient) -> None:
    response = await post(client, rpc("ping"), {"Origin": "https://evil.example"})
    assert response.status == 403


async def test_allowed_origin_passes(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(allowed_origins="https://app.example, https://other.example")
    client = await aiohttp_client(build_app(settings, token_store_for(settings), make_test_registry()))
    response = await post(client, rpc("ping"), {"Origin": "https://other.example"})
    assert response.status == 200


# --- tool errors -------------------------------------------------------------------------------


async def call_tool(client: TestClient, name: str, arguments: Any) -> dict[str, Any]:
    call = rpc("tools/call", {"name": name, "arguments": arguments})
    return (await (await post(client, call, {"MCP-Protocol-Version": "2025-11-25"})).json())["result"]


async def test_argument_errors_name_the_field_and_not_the_value(client: TestClient) -> None:
    result = await call_tool(client, "echo", {"text": "SENSITIVE-VALUE" * 10, "times": "many"})
    payload = json.loads(result["content"][0]["text"])
    assert result["isError"] is True
    assert payload["ok"] is False and payload["error"]["code"] == "INVALID_INPUT"
    assert "text" in payload["error"]["message"] and "times" in payload["error"]["message"]
    assert "SENSITIVE" not in payload["error"]["message"] and "many" not in payload["error"]["message"]


async def test_missing_and_unknown_arguments_are_named(client: TestClient) -> None:
    result = await call_tool(client, "echo", {"txt": "x"})
    message = json.loads(result["content"][0]["text"])["error"]["message"]
    assert "text: is required" in message


async def test_deliberate_tool_error_keeps_code_and_message(client: TestClient) -> None:
    result = await call_tool(client, "refuse", {"text": "x"})
    assert result["isError"] is True
    assert result["structuredContent"] == {"ok": False, "error": {"code": "NOT_FOUND", "message": "Memory 42 not found."}}


async def test_crashing_tool_returns_generic_message(client: TestClient) -> None:
    result = await call_tool(client, "crash", {"text": "internal-detail-xyz"})
    text = result["content"][0]["text"]
    assert result["isError"] is True
    assert "internal-detail-xyz" not in text and "RuntimeError" not in text and "Traceback" not in text
    assert json.loads(text)["error"]["code"] == "INTERNAL_ERROR"


async def test_tools_list_carries_schemas_and_annotations(client: TestClient) -> None:
    body = await (await post(client, rpc("tools/list"), {"MCP-Protocol-Version": "2025-11-25"})).json()
    echo, refuse, crash = body["result"]["tools"]
    assert echo["inputSchema"]["required"] == ["text"]
    assert echo["inputSchema"]["properties"]["times"]["minimum"] == 1
    assert echo["outputSchema"]["properties"]["echo"]["type"] == "string"
    assert echo["annotations"]["readOnlyHint"] is True and echo["annotations"]["idempotentHint"] is True
    assert crash["annotations"]["destructiveHint"] is True and crash["annotations"]["readOnlyHint"] is False


async def test_healthz_is_open_and_says_nothing_secret(client: TestClient) -> None:
    response = await client.get("/healthz")
    body = await response.json()
    assert response.status == 200
    assert body["status"] == "ok" and "version" in body
    assert TEST_TOKEN not in json.dumps(body)


async def test_handler_is_registered_as_post_route() -> None:
    """Guard: /mcp is served by bound methods (aiohttp deprecates callable instances)."""
    app = web.Application()
    from ownsona.mcp.transport import McpEndpoint

    McpEndpoint(make_test_registry(), allowed_origins=frozenset(), max_body_bytes=1024).add_routes(app)
    methods = {route.method for route in app.router.routes()}
    assert {"POST", "*"} <= methods
