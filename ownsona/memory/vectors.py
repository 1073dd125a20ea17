"""Exact vector search over each user's memories, held in memory as one float32 matrix.

Why brute force in RAM (bench/vector_search.py has the figures): at 100,000 × 256 a matrix-vector
product with a mask takes a few milliseconds and is exact, so a tag filter or a mostly-deleted store
never returns fewer results than exist (the HNSW problem of §8.1 #32). sqlite-vec's `vec0` scan is
also exact but several times slower, because it reads every vector from pages on each query.

The index is a cache of the database, never the other way round. A user's vectors are loaded on
first use; afterwards the service reports each committed change (`upsert`, `set_state`, `remove`).
Changes that commit while a load is in flight are queued and replayed on top of the loaded
snapshot; every change is idempotent, so replaying one the snapshot already holds is harmless.
Only vectors of the configured embedding model are indexed: vectors of another model live in a
different space, and those rows are found by full-text search until `ownsona reembed` runs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ownsona.memory.store import NEVER, VectorRows

Scope = Literal["active", "deleted"]
Loader = Callable[[str], Awaitable[tuple[int, VectorRows]]]


def _dot_rows(matrix: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Row-wise dot products on the calling thread.

    `einsum` without `optimize` does not go through BLAS. OpenBLAS would split this memory-bound
    product over its own threads, which then spin after each call and take the CPU from the
    event loop and the SQLite threads: measured on 2 cores at 100,000 × 256, einsum was as fast
    and the rest of each recall got 2-3x faster.
    """
    return np.einsum("ij,j->i", matrix, query.astype(np.float32, copy=False))


