"""The SQLite layer: migrations, refusal of newer files, transactions, concurrency."""

from __future__ import annotations

import asyncio
import sqlite3
import stat
from pathlib import Path

import pytest

from ownsona.db import Database, DatabaseClosed, DatabaseTooNew, Migration, Schema, run_script


def _create_items(conn: sqlite3.Connection) -> None:
    run_script(conn, "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);")


def _add_colour(conn: sqlite3.Connection) -> None:
    conn.execute("ALTER TABLE items ADD COLUMN colour TEXT")


V1 = Schema("things", [Migration(1, "create items", _create_items)])
V2 = Schema("things", [Migration(1, "create items", _create_items), Migration(2, "add colour", _add_colour)])


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(tmp_path / "test.db", [V2])
    await database.open()
    yield database
    await database.close()


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


async def test_open_creates_private_wal_file_and_applies_migrations(tmp_path: Path) -> None:
    database = Database(tmp_path / "sub" / "x.db", [V2])
    await database.open()
    try:
        assert stat.S_IMODE(database.path.stat().st_mode) == 0o600
        assert await database.read(lambda c: c.execute("PRAGMA journal_mode").fetchone()[0]) == "wal"
        assert await database.read(lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0]) == 1
        assert await database.write(lambda c: c.execute("PRAGMA synchronous").fetchone()[0]) == 2  # FULL
        assert await database.read(lambda c: _columns(c, "items")) == ["id", "name", "colour"]
        rows = await database.read(
            lambda c: c.execute("SELECT component, version, name FROM schema_migrations ORDER BY version").fetchall()
        )
        assert rows == [("things", 1, "create items"), ("things", 2, "add colour")]
    finally:
        await database.close()


async def test_pending_migrations_apply_on_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    old = Database(path, [V1])
    await old.open()
    await old.write(lambda c: c.execute("INSERT INTO items (name) VALUES ('kept')"))
    await old.close()

    new = Database(path, [V2])
    await new.open()
    try:
        assert await new.read(lambda c: c.execute("SELECT name, colour FROM items").fetchall()) == [("kept", None)]
        assert await new.read(
            lambda c: c.execute("SELECT version FROM schema_versions WHERE component='things'").fetchone()[0]
        ) == 2
    finally:
        await new.close()
    # Opening again when current applies nothing and keeps the data.
    again = Database(path, [V2])
    await again.open()
    await again.close()


async def test_a_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    new = Database(path, [V2])
    await new.open()
    await new.close()

    old = Database(path, [V1])
    with pytest.raises(DatabaseTooNew, match="'things' version 2.*only knows up to version 1"):
        await old.open()
    with pytest.raises(DatabaseClosed):
        await old.read(lambda c: None)


async def test_components_are_versioned_independently(tmp_path: Path) -> None:
    other = Schema("other", [Migration(1, "create other", lambda c: c.execute("CREATE TABLE other (x)"))])
    database = Database(tmp_path / "x.db", [V1, other])
    await database.open()
    try:
        versions = await database.read(lambda c: dict(c.execute("SELECT component, version FROM schema_versions")))
        assert versions == {"things": 1, "other": 1}
    finally:
        await database.close()


async def test_a_failing_migration_leaves_nothing_behind(tmp_path: Path) -> None:
    def broken(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    path = tmp_path / "x.db"
    database = Database(path, [Schema("things", [Migration(1, "create items", _create_items), Migration(2, "b", broken)])])
    with pytest.raises(RuntimeError, match="boom"):
        await database.open()
    conn = sqlite3.connect(path)
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    conn.close()
    assert "half" not in tables and "items" not in tables


def test_migration_versions_must_be_contiguous() -> None:
    with pytest.raises(ValueError, match="1, 2, 3"):
        Schema("x", [Migration(2, "two", _add_colour)])


async def test_write_commits_on_return_and_rolls_back_on_exception(db: Database) -> None:
    assert await db.write(lambda c: c.execute("INSERT INTO items (name) VALUES ('a')").lastrowid) == 1

    def half_then_fail(conn: sqlite3.Connection) -> None:
        conn.execute("INSERT INTO items (name) VALUES ('b')")
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        await db.write(half_then_fail)
    with pytest.raises(sqlite3.IntegrityError):
        await db.write(lambda c: c.execute("INSERT INTO items (name) VALUES ('a')"))
    assert await db.read(lambda c: [r[0] for r in c.execute("SELECT name FROM items")]) == ["a"]
    # The writer is still healthy after failures.
    await db.write(lambda c: c.execute("INSERT INTO items (name) VALUES ('c')"))
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM items").fetchone()[0]) == 2


async def test_readers_cannot_write(db: Database) -> None:
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        await db.read(lambda c: c.execute("INSERT INTO items (name) VALUES ('x')"))


async def test_concurrent_readers_and_writers_never_see_locked(db: Database) -> None:
    async def writer(n: int) -> None:
        for i in range(20):
            await db.write(lambda c, n=n, i=i: c.execute("INSERT INTO items (name) VALUES (?)", (f"{n}-{i}",)))

    async def reader() -> None:
        for _ in range(20):
            await db.read(lambda c: c.execute("SELECT count(*), max(id) FROM items").fetchone())

    await asyncio.gather(*[writer(n) for n in range(25)], *[reader() for _ in range(25)])
    assert await db.read(lambda c: c.execute("SELECT count(*) FROM items").fetchone()[0]) == 500


async def test_a_second_process_style_connection_sees_committed_writes(db: Database) -> None:
    await db.write(lambda c: c.execute("INSERT INTO items (name) VALUES ('durable')"))
    other = sqlite3.connect(db.path)
    try:
        assert other.execute("SELECT name FROM items").fetchall() == [("durable",)]
    finally:
        other.close()
