"""Baseline 2: the same memory service behind the `mcp` SDK's own `MCPServer`, under uvicorn.

This is what a Python developer would otherwise write: decorated tool functions calling the same
`MemoryService` methods, `streamable_http_app(stateless_http=True, json_response=True)` (stateless
JSON, as OwnSona serves), uvicorn with its access log off. It has no auth middleware and no
structured access log, both of which OwnSona's figures include.

    python -m bench.harness.sdk_server --port N        # OWNSONA_HOME names the (seeded) store
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from ownsona.config import settings_from_environ
from ownsona.db import Database
from ownsona.embeddings import close_embedder, create_embedder
from ownsona.memory.errors import ServiceError
from ownsona.memory.inputs import RememberItem
from ownsona.memory.schema import MEMORY_SCHEMA
from ownsona.memory.service import MemoryService


def build_mcp_server(service: MemoryService, user_id: str) -> MCPServer:
    """`echo`, `remember` and `recall`, each a thin function over the service, as the SDK invites."""
    mcp = MCPServer("ownsona-sdk-baseline", log_level="WARNING")

    @mcp.tool()
    async def echo(text: str) -> dict[str, Any]:
        """Echo text back."""
        return {"ok": True, "echo": text}

    @mcp.tool()
    async def remember(
        text: str,
        tags: list[str] | None = None,
        importance: float | None = None,
        dedup_policy: str | None = None,
    ) -> dict[str, Any]:
        """Store one durable fact about the user."""
        item = RememberItem(text=text, tags=list(tags) if tags else None, importance=importance,
                            dedup_policy=dedup_policy)
        try:
            return await service.remember(user_id, item)
        except ServiceError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None

    @mcp.tool()
    async def recall(
        query: str, limit: int | None = None, min_score: float | None = None, tags: list[str] | None = None
    ) -> dict[str, Any]:
        """Find the memories most relevant to a query."""
        try:
            return await service.recall(user_id, query, limit=limit, min_score=min_score, tags=tags)
        except ServiceError as exc:
            raise ToolError(f"{exc.code}: {exc.message}") from None

    return mcp


async def serve(port: int) -> None:
    settings = settings_from_environ()
    database = Database(settings.database_path, [MEMORY_SCHEMA])
    embedder = create_embedder(settings)
    service = MemoryService(database, embedder, settings)
    await database.open()
    await service.start()
    app = build_mcp_server(service, settings.user_id).streamable_http_app(stateless_http=True, json_response=True)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    try:
        await uvicorn.Server(config).serve()
    finally:
        await service.stop()
        await close_embedder(embedder)
        await database.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.harness.sdk_server")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args(argv).port))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
