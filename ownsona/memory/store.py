"""All SQL about memories. Every function takes a connection and a `user_id`; none knows MCP.

The functions are synchronous: the service hands them to `Database.read` (reader threads) or
`Database.write` (the writer thread, inside a transaction). Every by-id statement is scoped to the
caller's `user_id`, so one user can never see or touch another's rows (§8.1 #1).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ownsona.memory.records import CleanupFilter, Embedding, MemoryPatch, MemoryRecord, NewMemory

_COLUMNS = (
    "id, user_id, text, tags, importance, source_provider, capture_mode, session_id, created_at, "
    "updated_at, deleted_at, expires_at, last_confirmed_at, forget_reason, replaced_by_id, "
    "record_version, embedding_provider, embedding_model"
)
_ACTIVE = "deleted_at IS NULL AND (expires_at IS NULL OR expires_at > :now)"


def _record(row: Sequence[object]) -> MemoryRecord:
    values = list(row)
    values[3] = tuple(json.loads(values[3]))  # tags
    return MemoryRecord(*values)  # type: ignore[arg-type]


# --- single rows -----------------------------------------------------------------------------


def get(conn: sqlite3.Connection, user_id: str, memory_id: int) -> MemoryRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM memories WHERE id = ? AND user_id = ?", (memory_id, user_id)).fetchone()
    return _record(row) if row else None


def get_many(conn: sqlite3.Connection, user_id: str, ids: Sequence[int]) -> dict[int, MemoryRecord]:
    found: dict[int, MemoryRecord] = {}
    for start in range(0, len(ids), 500):
        chunk = list(ids[start : start + 500])
        marks = ",".join("?" * len(chunk))
        for row in conn.execute(
            # `+user_id`: look rows up by id; the planner would otherwise scan the user's index.
            f"SELECT {_COLUMNS} FROM memories WHERE +user_id = ? AND id IN ({marks})", (user_id, *chunk)
        ):
            record = _record(row)
            found[record.id] = record
    return found


def find_live_by_key(conn: sqlite3.Connection, user_id: str, key: str) -> MemoryRecord | None:
    """The non-deleted row (active or expired) holding this exact-duplicate key, if any."""
    row = conn.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE user_id = ? AND normalized_text = ? AND deleted_at IS NULL",
        (user_id, key),
    ).fetchone()
    return _record(row) if row else None


# --- writes ----------------------------------------------------------------------------------


def insert(
    conn: sqlite3.Connection,
    user_id: str,
    memory: NewMemory,
    embedding: Embedding | None,
    now: int,
    *,
    memory_id: int | None = None,
) -> int:
    """Insert a row; `memory_id` keeps an imported row's original id (None: the next id)."""
    cursor = conn.execute(
        "INSERT INTO memories (id, user_id, text, normalized_text, tags, importance, source_provider, capture_mode, "
        "session_id, metadata, created_at, updated_at, deleted_at, expires_at, last_confirmed_at, forget_reason, "
        "embedding, embedding_provider, embedding_model, embedding_dimensions) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            memory_id,
            user_id,
            memory.text,
            memory.key,
            json.dumps(list(memory.tags), ensure_ascii=False),
            memory.importance,
            memory.source_provider,
            memory.capture_mode,
            memory.session_id,
            json.dumps({"capture_mode": memory.capture_mode} if memory.capture_mode else {}),
            memory.created_at if memory.created_at is not None else now,
            memory.updated_at if memory.updated_at is not None else (memory.created_at or now),
            memory.deleted_at,
            memory.expires_at,
            memory.last_confirmed_at,
            memory.forget_reason,
            embedding.blob() if embedding else None,
            embedding.provider if embedding else None,
            embedding.model if embedding else None,
            embedding.dimensions if embedding else None,
        ),
    )
    return int(cursor.lastrowid or 0)


