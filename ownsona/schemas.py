"""The store's components. Every process opens the one SQLite file with all of them, so the
migrations and the "database is newer than this code" check behave the same in `serve` and in
every command, whichever part of the store the command touches."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.db import Database, Schema
from ownsona.memory.schema import MEMORY_SCHEMA

if TYPE_CHECKING:
    from ownsona.config import Settings
    from ownsona.embeddings import Embedder

SCHEMAS: tuple[Schema, ...] = (MEMORY_SCHEMA, OAUTH_SCHEMA)


def store_database(path: Path) -> Database:
    """The store at `path` (usually `Settings.database_path`), not yet opened."""
    return Database(path, SCHEMAS)


@asynccontextmanager
async def open_store_with_embedder(settings: Settings) -> AsyncIterator[tuple[Database, Embedder]]:
    """The opened store and the configured embedder, both released on exit (for commands)."""
    from ownsona.embeddings import close_embedder, create_embedder

    db = store_database(settings.database_path)
    embedder = create_embedder(settings)
    await db.open()
    try:
        yield db, embedder
    finally:
        await close_embedder(embedder)
        await db.close()
