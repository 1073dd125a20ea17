"""Fill a store with N memories before a run, through the memory service itself.

`remember_batch` is the service's own bulk path: the same validation, normalisation, embedding
and inserts a client's batch gets, minus HTTP, 200 items a call. It runs in the benchmark's
process before any server starts; each server then gets its own copy of the seeded file.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import time
from pathlib import Path

from bench.harness.corpus import seed_facts
from ownsona.config import settings_from_environ
from ownsona.db import Database
from ownsona.embeddings import close_embedder, create_embedder
from ownsona.memory.inputs import RememberItem
from ownsona.memory.schema import MEMORY_SCHEMA
from ownsona.memory.service import MemoryService

DATABASE_FILE = "ownsona.db"


async def _seed(home: Path, count: int) -> None:
    settings = settings_from_environ({"OWNSONA_HOME": str(home)})
    database = Database(settings.database_path, [MEMORY_SCHEMA])
    embedder = create_embedder(settings)
    service = MemoryService(database, embedder, settings)
    await database.open()
    try:
        facts = seed_facts(count)
        for start in range(0, count, service.limits.max_batch_size):
            chunk = facts[start : start + service.limits.max_batch_size]
            items = [RememberItem(text=text, tags=["bench"]) for text in chunk]
            result = await service.remember_batch(settings.user_id, items, dedup_policy="insert")
            if result["summary"]["errors"]:
                raise RuntimeError(f"seeding failed: {result['results'][:3]}")
    finally:
        await close_embedder(embedder)
        await database.close()


def seed_store(home: Path, count: int) -> float:
    """Seed `home`'s store with `count` memories; return the seconds it took."""
    started = time.perf_counter()
    asyncio.run(_seed(home, count))
    found = count_memories(home / DATABASE_FILE)
    if found != count:
        raise RuntimeError(f"seeded {found} memories, expected {count}")
    return time.perf_counter() - started


def count_memories(database: Path) -> int:
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM memories WHERE deleted_at IS NULL").fetchone()[0])


def copy_store(source_home: Path, target_home: Path) -> None:
    """Give a server its own fresh copy of a seeded store, replacing whatever its home held.

    After the seeding process closed the store cleanly, the database file alone is complete.
    """
    shutil.rmtree(target_home, ignore_errors=True)
    target_home.mkdir(mode=0o700, parents=True)
    shutil.copy2(source_home / DATABASE_FILE, target_home / DATABASE_FILE)
