"""SQL details of the store that the service tests do not pin down on their own."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from ownsona.db import Database
from ownsona.memory import store
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.records import Embedding, NewMemory
from ownsona.memory.schema import MEMORY_SCHEMA


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(tmp_path / "m.db", [MEMORY_SCHEMA])
    await database.open()
    yield database
    await database.close()


def add(conn: sqlite3.Connection, user: str, text: str, tags: tuple[str, ...] = ()) -> int:
    return store.insert(conn, user, NewMemory(text=text, key=duplicate_key(text), tags=tags), None, 1_000)


async def test_common_terms_are_left_out_of_full_text_search(db: Database) -> None:
    def seed(conn: sqlite3.Connection) -> None:
        for i in range(12):
            add(conn, "u", f"Note {i} mentions zebra" if i == 3 else f"Note {i} about nothing")

    await db.write(seed)
    kept = await db.read(lambda c: store.selective_terms(c, ["note", "zebra", "absent"], cap=5))
    assert kept == ["zebra"]  # "note" is in 12 > 5 documents, "absent" in none


async def test_tags_mirror_and_fts_follow_every_write(db: Database) -> None:
    def work(conn: sqlite3.Connection) -> None:
        memory_id = add(conn, "u", "Blue whale facts", ("ocean", "animals"))
        conn.execute("UPDATE memories SET tags = ?, text = 'Grey whale facts' WHERE id = ?",
                     (json.dumps(["ocean"]), memory_id))

    await db.write(work)
    tags = await db.read(lambda c: c.execute("SELECT tag FROM memory_tags").fetchall())
    assert tags == [("ocean",)]
    assert await db.read(lambda c: store.bm25_hits(c, "u", '"grey"', 0, 5)) != []
    assert await db.read(lambda c: store.bm25_hits(c, "u", '"blue"', 0, 5)) == []
    await db.write(lambda c: store.hard_delete(c, "u", 1))
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM memory_tags").fetchone()[0]) == 0
    assert await db.read(lambda c: store.bm25_hits(c, "u", '"grey"', 0, 5)) == []


async def test_one_live_row_per_user_and_key(db: Database) -> None:
    await db.write(lambda c: add(c, "u", "Same text"))
    await db.write(lambda c: add(c, "v", "Same text"))  # another user may hold the same text
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(lambda c: add(c, "u", "same  TEXT"))
    await db.write(lambda c: store.soft_delete(c, "u", 1, 2_000))
    await db.write(lambda c: add(c, "u", "Same text"))  # a tombstone does not hold the slot


async def test_lookups_by_id_use_the_primary_key(db: Database) -> None:
    plan = await db.read(lambda c: c.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM memories WHERE +user_id = 'u' AND id IN (1, 2)").fetchall())
    assert "PRIMARY KEY" in plan[0][3]
    await db.write(lambda c: add(c, "u", "Mine"))
    assert await db.read(lambda c: store.get_many(c, "someone-else", [1])) == {}


async def test_vectors_load_into_a_matrix_with_the_room_asked_for(db: Database) -> None:
    vectors = [np.full(4, n, dtype=np.float32) for n in (1, 2, 3)]

    def seed(conn: sqlite3.Connection) -> None:
        for n, vector in enumerate(vectors):
            text = f"Fact {n}"
            store.insert(conn, "u", NewMemory(text=text, key=duplicate_key(text)), Embedding(vector, "p", "m"), 1_000)
        add(conn, "u", "Not embedded")  # no vector: not in the index
        store.soft_delete(conn, "u", 2, 2_000)  # a tombstone stays, flagged

    await db.write(seed)
    _, rows = await db.read(lambda c: store.load_vectors(c, "u", "p", "m", 4, capacity=lambda count: count + 5))
    assert list(rows.ids) == [1, 2, 3]
    assert list(rows.deleted) == [False, True, False]
    assert rows.matrix.shape == (8, 4)  # 3 rows and the 5 spare the index grows into without copying
    assert np.array_equal(rows.matrix[:3], np.stack(vectors))
    assert not rows.matrix[3:].any()
