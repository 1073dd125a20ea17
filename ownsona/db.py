"""SQLite access: one dedicated writer thread, a small pool of reader connections, migrations.

Why this shape (after Datasette's `_send_to_write_thread` / `_execute_writes`): SQLite allows one
writer at a time. If every coroutine opened its own write transaction, they would queue inside
SQLite's busy handler and, under load, fail with "database is locked". Sending every write to one
thread that owns the only writing connection serialises them in a queue we control instead.
Readers use their own connections; in WAL mode they never block the writer nor wait for it.

Durability: the database runs in WAL mode with `synchronous=FULL`, so COMMIT returns only after
the WAL has been fsync'ed. A write that `write()` has acknowledged therefore survives a killed
process *and* a power loss or kernel crash, provided the disk honours fsync (a drive or VM that
lies about write barriers can still lose the last transactions; it cannot corrupt the file).
"""

from __future__ import annotations

import asyncio
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import structlog

log = structlog.get_logger("ownsona.db")

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
READER_THREADS = 4
# Page cache of each reader connection. SQLite's default (2 MB) per reader filled up under
# concurrent recalls and cost ~7 MB of RSS at 10,000 memories with no latency gain (bench/recall):
# the OS page cache already holds the file, so a reader's miss is a copy, not a disk read. The
# writer keeps the default; its cache saves re-reading the pages each insert touches.
READER_CACHE_KIB = 512

_VERSIONS_DDL = """
CREATE TABLE IF NOT EXISTS schema_versions (
    component  TEXT PRIMARY KEY,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  TEXT NOT NULL,
    version    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (component, version)
);
"""


@dataclass(frozen=True)
class Migration:
    """One schema step. `apply` runs inside the migration's transaction, with its version row."""

    version: int
    name: str
    apply: Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class Schema:
    """The migrations of one component ("memory", "oauth", …); each component is versioned alone."""

    component: str
    migrations: Sequence[Migration]

    def __post_init__(self) -> None:
        versions = [m.version for m in self.migrations]
        if versions != list(range(1, len(versions) + 1)):
            raise ValueError(f"schema {self.component!r}: migration versions must be 1, 2, 3, … in order")
        if any(not m.name.strip() for m in self.migrations):
            raise ValueError(f"schema {self.component!r}: every migration needs a name")

    @property
    def target_version(self) -> int:
        return len(self.migrations)


class DatabaseTooNew(Exception):
    """The file was written by a newer OwnSona; running older code against it could damage it."""


class DatabaseClosed(Exception):
    """`read` or `write` was called before `open` or after `close`."""


_STOP = object()


@dataclass
class _WriteJob:
    fn: Callable[[sqlite3.Connection], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


def _connect(path: Path) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, so Python never opens
    # a transaction behind our back.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA synchronous = FULL")
    return conn


def _settle(job: _WriteJob, result: Any, error: BaseException | None) -> None:
    def deliver() -> None:
        if job.future.cancelled():
            return
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)

    try:
        job.loop.call_soon_threadsafe(deliver)
    except RuntimeError:  # the loop is gone; nobody is waiting any more
        pass


