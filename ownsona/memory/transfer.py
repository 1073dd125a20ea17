"""Export to and import from JSON Lines (ours) or the Java OwnSona's `export_memories` payload.

Export writes one memory per line in the export shape (the match shape plus importance, record
version and embedding provenance; tombstones included). Import reads either format back:

* lossless for our own export: text, tags, importance, provenance, every timestamp, tombstones
  with their reason and replacement link, and the original ids when they are free;
* idempotent: a row already imported (same user, same text, same creation time) is skipped, and
  a live memory whose exact twin is live already counts as a duplicate, not a second copy;
* embeddings are recomputed with the configured model, in batches, before each short write
  transaction; each batch bumps the bulk epoch so a running server reloads its vector index.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from ownsona.db import Database
from ownsona.embeddings.base import Embedder, EmbeddingError
from ownsona.memory import store
from ownsona.memory import validation as check
from ownsona.memory.errors import ServiceError, invalid
from ownsona.memory.normalize import duplicate_key
from ownsona.memory.records import Embedding, NewMemory
from ownsona.memory.shapes import export_shape
from ownsona.memory.tags import normalize_tags
from ownsona.memory.timestamps import from_datetime, now_ms

log = structlog.get_logger("ownsona.transfer")

BATCH_SIZE = 50
MAX_TEXT_CHARS = 1_000_000  # an import keeps what the source stored; the server limit is for new writes


class TransferError(Exception):
    """The input cannot be read at all; the message names the line and never echoes content."""


# --- export --------------------------------------------------------------------------------------


async def iter_export(
    db: Database, user_id: str, *, include_deleted: bool = True, page: int = 1000
) -> AsyncIterator[str]:
    """Yield the user's memories as JSON strings, oldest first, one read transaction per page."""
    now = now_ms()
    after = 0
    while True:
        rows = await db.read(
            lambda c, a=after: store.export_rows(c, user_id, now, include_deleted=include_deleted, after_id=a,
                                                 limit=page)
        )
        if not rows:
            return
        for record in rows:
            yield json.dumps(export_shape(record), ensure_ascii=False, separators=(",", ":"))
        after = rows[-1].id


# --- reading input -------------------------------------------------------------------------------


def parse_records(text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """(position, record) pairs from JSON Lines or from a Java `export_memories` payload.

    Positions are line numbers for JSON Lines and 1-based indexes into `memories` otherwise.
    """
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            whole = json.loads(stripped)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict) and isinstance(whole.get("memories"), list):
            for index, record in enumerate(whole["memories"], start=1):
                if not isinstance(record, dict):
                    raise TransferError(f"memories[{index - 1}] is not an object")
                yield index, record
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TransferError(f"line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise TransferError(f"line {number}: expected a JSON object")
        yield number, record


def _instant(record: dict[str, Any], name: str) -> int | None:
    value = record.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(f"{name} must be an ISO 8601 timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise invalid(f"{name} must be an ISO 8601 timestamp") from None
    if parsed.tzinfo is None:
        raise invalid(f"{name} needs a time zone")
    return from_datetime(parsed)


@dataclass
class _Item:
    position: int
    memory: NewMemory
    original_id: int | None
    replaced_by: int | None


def to_item(position: int, record: dict[str, Any], now: int) -> _Item:
    """Validate one exported record. Raises ServiceError naming the field."""
    text = check.text(record.get("text") if isinstance(record.get("text"), str) else None, field="text",
                      max_chars=MAX_TEXT_CHARS)
    check.no_secret(text)
    tags = record.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str | None) for t in tags):
        raise invalid("tags must be a list of strings")
    importance = record.get("importance")
    if importance is not None and not isinstance(importance, int | float):
        raise invalid("importance must be a number")
    original_id = record.get("id")
    replaced_by = record.get("replaced_by_id")
    created = _instant(record, "created_at") or now
    memory = NewMemory(
        text=text,
        key=duplicate_key(text),
        tags=tuple(normalize_tags(tags)),
        importance=check.importance(importance),
        source_provider=check.source_provider(record.get("source_provider")),
        capture_mode=check.capture_mode(record.get("capture_mode")),
        session_id=check.session_id(record.get("session_id")),
        expires_at=_instant(record, "expires_at"),
        last_confirmed_at=_instant(record, "last_confirmed_at"),
        created_at=created,
        updated_at=_instant(record, "updated_at") or created,
        deleted_at=_instant(record, "deleted_at"),
        forget_reason=check.reason(record.get("forget_reason")),
    )
    return _Item(position, memory, _row_id(original_id), _row_id(replaced_by))