def update(
    conn: sqlite3.Connection, user_id: str, memory_id: int, patch: MemoryPatch, now: int, *, touch: bool = True
) -> bool:
    """Apply a patch to a live row; tombstones are never revived by an update.

    `touch` moves `updated_at`; a pure confirmation does not count as a content change.
    """
    sets: list[str] = []
    params: list[object] = []
    if patch.text is not None:
        sets += ["text = ?", "normalized_text = ?"]
        params += [patch.text, patch.key]
    if patch.embedding is not None:
        sets += ["embedding = ?", "embedding_provider = ?", "embedding_model = ?", "embedding_dimensions = ?"]
        params += [patch.embedding.blob(), patch.embedding.provider, patch.embedding.model, patch.embedding.dimensions]
    if patch.tags is not None:
        sets.append("tags = ?")
        params.append(json.dumps(list(patch.tags), ensure_ascii=False))
    if patch.importance is not None:
        sets.append("importance = ?")
        params.append(patch.importance)
    for name in ("expires_at", "last_confirmed_at"):
        if patch.sets(name):
            sets.append(f"{name} = ?")
            params.append(getattr(patch, name))
    if not sets:
        return False
    if touch:
        sets.append("updated_at = ?")
        params.append(now)
    cursor = conn.execute(
        f"UPDATE memories SET {', '.join(sets)} WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
        (*params, memory_id, user_id),
    )
    return cursor.rowcount == 1


def confirm(conn: sqlite3.Connection, user_id: str, memory_id: int, now: int) -> bool:
    cursor = conn.execute(
        "UPDATE memories SET last_confirmed_at = ? WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
        (now, memory_id, user_id),
    )
    return cursor.rowcount == 1


def soft_delete(
    conn: sqlite3.Connection,
    user_id: str,
    memory_id: int,
    now: int,
    *,
    reason: str | None = None,
    replaced_by_id: int | None = None,
) -> bool:
    """Make a tombstone; the first deletion time is kept, a new reason/replacement overwrites."""
    cursor = conn.execute(
        "UPDATE memories SET deleted_at = COALESCE(deleted_at, ?), forget_reason = COALESCE(?, forget_reason), "
        "replaced_by_id = COALESCE(?, replaced_by_id) WHERE id = ? AND user_id = ?",
        (now, reason, replaced_by_id, memory_id, user_id),
    )
    return cursor.rowcount == 1


def hard_delete(conn: sqlite3.Connection, user_id: str, memory_id: int) -> bool:
    """Remove the row; tombstones that named it as their replacement keep a NULL link."""
    cursor = conn.execute("DELETE FROM memories WHERE id = ? AND user_id = ?", (memory_id, user_id))
    return cursor.rowcount == 1


def restore(conn: sqlite3.Connection, user_id: str, memory_id: int) -> bool:
    cursor = conn.execute(
        "UPDATE memories SET deleted_at = NULL, forget_reason = NULL, replaced_by_id = NULL "
        "WHERE id = ? AND user_id = ? AND deleted_at IS NOT NULL",
        (memory_id, user_id),
    )
    return cursor.rowcount == 1


def id_taken(conn: sqlite3.Connection, memory_id: int) -> bool:
    return conn.execute("SELECT 1 FROM memories WHERE id = ?", (memory_id,)).fetchone() is not None


def find_imported(conn: sqlite3.Connection, user_id: str, key: str, created_at: int) -> int | None:
    """The id of a row already imported from the same source row (same text and creation time)."""
    row = conn.execute(
        "SELECT id FROM memories WHERE user_id = ? AND normalized_text = ? AND created_at = ?",
        (user_id, key, created_at),
    ).fetchone()
    return int(row[0]) if row else None


def set_replaced_by(conn: sqlite3.Connection, user_id: str, memory_id: int, replaced_by_id: int) -> None:
    conn.execute(
        "UPDATE memories SET replaced_by_id = ? WHERE id = ? AND user_id = ? "
        "AND EXISTS (SELECT 1 FROM memories WHERE id = ? AND user_id = ?)",
        (replaced_by_id, memory_id, user_id, replaced_by_id, user_id),
    )


def set_embedding(conn: sqlite3.Connection, memory_id: int, text: str, embedding: Embedding) -> bool:
    """Store a re-computed vector, unless the text changed since it was read (then it is skipped)."""
    cursor = conn.execute(
        "UPDATE memories SET embedding = ?, embedding_provider = ?, embedding_model = ?, embedding_dimensions = ? "
        "WHERE id = ? AND text = ?",
        (embedding.blob(), embedding.provider, embedding.model, embedding.dimensions, memory_id, text),
    )
    return cursor.rowcount == 1


# --- listing, counting, statistics -----------------------------------------------------------


