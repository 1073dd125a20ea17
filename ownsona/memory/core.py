"""The memory service's shared plumbing: database access with safe errors, embedding, the vector index.

Each operation family (remembering, reading, updating, forgetting) is a mixin over `MemoryCore`;
`MemoryService` combines them. Nothing here knows MCP.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import structlog

from ownsona.config import Settings
from ownsona.db import Database
from ownsona.embeddings.base import Embedder, EmbeddingError
from ownsona.memory import store
from ownsona.memory.errors import DATABASE_ERROR, EMBEDDING_ERROR, ServiceError
from ownsona.memory.limits import MemoryLimits
from ownsona.memory.records import Embedding
from ownsona.memory.timestamps import now_ms
from ownsona.memory.vectors import UserVectors, VectorIndex, capacity_for

log = structlog.get_logger("ownsona.memory")

T = TypeVar("T")
IndexChange = Callable[[VectorIndex], None]


@dataclass
class Outcome:
    """What one batch item did: a payload (or an error) and the index change to apply after commit."""

    payload: dict[str, Any] | None = None
    error: ServiceError | None = None
    change: IndexChange | None = None


def in_savepoint(
    conn: sqlite3.Connection, run: Callable[[], Outcome], *, failure: str, event: str, **fields: Any
) -> Outcome:
    """Run one batch item inside its own savepoint.

    A database error undoes that item alone and becomes its DATABASE_ERROR (`failure` is the
    message the caller sees; the detail goes to the log), so the batch's other items still commit.
    """
    conn.execute("SAVEPOINT item")
    try:
        outcome = run()
    except sqlite3.Error:
        conn.execute("ROLLBACK TO item")
        log.exception(event, **fields)
        outcome = Outcome(error=ServiceError(DATABASE_ERROR, failure))
    conn.execute("RELEASE item")
    return outcome


def lost() -> ServiceError:
    """The error of an item that came back without an outcome; a bug guard, never expected."""
    return ServiceError(DATABASE_ERROR, "the item was not processed.")


class MemoryCore:
    """What every memory operation shares: the store, the embedder, the limits and the vector index."""

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        settings: Settings,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._db = db
        self._embedder = embedder
        self._settings = settings
        self.limits = MemoryLimits.from_settings(settings)
        self._clock = clock
        self._index: VectorIndex | None = None

    @property
    def embedder(self) -> Embedder:
        return self._embedder

    def _vector_index(self) -> VectorIndex:
        # An OpenAI-compatible embedder may learn its dimension from its first answer.
        dimensions = self._embedder.dimensions
        if self._index is None or self._index.dimensions != dimensions:
            self._index = VectorIndex(self._load_vectors, dimensions)
        return self._index

    async def _load_vectors(self, user_id: str) -> tuple[int, store.VectorRows]:
        e = self._embedder
        return await self._db.read(
            lambda c: store.load_vectors(c, user_id, e.provider, e.model, e.dimensions, capacity=capacity_for)
        )

    async def _user_vectors(self, user_id: str, epoch: int | None = None) -> UserVectors:
        """The user's vector index; with `epoch` (read with the query), reloaded if stale."""
        try:
            index = self._vector_index()
            if epoch is None:
                return await index.for_user(user_id)
            return await index.current(user_id, epoch)
        except sqlite3.Error:
            log.exception("vector_load_failed")
            raise ServiceError(DATABASE_ERROR, "loading vectors failed.") from None

    def _apply(self, changes: Sequence[IndexChange | None]) -> None:
        index = self._vector_index()
        for change in changes:
            if change is not None:
                change(index)

    async def _read(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.read(fn)
        except sqlite3.Error:
            log.exception("database_read_failed", op=op)
            raise ServiceError(DATABASE_ERROR, f"{op} failed.") from None

    async def _write(self, op: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._db.write(fn)
        except sqlite3.Error:
            log.exception("database_write_failed", op=op)
            raise ServiceError(DATABASE_ERROR, f"{op} failed.") from None

    async def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors for the texts; any failure is an EMBEDDING_ERROR for the whole call."""
        vectors = await self._try_embed(texts)
        if isinstance(vectors, ServiceError):
            raise vectors
        return vectors

    async def _try_embed(self, texts: Sequence[str]) -> np.ndarray | ServiceError:
        """Vectors, or the provider's failure as a value (batches report it per item).

        A wrong number of vectors is not a per-item matter: it fails the whole call, as in Java.
        """
        try:
            vectors = await self._embedder.embed(list(texts))
        except EmbeddingError as exc:
            return ServiceError(EMBEDDING_ERROR, f"Embedding provider call failed: {exc}")
        if vectors.shape[0] != len(texts):
            raise ServiceError(
                EMBEDDING_ERROR, f"Embedding provider returned {vectors.shape[0]} vectors for {len(texts)} texts."
            )
        return vectors

    def _embedding(self, vector: np.ndarray) -> Embedding:
        return Embedding(vector, self._embedder.provider, self._embedder.model)

    def _now(self) -> int:
        return self._clock()


