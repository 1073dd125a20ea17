"""The in-process half of `bench/recall`: fill a store through `MemoryService`, time `recall` on it.

Filling *is* the `remember` measurement: each size is reached from the previous one by first
`single` one-at-a-time `remember` calls, then `remember_batch` calls of `batch` items, both with the
default dedup policy ("ask": an exact-duplicate lookup and a near-duplicate vector search per item,
as a client's call gets). So the store is seeded honestly, through the service's own code, and the
throughput figures are those of a store of about that size.
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
    single_count: int
    single_per_s: float
    batch_count: int
    batch_per_s: float


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
               single: int, batch: int) -> FillResult:
    """Add `count` memories: `single` with `remember`, the rest with `remember_batch` of `batch`."""
    single = min(single, count)
    started = time.perf_counter()
    for text in itertools.islice(texts, single):
        await service.remember(user_id, RememberItem(text=text))
    single_seconds = time.perf_counter() - started
    remaining = count - single
    started = time.perf_counter()
    while remaining > 0:
        chunk = [RememberItem(text=text) for text in itertools.islice(texts, min(batch, remaining))]
        result = await service.remember_batch(user_id, chunk)
        if result["summary"]["inserted"] != len(chunk):
            raise RuntimeError(f"remember_batch did not insert every item: {result['summary']}")
        remaining -= len(chunk)
    batch_seconds = time.perf_counter() - started
    return FillResult(
        single_count=single,
        single_per_s=round(single / single_seconds, 1) if single else 0.0,
        batch_count=count - single,
        batch_per_s=round((count - single) / batch_seconds, 1) if count > single else 0.0,
    )


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