def _filter_sql(cleanup: CleanupFilter | None) -> tuple[str, dict[str, object]]:
    if cleanup is None:
        return "", {}
    clauses: list[str] = []
    params: dict[str, object] = {}
    if cleanup.untagged_only:
        clauses.append("tags = '[]'")
    if cleanup.min_chars is not None:
        clauses.append("length(text) >= :min_chars")
        params["min_chars"] = cleanup.min_chars
    if cleanup.max_chars is not None:
        clauses.append("length(text) <= :max_chars")
        params["max_chars"] = cleanup.max_chars
    if cleanup.not_confirmed_since is not None:
        clauses.append("(last_confirmed_at IS NULL OR last_confirmed_at < :not_confirmed_since)")
        params["not_confirmed_since"] = cleanup.not_confirmed_since
    return "".join(f" AND {c}" for c in clauses), params


def _tag_sql(tags: Sequence[str] | None, params: dict[str, object]) -> str:
    if not tags:
        return ""
    names = []
    for index, tag in enumerate(tags):
        params[f"tag{index}"] = tag
        names.append(f":tag{index}")
    return f" AND id IN (SELECT memory_id FROM memory_tags WHERE user_id = :user AND tag IN ({', '.join(names)}))"


def list_page(
    conn: sqlite3.Connection,
    user_id: str,
    now: int,
    *,
    limit: int,
    offset: int,
    include_deleted: bool,
    cleanup: CleanupFilter | None,
) -> list[MemoryRecord]:
    where, params = _filter_sql(cleanup)
    state = "" if include_deleted else f" AND {_ACTIVE}"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE user_id = :user{state}{where} "
        "ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset",
        {"user": user_id, "now": now, "limit": limit, "offset": offset, **params},
    )
    return [_record(r) for r in rows]


def count(
    conn: sqlite3.Connection,
    user_id: str,
    now: int,
    *,
    include_deleted: bool,
    tags: Sequence[str] | None,
    source_provider: str | None,
    cleanup: CleanupFilter | None,
) -> int:
    where, params = _filter_sql(cleanup)
    where += _tag_sql(tags, params)
    if source_provider:
        where += " AND source_provider = :provider"
        params["provider"] = source_provider
    state = "" if include_deleted else f" AND {_ACTIVE}"
    sql = f"SELECT count(*) FROM memories WHERE user_id = :user{state}{where}"
    return int(conn.execute(sql, {"user": user_id, "now": now, **params}).fetchone()[0])


@dataclass(frozen=True, slots=True)
class Stats:
    total: int
    active: int
    soft_deleted: int
    expired: int
    avg_importance: float | None
    oldest_created_at: int | None
    newest_created_at: int | None
    top_tags: list[tuple[str, int]]
    by_provider: list[tuple[str, int]]


def stats(conn: sqlite3.Connection, user_id: str, now: int, *, top_tags: int = 20) -> Stats:
    args = {"user": user_id, "now": now}
    total, active, deleted, expired = conn.execute(
        "SELECT count(*), "
        f"coalesce(sum({_ACTIVE}), 0), "
        "coalesce(sum(deleted_at IS NOT NULL), 0), "
        "coalesce(sum(deleted_at IS NULL AND expires_at IS NOT NULL AND expires_at <= :now), 0) "
        "FROM memories WHERE user_id = :user",
        args,
    ).fetchone()
    avg, oldest, newest = conn.execute(
        "SELECT avg(importance), min(created_at), max(created_at) FROM memories "
        "WHERE user_id = :user AND deleted_at IS NULL",
        args,
    ).fetchone()
    tags = tag_counts(conn, user_id, now, include_deleted=False, limit=top_tags)
    providers = conn.execute(
        "SELECT coalesce(source_provider, '(none)') AS p, count(*) AS n FROM memories "
        "WHERE user_id = :user AND deleted_at IS NULL GROUP BY p ORDER BY n DESC, p ASC",
        args,
    ).fetchall()
    return Stats(total, active, deleted, expired, avg, oldest, newest, tags, [(p, n) for p, n in providers])


