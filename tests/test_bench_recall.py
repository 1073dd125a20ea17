"""`bench/recall` on a tiny budget: every size is filled, timed in-process and over a real `ownsona serve`."""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import pytest

from bench.harness.corpus import eval_facts
from bench.harness.seed import count_memories
from bench.recallbench.corpus import memory_texts
from bench.recallbench.main import Budget, parse_sizes, render, run

TINY = Budget(recalls=20, http_recalls=20, warmup=2, single=5, batch=10, timed_batches=1)


def test_each_size_is_reached_and_measured_both_ways(tmp_path: Path) -> None:
    reports = run([40, 80], TINY, clients=2, workdir=tmp_path)
    assert [r.memories for r in reports] == [40, 80]
    assert count_memories(tmp_path / "home" / "ownsona.db") == 80
    for report in reports:
        fill = report.fill
        assert (fill.seeded, fill.batch_items, fill.single) == (25, 10, 5)  # the last 15 are the timed ones
        assert fill.seed_per_s > 0 and fill.batch_per_s > 0 and fill.single_per_s > 0
        assert report.recall.requests == 20 and 0 < report.recall.p50_ms <= report.recall.p99_ms
        server = report.server
        assert server.http.requests == 20 and server.http.errors == 0 and server.http.p50_ms > 0
        for resident in (server.after_start, server.after_recalls):
            assert 0 < resident.anon_mb < resident.rss_mb <= server.peak_rss_mb
            assert resident.file_mb == pytest.approx(resident.rss_mb - resident.anon_mb, abs=0.2)
    table = render(reports, TINY)
    assert "| 40 |" in table and "| 80 |" in table


def test_memory_texts_are_the_eval_facts_then_distinct_variations() -> None:
    facts = eval_facts()
    texts = list(itertools.islice(memory_texts(), len(facts) * 3))
    assert texts[: len(facts)] == list(facts)
    assert len(set(texts)) == len(texts)
    assert texts == list(itertools.islice(memory_texts(), len(texts)))  # the same every run
    assert set(texts[len(facts):]).isdisjoint(facts)


def test_sizes_accept_k_suffixes_and_must_increase() -> None:
    assert parse_sizes("1k,10k,100_000") == [1_000, 10_000, 100_000]
    for bad in ("10k,1k", "0,5", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="increasing"):
            parse_sizes(bad)
