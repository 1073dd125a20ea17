"""Every memory tool end to end: the `mcp` SDK client against the real server app on a real port."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx2
import mcp
import pytest
from mcp.client.streamable_http import streamable_http_client
from memory_fixtures import CountingEmbedder

from conftest import TEST_TOKEN, token_store_for
from ownsona.config import Settings
from ownsona.server import DATABASE_KEY, build_server_app

CATALOG = [
    "remember", "remember_batch", "recall", "search_memory", "build_context_prompt", "list_memories",
    "update_memory", "update_memory_batch", "confirm", "forget", "forget_batch", "find_near_duplicates",
    "text_search", "get_memory", "count_memories", "memory_stats", "list_tags", "export_memories",
    "restore", "search", "fetch",
]
READ_ONLY = {"recall", "search_memory", "build_context_prompt", "list_memories", "find_near_duplicates",
             "text_search", "get_memory", "count_memories", "memory_stats", "list_tags", "export_memories",
             "search", "fetch"}
DESTRUCTIVE = {"update_memory", "update_memory_batch", "forget", "forget_batch"}


class Caller:
    """One authenticated MCP session; `call` returns (is_error, payload) after checking the envelope."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> tuple[bool, dict[str, Any]]:
        result = await self.session.call_tool(name, arguments or {})
        payload = json.loads(result.content[0].text)
        assert result.structured_content == payload  # both forms carry the same payload
        if result.is_error:
            assert payload["ok"] is False and set(payload["error"]) == {"code", "message"}
        return bool(result.is_error), payload

    async def ok(self, name: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
        is_error, payload = await self.call(name, arguments)
        assert not is_error, payload
        return payload

    async def error(self, name: str, arguments: dict[str, Any], code: str) -> str:
        is_error, payload = await self.call(name, arguments)
        assert is_error, payload
        assert payload["error"]["code"] == code, payload
        return payload["error"]["message"]


@pytest.fixture
def embedder() -> CountingEmbedder:
    return CountingEmbedder()


@pytest.fixture
async def server(aiohttp_server: Any, make_settings: Callable[..., Settings], embedder: CountingEmbedder) -> Any:
    settings = make_settings(max_batch_size="3", reembed_on_start="false")
    tokens = token_store_for(settings)
    server = await aiohttp_server(build_server_app(settings, tokens, embedder=embedder))
    server.bob_token = tokens.create("bob", user_id="bob").value
    return server


@asynccontextmanager
async def connect(server: Any, token: str = TEST_TOKEN) -> AsyncIterator[Caller]:
    url = str(server.make_url("/mcp"))
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        async with mcp.Client(streamable_http_client(url, http_client=http), mode="legacy") as session:
            yield Caller(session)


async def test_catalog_order_annotations_and_schemas(server: Any) -> None:
    async with connect(server) as alice:
        tools = {t.name: t for t in (await alice.session.list_tools()).tools}
        assert list(tools) == CATALOG
        for name, tool in tools.items():
            assert tool.description and "Claude" not in tool.description and "ChatGPT" not in tool.description
            assert tool.annotations.read_only_hint is (name in READ_ONLY), name
            assert tool.annotations.destructive_hint is (name in DESTRUCTIVE), name
            assert tool.output_schema is not None, name
        remember = tools["remember"].input_schema["properties"]
        assert remember["importance"]["anyOf"][0]["maximum"] == 1.0
        assert remember["dedup_policy"]["anyOf"][0]["enum"] == ["insert", "skip_if_near", "ask"]
        assert tools["forget"].input_schema["properties"]["dry_run"]["type"] == "boolean"
        assert "up to 3" in tools["remember_batch"].description  # the configured batch size, not "200"
        assert tools["search"].input_schema["required"] == ["query"]
        assert tools["fetch"].input_schema["required"] == ["id"]


async def test_every_tool_answers_with_the_contract_keys(server: Any) -> None:
    async with connect(server) as alice:
        first = await alice.ok("remember", {"text": "My cat is called Miso.", "tags": ["pets"], "importance": 0.7})
        assert first == {"ok": True, "memory_id": 1, "message": "Ok"}
        batch = await alice.ok("remember_batch", {"items": [{"text": "I live in Porto."}, {"text": "I speak Dutch."}],
                                                  "source_provider": "test"})
        assert set(batch) == {"ok", "results", "summary"} and batch["summary"]["inserted"] == 2
        for name in ("recall", "search_memory"):
            found = await alice.ok(name, {"query": "what is my cat's name", "limit": 2})
            assert set(found) == {"ok", "query", "matches"} and found["matches"][0]["id"] == 1
            assert {"id", "text", "score", "created_at", "updated_at", "tags", "importance"} <= set(found["matches"][0])
        prompt = await alice.ok("build_context_prompt", {"user_prompt": "Pet food ideas?", "limit": 1})
        assert prompt["prompt"].startswith("The following are previously known facts:\n\nMy cat is called Miso.")
        listed = await alice.ok("list_memories", {"limit": 2})
        assert [m["id"] for m in listed["memories"]] == [3, 2] and "score" not in listed["memories"][0]
        updated = await alice.ok("update_memory", {"id": 2, "tags": ["home"], "expires_at": None})
        assert updated == {"ok": True, "memory_id": 2, "dry_run": False, "changed_fields": ["tags", "expires_at"],
                           "message": "Ok"}
        ub = await alice.ok("update_memory_batch", {"items": [{"id": 3, "importance": 0.9}], "dry_run": True})
        assert ub["dry_run"] is True and ub["results"][0]["message"] == "Would update"
        confirmed = await alice.ok("confirm", {"id": 1})
        assert set(confirmed) == {"ok", "memory_id", "last_confirmed_at", "message"}
        forgot = await alice.ok("forget", {"id": 3, "reason": "not true"})
        assert forgot == {"ok": True, "memory_id": 3, "dry_run": False, "already_deleted": False, "message": "Forgotten"}
        fb = await alice.ok("forget_batch", {"ids": [3], "dry_run": True})
        assert fb["summary"] == {"total": 1, "deleted": 0, "already_deleted": 1, "errors": 0}
        near = await alice.ok("find_near_duplicates", {})
        assert near == {"ok": True, "threshold": 0.92, "groups": [], "summary": {"groups": 0, "pairs": 0}}
        assert (await alice.ok("text_search", {"text": "PORTO"}))["matches"][0]["id"] == 2
        got = await alice.ok("get_memory", {"id": 3})
        assert got["memory"]["forget_reason"] == "not true" and got["memory"]["score"] == 0.0
        assert await alice.ok("count_memories", {"tags": ["pets"]}) == {"ok": True, "count": 1}
        stats = await alice.ok("memory_stats")
        assert (stats["total"], stats["active"], stats["soft_deleted"]) == (3, 2, 1)
        assert (await alice.ok("list_tags"))["tags"] == [{"tag": "home", "count": 1}, {"tag": "pets", "count": 1}]
        export = await alice.ok("export_memories")
        assert export["count"] == 3 and export["memories"][2]["deleted_at"]
        assert await alice.ok("restore", {"id": 3}) == {"ok": True, "memory_id": 3, "restored": True, "message": "Restored"}


async def test_search_and_fetch_in_the_deep_research_shape(server: Any) -> None:
    async with connect(server) as alice:
        await alice.ok("remember", {"text": "My passport expires in March 2029.", "tags": ["travel"]})
        found = await alice.ok("search", {"query": "when does my passport expire"})
        [hit] = found["results"]
        assert set(hit) == {"id", "title", "url", "text"} and hit["id"] == "1" and hit["url"] == "ownsona://memory/1"
        record = await alice.ok("fetch", {"id": "1"})
        assert {"id", "title", "text", "url", "metadata"} == set(record)
        assert record["text"] == "My passport expires in March 2029." and record["metadata"]["tags"] == ["travel"]
        assert await alice.error("fetch", {"id": "nope"}, "NOT_FOUND")


async def test_argument_type_errors_are_invalid_input_naming_the_field(server: Any) -> None:
    async with connect(server) as alice:
        await alice.ok("remember", {"text": "A fact."})
        message = await alice.error("forget", {"id": 1, "dry_run": "true"}, "INVALID_INPUT")
        assert "dry_run" in message and "true" not in message.replace("dry_run", "")
        assert "id" in await alice.error("get_memory", {"id": "abc"}, "INVALID_INPUT")
        assert "id" in await alice.error("get_memory", {"id": True}, "INVALID_INPUT")
        assert "items[0].tags[0]" in await alice.error("remember_batch", {"items": [{"text": "x", "tags": [5]}]},
                                                       "INVALID_INPUT")
        assert "importance" in await alice.error("update_memory", {"id": 1, "importance": 7}, "INVALID_INPUT")
        assert "text" in await alice.error("remember", {}, "INVALID_INPUT")
        assert "expires_at" in await alice.error("remember", {"text": "x", "expires_at": "2027-01-01"}, "INVALID_INPUT")
        secret = "sk-proj-abcdefghijklmnop1234567"
        message = await alice.error("remember", {"text": f"key {secret}"}, "SECRET_REJECTED")
        assert secret not in message
        assert (await alice.ok("get_memory", {"id": 1}))["memory"]["text"] == "A fact."


async def test_error_codes(server: Any, embedder: CountingEmbedder) -> None:
    async with connect(server) as alice:
        assert await alice.error("get_memory", {"id": 5}, "NOT_FOUND") == "Memory 5 not found."
        assert await alice.error("forget_batch", {"ids": [1, 2, 3, 4]}, "LIMIT_EXCEEDED") == "batch too large: 4 > 3"
        assert await alice.error("remember_batch", {"items": []}, "INVALID_INPUT") == "items is required and must be non-empty."
        embedder.fail = True
        assert "Embedding provider call failed" in await alice.error("recall", {"query": "x"}, "EMBEDDING_ERROR")
        embedder.fail = False
        await server.app[DATABASE_KEY].write(lambda c: c.execute(
            "CREATE TRIGGER boom BEFORE INSERT ON memories BEGIN SELECT RAISE(ABORT, 'SECRET SQL DETAIL'); END"))
        message = await alice.error("remember", {"text": "Anything."}, "DATABASE_ERROR")
        assert "SQL" not in message and "DETAIL" not in message
        batch = await alice.ok("remember_batch", {"items": [{"text": "One."}, None]})
        assert [r["error"]["code"] for r in batch["results"]] == ["DATABASE_ERROR", "INVALID_INPUT"]


async def test_by_id_tools_are_isolated_between_users(server: Any) -> None:
    async with connect(server) as alice:
        await alice.ok("remember", {"text": "Alice's bank is Nordea."})
        await alice.ok("remember", {"text": "Alice's gym is downtown."})
        await alice.ok("forget", {"id": 2})
        async with connect(server, server.bob_token) as bob:
            await bob.ok("remember", {"text": "Bob's bank is Chase."})
            for name, args in [
                ("get_memory", {"id": 1}),
                ("update_memory", {"id": 1, "text": "Bob was here."}),
                ("confirm", {"id": 1}),
                ("forget", {"id": 1}),
                ("forget", {"id": 1, "hard_delete": True}),
                ("forget", {"id": 3, "replaced_by_id": 1}),
                ("restore", {"id": 2}),
                ("fetch", {"id": "1"}),
            ]:
                await bob.error(name, args, "NOT_FOUND")
            ub = await bob.ok("update_memory_batch", {"items": [{"id": 1, "tags": ["x"]}]})
            fb = await bob.ok("forget_batch", {"ids": [1, 2]})
            assert [r["error"]["code"] for r in ub["results"] + fb["results"]] == ["NOT_FOUND"] * 3
            assert [m["id"] for m in (await bob.ok("recall", {"query": "bank"}))["matches"]] == [3]
            assert (await bob.ok("export_memories"))["count"] == 1
        memory = (await alice.ok("get_memory", {"id": 1}))["memory"]
        assert memory["text"] == "Alice's bank is Nordea." and "deleted_at" not in memory and "last_confirmed_at" not in memory


async def test_a_null_batch_element_fails_only_that_item(server: Any) -> None:
    async with connect(server) as alice:
        result = await alice.ok("forget_batch", {"ids": [None]})
        assert result["results"][0]["error"] == {"code": "INVALID_INPUT", "message": "ids[0] is null."}
        upd = await alice.ok("update_memory_batch", {"items": [None]})
        assert upd["results"][0]["error"]["message"] == "items[0] is null."


def test_database_file_is_private(server: Any) -> None:
    path = server.app[DATABASE_KEY].path
    assert path.exists() and (path.stat().st_mode & 0o077) == 0
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"


async def test_fifty_concurrent_http_clients_mixing_reads_and_writes(server: Any) -> None:
    url = str(server.make_url("/mcp"))
    headers = {"Authorization": f"Bearer {TEST_TOKEN}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}

    async def call(http: aiohttp.ClientSession, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
        async with http.post(url, json=body, headers=headers) as response:
            assert response.status == 200
            result = (await response.json())["result"]
        assert not result.get("isError"), result
        return result["structuredContent"]

    async def client(n: int, http: aiohttp.ClientSession) -> None:
        for i in range(3):
            if n % 2:
                stored = await call(http, "remember", {"text": f"Client {n} says fact {i}.", "dedup_policy": "insert"})
                await call(http, "update_memory", {"id": stored["memory_id"], "tags": [f"c{n}"]})
            else:
                await call(http, "recall", {"query": f"fact {i}"})
                await call(http, "list_memories", {"limit": 5})

    async with aiohttp.ClientSession() as http:
        await asyncio.gather(*(client(n, http) for n in range(50)))
        assert (await call(http, "count_memories", {}))["count"] == 75