def _row_id(value: Any) -> int | None:
    """An id worth keeping: a positive integer SQLite can store; anything else is dropped."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**63:
        return value
    return None


# --- import --------------------------------------------------------------------------------------


@dataclass
class ImportReport:
    read: int = 0
    inserted: int = 0
    already_present: int = 0
    duplicates: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"read": self.read, "inserted": self.inserted, "already_present": self.already_present,
                "duplicates": self.duplicates, "rejected": len(self.rejected)}


class Importer:
    """Imports records for one user in batches: validate, skip what is there, embed, write."""

    def __init__(self, db: Database, embedder: Embedder, *, batch_size: int = BATCH_SIZE) -> None:
        self._db = db
        self._embedder = embedder
        self._batch_size = batch_size

    async def run(
        self,
        user_id: str,
        records: Iterable[tuple[int, dict[str, Any]]],
        *,
        report: Callable[[ImportReport], None] | None = None,
    ) -> ImportReport:
        result = ImportReport()
        id_map: dict[int, int] = {}
        links: list[tuple[int, int]] = []  # (new id, original replaced_by id)
        batch: list[_Item] = []
        now = now_ms()
        for position, record in records:
            result.read += 1
            try:
                batch.append(to_item(position, record, now))
            except ServiceError as exc:
                result.rejected.append((position, exc.message))
            if len(batch) >= self._batch_size:
                await self._import_batch(user_id, batch, result, id_map, links)
                batch = []
                if report:
                    report(result)
        if batch:
            await self._import_batch(user_id, batch, result, id_map, links)
        if links:
            await self._db.write(lambda c: self._link(c, user_id, links, id_map))
        if report:
            report(result)
        return result

    async def _import_batch(
        self, user_id: str, items: list[_Item], result: ImportReport, id_map: dict[int, int],
        links: list[tuple[int, int]],
    ) -> None:
        try:
            vectors = await self._embedder.embed([item.memory.text for item in items])
        except EmbeddingError as exc:
            raise TransferError(f"embedding failed after {result.inserted} inserted rows: {exc}") from None
        provider, model = self._embedder.provider, self._embedder.model

        def work(conn: sqlite3.Connection) -> list[tuple[str, int | None]]:
            outcomes: list[tuple[str, int | None]] = []
            for item, vector in zip(items, vectors, strict=True):
                conn.execute("SAVEPOINT item")
                try:
                    outcomes.append(self._import_one(conn, user_id, item, Embedding(vector, provider, model)))
                except sqlite3.Error as exc:
                    conn.execute("ROLLBACK TO item")
                    log.warning("import_item_failed", position=item.position, error=type(exc).__name__)
                    outcomes.append(("failed", None))
                conn.execute("RELEASE item")
            store.bump_epoch(conn)
            return outcomes

        for item, (outcome, memory_id) in zip(items, await self._db.write(work), strict=True):
            if outcome == "failed" or memory_id is None:
                result.rejected.append((item.position, "the database refused the row"))
                continue
            if item.original_id is not None:
                id_map[item.original_id] = memory_id
            if outcome == "inserted":
                result.inserted += 1
                if item.replaced_by is not None:
                    links.append((memory_id, item.replaced_by))
            elif outcome == "present":
                result.already_present += 1
            else:
                result.duplicates += 1

    @staticmethod
    def _import_one(conn: sqlite3.Connection, user_id: str, item: _Item, embedding: Embedding
                    ) -> tuple[str, int | None]:
        memory = item.memory
        assert memory.created_at is not None
        existing = store.find_imported(conn, user_id, memory.key, memory.created_at)
        if existing is not None:
            return "present", existing
        if memory.deleted_at is None:
            twin = store.find_live_by_key(conn, user_id, memory.key)
            if twin is not None:
                return "duplicate", twin.id
        keep_id = item.original_id if item.original_id and not store.id_taken(conn, item.original_id) else None
        new_id = store.insert(conn, user_id, memory, embedding, memory.created_at, memory_id=keep_id)
        return "inserted", new_id

    @staticmethod
    def _link(conn: sqlite3.Connection, user_id: str, links: list[tuple[int, int]], id_map: dict[int, int]) -> None:
        for memory_id, original_target in links:
            target = id_map.get(original_target)
            if target is not None and target != memory_id:
                store.set_replaced_by(conn, user_id, memory_id, target)
