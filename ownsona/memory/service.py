"""The memory service: every memory operation, scoped to a user, with the Java server's rules.

It validates and normalises input, refuses secrets, finds duplicates, embeds text (always before
a transaction, never inside one), runs batches with one savepoint per item so a failing item never
takes the others down, and keeps the in-memory vector index in step with what was committed.
Results are payload dicts in the wire contract's shape; the service knows nothing about MCP.

The operations live in one module per family, combined here:
`remembering` (remember, remember_batch), `reading` (recall, search, list, count, stats, export,
near duplicates), `updating` (update_memory, update_memory_batch) and `forgetting` (confirm,
forget, forget_batch, restore), all over the shared plumbing of `core`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ownsona.config import Settings
from ownsona.db import Database
from ownsona.embeddings.base import Embedder
from ownsona.memory.forgetting import ForgetOps
from ownsona.memory.reading import ReadOps
from ownsona.memory.reembed import Reembedder
from ownsona.memory.remembering import RememberOps
from ownsona.memory.timestamps import now_ms
from ownsona.memory.updating import UpdateOps


class MemoryService(RememberOps, ReadOps, UpdateOps, ForgetOps):
    """Memory operations for many users over one database and one embedder."""

    def __init__(
        self,
        db: Database,
        embedder: Embedder,
        settings: Settings,
        *,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        super().__init__(db, embedder, settings, clock=clock)
        self.reembedder = Reembedder(db, embedder, on_vector=self._reembedded)

    async def start(self) -> None:
        """Called once the database is open: load the default user's vectors (so the first recall
        is as fast as the others), then re-embed stale rows in the background if asked to."""
        if self._embedder.dimensions:
            await self._user_vectors(self._settings.user_id)
        if self._settings.reembed_on_start:
            self.reembedder.start_background()

    async def stop(self) -> None:
        await self.reembedder.stop()

    @property
    def embedder_model(self) -> str:
        return self._embedder.model

    def _reembedded(
        self, user_id: str, memory_id: int, vector: np.ndarray, deleted: bool, expires_at: int | None
    ) -> None:
        self._vector_index().upsert(user_id, memory_id, vector, deleted=deleted, expires_at=expires_at)