def tag_counts(
    conn: sqlite3.Connection, user_id: str, now: int, *, include_deleted: bool, limit: int
) -> list[tuple[str, int]]:
    state = "" if include_deleted else " AND m.deleted_at IS NULL AND (m.expires_at IS NULL OR m.expires_at > :now)"
    rows = conn.execute(
        "SELECT t.tag, count(*) AS n FROM memory_tags t JOIN memories m ON m.id = t.memory_id "
        f"WHERE t.user_id = :user{state} GROUP BY t.tag ORDER BY n DESC, t.tag ASC LIMIT :limit",
        {"user": user_id, "now": now, "limit": limit},
    ).fetchall()
    return [(tag, n) for tag, n in rows]


def export_rows(
    conn: sqlite3.Connection, user_id: str, now: int, *, include_deleted: bool, after_id: int = 0, limit: int = 1000
) -> list[MemoryRecord]:
    """One page of the user's rows in id order (keyset paging, so exports stream)."""
    state = "" if include_deleted else f" AND {_ACTIVE}"
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE user_id = :user AND id > :after{state} ORDER BY id LIMIT :limit",
        {"user": user_id, "now": now, "after": after_id, "limit": limit},
    )
    return [_record(r) for r in rows]


def iter_export(
    conn: sqlite3.Connection, user_id: str, now: int, *, include_deleted: bool
) -> Iterator[MemoryRecord]:
    after = 0
    while True:
        page = export_rows(conn, user_id, now, include_deleted=include_deleted, after_id=after)
        if not page:
            return
        yield from page
        after = page[-1].id


# --- search ----------------------------------------------------------------------------------


def text_search(conn: sqlite3.Connection, user_id: str, needle_key: str, now: int, limit: int) -> list[MemoryRecord]:
    """Case-insensitive substring search on the duplicate key (case-folded, spaces collapsed)."""
    rows = conn.execute(
        f"SELECT {_COLUMNS} FROM memories WHERE user_id = :user AND {_ACTIVE} AND instr(normalized_text, :needle) > 0 "
        "ORDER BY created_at DESC, id DESC LIMIT :limit",
        {"user": user_id, "now": now, "needle": needle_key, "limit": limit},
    )
    return [_record(r) for r in rows]


# A query term found in more documents than this is left out of the full-text search. Ranking
# every match of a very common word costs about 1 µs per document (90 ms for a word in all of
# 100,000 memories) and adds little: BM25 gives such words a small weight, and the vector side
# still sees the whole query. Stores below this size are searched with every term.
COMMON_TERM_DOCS = 5_000


def selective_terms(conn: sqlite3.Connection, terms: Sequence[str], cap: int = COMMON_TERM_DOCS) -> list[str]:
    """The terms that occur in at least one and at most `cap` documents (each probe stops at cap+1)."""
    kept = []
    for term in terms:
        phrase = '"' + term.replace('"', '""') + '"'
        found = conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM memories_fts WHERE memories_fts MATCH ? LIMIT ?)", (phrase, cap + 1)
        ).fetchone()[0]
        if 0 < found <= cap:
            kept.append(term)
    return kept


def bm25_hits(
    conn: sqlite3.Connection,
    user_id: str,
    match: str | None,
    now: int,
    limit: int,
    tags: Sequence[str] | None = None,
) -> list[tuple[int, float]]:
    """Best full-text matches among the user's active rows as (id, -bm25), higher is better."""
    if not match:
        return []
    params: dict[str, object] = {"user": user_id, "now": now, "match": match, "limit": limit}
    tag_clause = _tag_sql(tags, params).replace(" AND id IN", " AND m.id IN")
    rows = conn.execute(
        "SELECT m.id, -bm25(memories_fts) AS score FROM memories_fts JOIN memories m ON m.id = memories_fts.rowid "
        "WHERE memories_fts MATCH :match AND m.user_id = :user AND m.deleted_at IS NULL "
        f"AND (m.expires_at IS NULL OR m.expires_at > :now){tag_clause} "
        "ORDER BY bm25(memories_fts) LIMIT :limit",
        params,
    ).fetchall()
    return [(int(i), float(s)) for i, s in rows]


def tagged_ids(conn: sqlite3.Connection, user_id: str, tags: Sequence[str]) -> np.ndarray:
    """Ids of the user's rows carrying any of the tags (any state; the caller filters state)."""
    params: dict[str, object] = {"user": user_id}
    names = []
    for index, tag in enumerate(tags):
        params[f"tag{index}"] = tag
        names.append(f":tag{index}")
    rows = conn.execute(
        f"SELECT DISTINCT memory_id FROM memory_tags WHERE user_id = :user AND tag IN ({', '.join(names)})", params
    ).fetchall()
    return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))


