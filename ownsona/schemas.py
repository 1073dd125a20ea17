"""The store's components. Every process opens the one SQLite file with all of them, so the
migrations and the "database is newer than this code" check behave the same in `serve` and in
every command, whichever part of the store the command touches."""

from __future__ import annotations

from pathlib import Path

from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.db import Database, Schema
from ownsona.memory.schema import MEMORY_SCHEMA

SCHEMAS: tuple[Schema, ...] = (MEMORY_SCHEMA, OAUTH_SCHEMA)


def store_database(path: Path) -> Database:
    """The store at `path` (usually `Settings.database_path`), not yet opened."""
    return Database(path, SCHEMAS)
