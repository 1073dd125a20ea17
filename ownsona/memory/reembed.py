"""Re-embedding: give every row a vector from the configured model, in resumable batches.

Rows are "stale" when their vector is missing or was made by another provider, model or dimension.
That predicate is the only state: a run that stops (crash, failure, Ctrl-C) resumes where the
stale rows are on the next run. Each batch is embedded first and then written in one short
transaction, so a running server keeps serving; a row whose text changed meanwhile is skipped
(its update already stored a fresh vector). Tombstones are included so correction checks keep
working after a model change. Unlike the Java walker, a failure never stops the server (§8.1 #21).
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import structlog

from ownsona.db import Database
from ownsona.embeddings.base import Embedder, EmbeddingError
from ownsona.memory import store
from ownsona.memory.records import Embedding

log = structlog.get_logger("ownsona.reembed")

BATCH_SIZE = 50

VectorSink = Callable[[str, int, np.ndarray, bool, "int | None"], None]


class ReembedError(Exception):
    """Re-embedding stopped; the message is safe to print. Already written batches stay written."""


@dataclass
class ReembedProgress:
    total: int = 0
    done: int = 0
    skipped: int = 0
    state: str = "idle"  # idle | running | finished | failed
    error: str | None = None
    started_at: float | None = None
    finished_at: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"state": self.state, "total": self.total, "done": self.done, "skipped": self.skipped,
                "error": self.error}


class Reembedder:
    """Walks the stale rows with one embedder; usable from a command or inside the server."""

    def __init__(self, db: Database, embedder: Embedder, *, on_vector: VectorSink | None = None) -> None:
        """`on_vector` keeps a serving process's index current; without it (a separate command)
        each batch bumps the bulk epoch instead, so a running server reloads its vectors."""
        self._db = db
        self._embedder = embedder
        self._on_vector = on_vector
        self._task: asyncio.Task[ReembedProgress] | None = None
        self.progress = ReembedProgress()

    async def count_stale(self) -> int:
        e = self._embedder
        return await self._db.read(lambda c: store.count_stale(c, e.provider, e.model, e.dimensions or None))

    async def run(
        self, *, batch_size: int = BATCH_SIZE, report: Callable[[ReembedProgress], None] | None = None
    ) -> ReembedProgress:
        """Re-embed every stale row; returns the final progress, raises ReembedError on failure."""
        progress = self.progress = ReembedProgress(state="running", started_at=time.monotonic())
        progress.total = await self.count_stale()
        after = 0
        try:
            while True:
                e = self._embedder
                rows = await self._db.read(
                    lambda c, a=after: store.stale_rows(c, e.provider, e.model, e.dimensions or None,
                                                        after_id=a, limit=batch_size)
                )
                if not rows:
                    break
                try:
                    vectors = await e.embed([row.text for row in rows])
                except EmbeddingError as exc:
                    raise ReembedError(f"embedding failed after {progress.done} rows: {exc}") from None
                if vectors.shape[0] != len(rows):
                    raise ReembedError("the embedding provider returned a wrong number of vectors")
                embeddings = [Embedding(v, e.provider, e.model) for v in vectors]
                written = await self._db.write(lambda c, rs=rows, es=embeddings: self._write_batch(c, rs, es))
                for row, vector, ok in zip(rows, vectors, written, strict=True):
                    if ok and self._on_vector is not None:
                        self._on_vector(row.user_id, row.id, vector, row.deleted, row.expires_at)
                progress.done += sum(written)
                progress.skipped += len(rows) - sum(written)
                after = rows[-1].id
                if report is not None:
                    report(progress)
        except BaseException as exc:
            progress.state = "failed"
            progress.error = str(exc) if isinstance(exc, ReembedError) else type(exc).__name__
            progress.finished_at = time.monotonic()
            raise
        progress.state = "finished"
        progress.finished_at = time.monotonic()
        return progress

    def _write_batch(
        self, conn: sqlite3.Connection, rows: list[store.StaleRow], embeddings: list[Embedding]
    ) -> list[bool]:
        written = [store.set_embedding(conn, r.id, r.text, e) for r, e in zip(rows, embeddings, strict=True)]
        if self._on_vector is None:
            store.bump_epoch(conn)
        return written

    def start_background(self) -> asyncio.Task[ReembedProgress] | None:
        """Run in the background of a serving process; progress and failures go to the log."""
        if self._task is not None and not self._task.done():
            return self._task

        async def background() -> ReembedProgress:
            if await self.count_stale() == 0:
                return self.progress
            log.info("reembed_started", model=self._embedder.model)
            last_log = 0.0

            def report(progress: ReembedProgress) -> None:
                nonlocal last_log
                if time.monotonic() - last_log >= 5.0 or progress.done >= progress.total:
                    last_log = time.monotonic()
                    log.info("reembed_progress", done=progress.done, total=progress.total)

            try:
                result = await self.run(report=report)
            except ReembedError as exc:
                log.error("reembed_failed", error=str(exc), hint="fix the embedding provider and restart, "
                          "or run `ownsona reembed`; the server keeps serving")
                return self.progress
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reembed_crashed")
                return self.progress
            log.info("reembed_finished", done=result.done, skipped=result.skipped)
            return result

        self._task = asyncio.get_running_loop().create_task(background(), name="ownsona-reembed")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