class Database:
    """An SQLite file shared by the whole process."""

    def __init__(self, path: Path, schemas: Sequence[Schema]) -> None:
        self.path = Path(path)
        self._schemas = list(schemas)
        names = [s.component for s in self._schemas]
        if len(set(names)) != len(names):
            raise ValueError("each schema component may appear only once")
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._readers: ThreadPoolExecutor | None = None
        self._reader_local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._reader_lock = threading.Lock()

    # --- lifecycle ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Create the file if needed (mode 0600), start the writer, apply pending migrations."""
        if self._writer is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file ourselves so it never exists with a wider mode; SQLite gives the
        # -wal and -shm files the same permissions as the database file.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[None] = loop.create_future()
        self._writer = threading.Thread(
            target=self._run_writer, args=(loop, ready), name=f"sqlite-writer:{self.path.name}", daemon=True
        )
        self._writer.start()
        try:
            await ready
            await self.write(self._migrate_all)
        except BaseException:
            await self.close()
            raise
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="sqlite-reader")

    async def close(self) -> None:
        """Stop the writer after the queued writes, and close every connection."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._queue.put(_STOP)
            await asyncio.get_running_loop().run_in_executor(None, writer.join)
        readers, self._readers = self._readers, None
        if readers is not None:
            readers.shutdown(wait=True)
        with self._reader_lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()
        self._reader_local = threading.local()

    # --- the two ways in ----------------------------------------------------------------------

    async def write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` in the writer thread inside BEGIN IMMEDIATE … COMMIT.

        If `fn` raises, the transaction is rolled back and the exception re-raised here.
        `fn` must not wait on anything slow (no network): every other write queues behind it.
        Once queued, a write runs even if the awaiting coroutine is cancelled.
        """
        if self._writer is None:
            raise DatabaseClosed("the database is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._queue.put(_WriteJob(fn, loop, future))
        return await future

    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(conn)` on a reader connection in a worker thread; one consistent snapshot."""
        if self._readers is None:
            raise DatabaseClosed("the database is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._readers, self._read_in_thread, fn)

    # --- threads ------------------------------------------------------------------------------

    def _read_in_thread(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = getattr(self._reader_local, "conn", None)
        if conn is None:
            conn = _connect(self.path)
            conn.execute("PRAGMA query_only = ON")
            conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
            self._reader_local.conn = conn
            with self._reader_lock:
                self._reader_conns.append(conn)
        # An explicit read transaction makes several SELECTs in `fn` see one snapshot.
        conn.execute("BEGIN")
        try:
            return fn(conn)
        finally:
            conn.execute("ROLLBACK")

    def _run_writer(self, loop: asyncio.AbstractEventLoop, ready: asyncio.Future[None]) -> None:
        try:
            conn = _connect(self.path)
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise sqlite3.OperationalError(f"cannot switch {self.path.name} to WAL mode")
        except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
            loop.call_soon_threadsafe(ready.set_exception, exc)
            return
        loop.call_soon_threadsafe(ready.set_result, None)
        try:
            while True:
                job = self._queue.get()
                if job is _STOP:
                    break
                self._execute(conn, job)
        finally:
            conn.close()

    @staticmethod
    def _execute(conn: sqlite3.Connection, job: _WriteJob) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException as exc:  # noqa: BLE001
            _settle(job, None, exc)
            return
        try:
            result = job.fn(conn)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's coroutine
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _settle(job, None, exc)
            return
        try:
            conn.execute("COMMIT")
        except BaseException as exc:  # noqa: BLE001
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            _settle(job, None, exc)
            return
        _settle(job, result, None)

    # --- migrations (run inside the writer) ---------------------------------------------------

    def _migrate_all(self, conn: sqlite3.Connection) -> None:
        """Check every component first, then apply; all in the one startup transaction."""
        run_script(conn, _VERSIONS_DDL)
        stored = dict(conn.execute("SELECT component, version FROM schema_versions").fetchall())
        for schema in self._schemas:
            version = stored.get(schema.component, 0)
            if version > schema.target_version:
                raise DatabaseTooNew(
                    f"{self.path} holds schema {schema.component!r} version {version}, but this OwnSona "
                    f"only knows up to version {schema.target_version}; upgrade OwnSona or restore a backup"
                )
        for schema in self._schemas:
            version = stored.get(schema.component, 0)
            for migration in schema.migrations[version:]:
                migration.apply(conn)
                conn.execute(
                    "INSERT INTO schema_migrations (component, version, name) VALUES (?, ?, ?)",
                    (schema.component, migration.version, migration.name),
                )
                conn.execute(
                    "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                    "ON CONFLICT (component) DO UPDATE SET version = excluded.version, "
                    "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
                    (schema.component, migration.version),
                )
                log.info("migration_applied", component=schema.component, version=migration.version,
                         migration=migration.name)


def run_script(conn: sqlite3.Connection, script: str) -> None:
    """Execute a DDL script statement by statement, inside the caller's transaction.

    `sqlite3.executescript` would COMMIT first; migrations must stay atomic. Statements are split
    with `sqlite3.complete_statement`, so trigger bodies containing `;` stay whole.
    """
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                conn.execute(buffer)
            buffer = ""
    if buffer.strip():
        raise ValueError("incomplete SQL statement at the end of a migration script")