# --- vectors ---------------------------------------------------------------------------------


def epoch(conn: sqlite3.Connection) -> int:
    """The bulk-change counter; a change means another process rewrote rows or vectors."""
    return int(conn.execute("SELECT epoch FROM memory_epoch WHERE id = 1").fetchone()[0])


def bump_epoch(conn: sqlite3.Connection) -> None:
    conn.execute("UPDATE memory_epoch SET epoch = epoch + 1 WHERE id = 1")


@dataclass(frozen=True, slots=True)
class VectorRows:
    ids: np.ndarray  # int64, ascending
    matrix: np.ndarray  # float32 (at least n rows, dimensions); rows past n are spare room to grow into
    deleted: np.ndarray  # bool
    expires_at: np.ndarray  # int64, a far future for "never"


NEVER = np.iinfo(np.int64).max


def load_vectors(
    conn: sqlite3.Connection,
    user_id: str,
    provider: str,
    model: str,
    dimensions: int,
    capacity: Callable[[int], int] = lambda count: count,
) -> tuple[int, VectorRows]:
    """Every vector of the user made by this model, tombstones included (for correction checks),
    with the bulk epoch they were read at. The matrix gets `capacity(count)` rows, so the index can
    keep it as it is instead of copying it into a larger one."""
    # Rows are streamed into arrays sized by a count taken in the same read transaction. Holding
    # every row as Python objects first (fetchall) and copying the matrix once more for spare room
    # tripled the peak: ~20 MB kept by the heap at 10,000 memories, a 300 MB peak at 100,000
    # (bench/recall).
    where = "WHERE user_id = ? AND embedding_provider = ? AND embedding_model = ? AND embedding_dimensions = ?"
    params = (user_id, provider, model, dimensions)
    count_ = int(conn.execute(f"SELECT count(*) FROM memories {where}", params).fetchone()[0])
    ids = np.zeros(count_, dtype=np.int64)
    matrix = np.zeros((max(count_, capacity(count_)), dimensions), dtype=np.float32)  # untouched rows cost no RSS
    deleted = np.zeros(count_, dtype=bool)
    expires = np.zeros(count_, dtype=np.int64)
    cursor = conn.execute(
        f"SELECT id, embedding, deleted_at IS NOT NULL, coalesce(expires_at, ?) FROM memories {where} ORDER BY id",
        (int(NEVER), *params),
    )
    for row, (memory_id, blob, is_deleted, expires_at) in enumerate(cursor):
        ids[row] = memory_id
        matrix[row] = np.frombuffer(blob, dtype="<f4")
        deleted[row] = is_deleted
        expires[row] = expires_at
    return epoch(conn), VectorRows(ids, matrix, deleted, expires)  # UserVectors copies it


@dataclass(frozen=True, slots=True)
class StaleRow:
    id: int
    user_id: str
    text: str
    deleted: bool
    expires_at: int | None


def _stale_where(provider: str, model: str, dimensions: int | None) -> tuple[str, tuple[object, ...]]:
    clause = "(embedding IS NULL OR embedding_provider IS NOT ? OR embedding_model IS NOT ?"
    params: tuple[object, ...] = (provider, model)
    if dimensions:
        clause += " OR embedding_dimensions IS NOT ?"
        params += (dimensions,)
    return clause + ")", params


def stale_rows(
    conn: sqlite3.Connection, provider: str, model: str, dimensions: int | None, *, after_id: int, limit: int
) -> list[StaleRow]:
    """Rows of every user, tombstones included, whose vector is missing or made by another model."""
    where, params = _stale_where(provider, model, dimensions)
    rows = conn.execute(
        f"SELECT id, user_id, text, deleted_at IS NOT NULL, expires_at FROM memories WHERE {where} AND id > ? "
        "ORDER BY id LIMIT ?",
        (*params, after_id, limit),
    ).fetchall()
    return [StaleRow(i, u, t, bool(d), e) for i, u, t, d, e in rows]


def count_stale(conn: sqlite3.Connection, provider: str, model: str, dimensions: int | None) -> int:
    where, params = _stale_where(provider, model, dimensions)
    return int(conn.execute(f"SELECT count(*) FROM memories WHERE {where}", params).fetchone()[0])