def capacity_for(count: int) -> int:
    """Rows to allocate for `count` vectors: room for new memories without doubling RSS."""
    return count + max(64, count // 8)


def _adoptable(matrix: np.ndarray, capacity: int, dimensions: int) -> bool:
    return (
        matrix.dtype == np.float32 and matrix.ndim == 2 and matrix.shape[1] == dimensions
        and matrix.shape[0] >= capacity and matrix.flags.c_contiguous and matrix.flags.writeable
    )


class UserVectors:
    """One user's vectors in a growable matrix, rows ordered by id."""

    def __init__(self, rows: VectorRows, dimensions: int, epoch: int = 0) -> None:
        count = len(rows.ids)
        self.epoch = epoch  # the bulk epoch (see store.epoch) the rows were read at
        capacity = capacity_for(count)
        self.dimensions = dimensions
        self.size = count
        self.ids = np.zeros(capacity, dtype=np.int64)
        if _adoptable(rows.matrix, capacity, dimensions):
            self.matrix = rows.matrix  # the loader left room to grow: a second copy would double the peak
        else:
            self.matrix = np.zeros((capacity, dimensions), dtype=np.float32)
            self.matrix[:count] = rows.matrix[:count]
        self.present = np.zeros(capacity, dtype=bool)
        self.deleted = np.zeros(capacity, dtype=bool)
        self.expires_at = np.full(capacity, NEVER, dtype=np.int64)
        self.ids[:count] = rows.ids
        self.present[:count] = True
        self.deleted[:count] = rows.deleted
        self.expires_at[:count] = rows.expires_at

    def _position(self, memory_id: int) -> int | None:
        pos = int(np.searchsorted(self.ids[: self.size], memory_id))
        if pos < self.size and self.ids[pos] == memory_id:
            return pos
        return None

    def _grow(self) -> None:
        capacity = len(self.ids) + max(64, len(self.ids) // 2)
        for name in ("ids", "present", "deleted", "expires_at"):
            old = getattr(self, name)
            new = np.zeros(capacity, dtype=old.dtype) if name != "expires_at" else np.full(capacity, NEVER, np.int64)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)
        matrix = np.zeros((capacity, self.dimensions), dtype=np.float32)
        matrix[: self.size] = self.matrix[: self.size]
        self.matrix = matrix

    def upsert(self, memory_id: int, vector: np.ndarray, deleted: bool, expires_at: int | None) -> None:
        pos = self._position(memory_id)
        if pos is None:
            if self.size == len(self.ids):
                self._grow()
            pos = int(np.searchsorted(self.ids[: self.size], memory_id))
            if pos < self.size:  # an id older than the newest: shift the tail (rare)
                for array in (self.ids, self.matrix, self.present, self.deleted, self.expires_at):
                    array[pos + 1 : self.size + 1] = array[pos : self.size].copy()
            self.size += 1
            self.ids[pos] = memory_id
        self.matrix[pos] = vector
        self.present[pos] = True
        self.deleted[pos] = deleted
        self.expires_at[pos] = NEVER if expires_at is None else expires_at

    def set_state(self, memory_id: int, deleted: bool, expires_at: int | None) -> None:
        pos = self._position(memory_id)
        if pos is not None:
            self.deleted[pos] = deleted
            self.expires_at[pos] = NEVER if expires_at is None else expires_at

    def remove(self, memory_id: int) -> None:
        pos = self._position(memory_id)
        if pos is not None:
            self.present[pos] = False

    def mask(self, scope: Scope, now: int, allowed: np.ndarray | None) -> np.ndarray:
        n = self.size
        if scope == "active":
            mask = self.present[:n] & ~self.deleted[:n] & (self.expires_at[:n] > now)
        else:
            mask = self.present[:n] & self.deleted[:n]
        if allowed is not None:
            mask &= np.isin(self.ids[:n], allowed, assume_unique=False)
        return mask

    def search(
        self,
        query: np.ndarray,
        k: int,
        now: int,
        *,
        scope: Scope = "active",
        allowed: np.ndarray | None = None,
        exclude: int | None = None,
    ) -> list[tuple[int, float]]:
        """Top-k (id, cosine) among rows in scope, best first, ties broken by the newer id."""
        n = self.size
        if n == 0 or k <= 0:
            return []
        mask = self.mask(scope, now, allowed)
        if exclude is not None:
            pos = self._position(exclude)
            if pos is not None:
                mask[pos] = False
        candidates = np.flatnonzero(mask)
        if candidates.size == 0:
            return []
        rows = self.matrix[:n] if candidates.size == n else self.matrix[candidates]
        scores = _dot_rows(rows, query)
        take = min(k, scores.size)
        top = np.argpartition(-scores, take - 1)[:take] if take < scores.size else np.arange(scores.size)
        positions = candidates[top] if candidates.size != n else top
        order = np.lexsort((-self.ids[positions], -scores[top]))
        return [(int(self.ids[positions[i]]), float(scores[top[i]])) for i in order]

    def search_live_and_deleted(
        self, query: np.ndarray, k: int, now: int, *, exclude: int | None = None
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """Top-k active rows and top-k tombstones from one pass over the matrix (dedup on write)."""
        n = self.size
        if n == 0 or k <= 0:
            return [], []
        scores = _dot_rows(self.matrix[:n], query)
        live = self.mask("active", now, None)
        dead = self.mask("deleted", now, None)
        if exclude is not None and (pos := self._position(exclude)) is not None:
            live[pos] = dead[pos] = False
        return self._top(scores, live, k), self._top(scores, dead, k)

    def _top(self, scores: np.ndarray, mask: np.ndarray, k: int) -> list[tuple[int, float]]:
        positions = np.flatnonzero(mask)
        if positions.size == 0:
            return []
        chosen = scores[positions]
        take = min(k, chosen.size)
        top = np.argpartition(-chosen, take - 1)[:take] if take < chosen.size else np.arange(chosen.size)
        order = np.lexsort((-self.ids[positions[top]], -chosen[top]))
        return [(int(self.ids[positions[top[i]]]), float(chosen[top[i]])) for i in order]

    def similarities(self, ids: list[int], query: np.ndarray) -> list[tuple[int, float]]:
        """(id, cosine) for the given ids that are indexed; the others are left out."""
        result = []
        for memory_id in ids:
            pos = self._position(memory_id)
            if pos is not None and self.present[pos]:
                result.append((memory_id, float(self.matrix[pos] @ query)))
        return result

    def active_matrix(self, now: int) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of the active rows: a copy, safe to use from another thread."""
        mask = self.mask("active", now, None)
        return self.ids[: self.size][mask].copy(), self.matrix[: self.size][mask].copy()


@dataclass
class _Slot:
    vectors: UserVectors | None = None
    loading: asyncio.Future[UserVectors] | None = None
    pending: list[Callable[[UserVectors], None]] = field(default_factory=list)


class VectorIndex:
    """Per-user `UserVectors`, loaded lazily and kept in step with committed writes."""

    def __init__(self, loader: Loader, dimensions: int) -> None:
        self._loader = loader
        self.dimensions = dimensions
        self._slots: dict[str, _Slot] = {}

    async def for_user(self, user_id: str) -> UserVectors:
        slot = self._slots.setdefault(user_id, _Slot())
        if slot.vectors is not None:
            return slot.vectors
        if slot.loading is not None:
            return await asyncio.shield(slot.loading)
        slot.loading = asyncio.get_running_loop().create_future()
        try:
            epoch, rows = await self._loader(user_id)
            vectors = UserVectors(rows, self.dimensions, epoch)
            for change in slot.pending:
                change(vectors)
        except BaseException as exc:
            slot.loading.set_exception(exc)
            slot.loading.exception()  # mark retrieved: waiters re-raise it, nobody logs it twice
            slot.loading, slot.pending = None, []
            raise
        slot.vectors, slot.pending = vectors, []
        slot.loading.set_result(vectors)
        slot.loading = None
        return vectors

    def _apply(self, user_id: str, change: Callable[[UserVectors], None]) -> None:
        slot = self._slots.get(user_id)
        if slot is None:
            return  # not loaded: the first load reads the committed row
        if slot.vectors is not None:
            change(slot.vectors)
        elif slot.loading is not None:
            slot.pending.append(change)

    def upsert(self, user_id: str, memory_id: int, vector: np.ndarray, *, deleted: bool = False,
               expires_at: int | None = None) -> None:
        if vector.shape != (self.dimensions,):
            return  # another model's vector; not searchable in this space
        self._apply(user_id, lambda v: v.upsert(memory_id, vector, deleted, expires_at))

    def set_state(self, user_id: str, memory_id: int, *, deleted: bool, expires_at: int | None) -> None:
        self._apply(user_id, lambda v: v.set_state(memory_id, deleted, expires_at))

    def remove(self, user_id: str, memory_id: int) -> None:
        self._apply(user_id, lambda v: v.remove(memory_id))

    async def current(self, user_id: str, epoch: int) -> UserVectors:
        """The user's vectors, reloaded first if another process made bulk changes since."""
        vectors = await self.for_user(user_id)
        if vectors.epoch >= epoch:
            return vectors
        for uid in [u for u, slot in self._slots.items() if slot.loading is None]:
            del self._slots[uid]  # every user's cache is stale, not only this one's
        return await self.for_user(user_id)
