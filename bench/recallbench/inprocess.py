"""The in-process half of `bench/recall`: fill a store through `MemoryService`, time `recall` on it.

Filling *is* the `remember` measurement. Each size is reached from the previous one through the
service's own code: bulk `remember_batch` calls first, with dedup policy "insert" (validation,
exact-duplicate lookup, embedding, inserts; no near-duplicate search, as `ownsona import` seeds),
then, timed, a few `remember_batch` calls and one-at-a-time `remember` calls with the default
policy ("ask": a near-duplicate vector search per item too, as a client's call gets). Those add
the last memories, so both throughput figures are those of a store of about the target size.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.harness.loadgen import percentile
from ownsona.config import Settings, settings_from_environ
from ownsona.db import Database
from ownsona.embeddings.base import Embedder
from ownsona.memory.inputs import RememberItem
from ownsona.memory.schema import MEMORY_SCHEMA
from ownsona.memory.service import MemoryService


@dataclass
class Latency:
    requests: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of(cls, seconds: list[float]) -> Latency:
        ordered = sorted(seconds)
        return cls(len(ordered), round(percentile(ordered, 0.50) * 1000, 2),
                   round(percentile(ordered, 0.99) * 1000, 2), round(ordered[-1] * 1000, 2) if ordered else 0.0)


@dataclass
class FillResult:
    seeded: int  # memories added in bulk before the measured tail
    seed_per_s: float
    batch_items: int  # measured remember_batch items, just below the target size
    batch_per_s: float
    single: int  # measured remember calls, the last memories before the target size
    single_per_s: float


def settings_for(home: Path) -> Settings:
    return settings_from_environ({"OWNSONA_HOME": str(home)})


@asynccontextmanager
async def opened_service(home: Path, embedder: Embedder) -> AsyncIterator[tuple[MemoryService, str]]:
    """The memory service over the store in `home`, started as `ownsona serve` starts it."""
    settings = settings_for(home)
    database = Database(settings.database_path, [MEMORY_SCHEMA])
    service = MemoryService(database, embedder, settings)
    await database.open()
    try:
        await service.start()
        yield service, settings.user_id
    finally:
        await service.stop()
        await database.close()


async def fill(service: MemoryService, user_id: str, texts: Iterator[str], count: int, *,
               single: int, batch: int, timed_batches: int) -> FillResult:
    """Add `count` memories, the last ones timed so that both rates belong to the target size:
    bulk `remember_batch` first, then `timed_batches` batches of `batch`, then `single` calls."""
    single = min(single, count)
    measured_batch = min(timed_batches * batch, count - single)
    seeded = count - single - measured_batch
    seed_seconds = await _add_batches(service, user_id, texts, seeded, batch, policy="insert")
    batch_seconds = await _add_batches(service, user_id, texts, measured_batch, batch, policy=None)
    started = time.perf_counter()
    for text in itertools.islice(texts, single):
        await service.remember(user_id, RememberItem(text=text))
    single_seconds = time.perf_counter() - started
    return FillResult(seeded, _rate(seeded, seed_seconds), measured_batch, _rate(measured_batch, batch_seconds),
                      single, _rate(single, single_seconds))


async def _add_batches(service: MemoryService, user_id: str, texts: Iterator[str], count: int, batch: int, *,
                       policy: str | None) -> float:
    """Add `count` memories with `remember_batch` calls of up to `batch` items; return the seconds."""
    started = time.perf_counter()
    remaining = count
    while remaining > 0:
        chunk = [RememberItem(text=text) for text in itertools.islice(texts, min(batch, remaining))]
        result = await service.remember_batch(user_id, chunk, dedup_policy=policy)
        if result["summary"]["inserted"] != len(chunk):
            raise RuntimeError(f"remember_batch did not insert every item: {result['summary']}")
        remaining -= len(chunk)
    return time.perf_counter() - started


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if count and seconds > 0 else 0.0


async def recall_latency(service: MemoryService, user_id: str, queries: Sequence[str], *,
                         requests: int, warmup: int) -> Latency:
    """Sequential `recall` calls with the default limit, one query after another, timed each."""
    for i in range(warmup):
        await service.recall(user_id, queries[i % len(queries)])
    seconds: list[float] = []
    for i in range(requests):
        query = queries[(warmup + i) % len(queries)]
        started = time.perf_counter()
        await service.recall(user_id, query)
        seconds.append(time.perf_counter() - started)
    return Latency.of(seconds)
