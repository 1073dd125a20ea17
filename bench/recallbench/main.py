"""`bench/recall`: recall latency, resident memory and remember throughput at growing store sizes.

One store grows through the sizes (1k, 10k, 100k by default). At each size:

1. in this process, the memory service fills the store up to the size (`inprocess.fill`: timed
   single `remember` calls, then timed `remember_batch` calls) and times sequential `recall` calls;
2. the store is closed and a real `ownsona serve` starts over it (bench.harness.procs); its RSS is
   read once it answers `initialize` (vectors loaded, nothing recalled yet), then the load
   generator (bench.harness.loadgen, its own process) sends a bounded number of `tools/call
   recall` over loopback keep-alive connections, and the RSS is read again, split into anonymous
   memory (the heap, the vector matrix) and file-backed pages (shared libraries, the mapped model).

Queries are the eval set's 1,009 questions, worded as a user asks; memories are the eval facts and
realistic variations of them (`corpus`). Targets from issue 3: recall p99 <= 20 ms at 100k
in-process; RSS <= 100 MB serving 10k memories with the builtin embeddings.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from bench.harness.loadgen import LoadResult, LoadSpec, run_in_subprocess
from bench.harness.procs import ROOT, ServerProcess, ownsona_spec
from bench.recallbench import corpus
from bench.recallbench.inprocess import FillResult, Latency, fill, opened_service, recall_latency, settings_for
from ownsona.embeddings import Embedder, create_embedder
from ownsona.logs import configure_logging

RESULTS_DIR = ROOT / "bench" / "results"
P99_TARGET_MS = 20.0  # in-process, at 100k memories
RSS_TARGET_MB = 100.0  # serving 10k memories


@dataclass(frozen=True)
class Budget:
    """How much each size measures; every bound is a count, so a run's length is predictable."""

    recalls: int  # timed in-process recall calls
    http_recalls: int  # timed tools/call recall requests
    warmup: int
    single: int  # remember calls, one memory each
    batch: int  # items per remember_batch


QUICK = Budget(recalls=300, http_recalls=300, warmup=20, single=100, batch=200)
FULL = Budget(recalls=2_000, http_recalls=2_000, warmup=100, single=500, batch=200)


@dataclass
class SizeReport:
    memories: int
    fill: FillResult
    recall: Latency
    http: LoadResult
    http_clients: int
    server_start_s: float
    rss_seeded_mb: float  # the server after start: store open, vectors loaded
    anon_seeded_mb: float
    file_seeded_mb: float
    rss_after_recall_mb: float
    anon_after_recall_mb: float
    file_after_recall_mb: float


def smaps_rollup_mb(pid: int) -> dict[str, float]:
    """Anonymous and file-backed resident memory of a process (Linux `smaps_rollup`), in MB."""
    fields: dict[str, float] = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
        for line in rollup:
            parts = line.split()
            if parts[0] in ("Rss:", "Anonymous:"):
                fields[parts[0].rstrip(":")] = int(parts[1]) / 1024
    return {"anon": fields["Anonymous"], "file": fields["Rss"] - fields["Anonymous"]}


@dataclass
class Served:
    start_seconds: float
    rss_seeded_mb: float
    seeded_split: dict[str, float]
    http: LoadResult
    rss_after_mb: float
    anon_mb: float
    file_mb: float


def measure_server(home: Path, log_path: Path, budget: Budget, clients: int) -> Served:
    """Start `ownsona serve` over `home`, read its RSS, drive recall over HTTP, read its RSS again."""
    token = secrets.token_urlsafe(32)
    spec = ownsona_spec(home, token, extra_env={"OWNSONA_LOG_LEVEL": "warning"})
    with ServerProcess(spec, log_path) as server:
        start_seconds = server.wait_ready(timeout=300.0)
        rss_seeded = server.rss_mb()
        seeded_split = smaps_rollup_mb(server.pid)
        result = run_in_subprocess(LoadSpec(
            url=spec.url, token=token, scenario="recall", concurrency=clients, max_requests=budget.http_recalls,
            max_seconds=600.0, warmup_requests=budget.warmup, nonce=secrets.token_hex(3),
        ))
        if result.errors:
            raise RuntimeError(f"recall over HTTP failed: {result.error_kinds} {result.error_samples}")
        rss_after = server.rss_mb()
        split = smaps_rollup_mb(server.pid)
    return Served(start_seconds, rss_seeded, seeded_split, result, rss_after, split["anon"], split["file"])


async def grow_and_recall(home: Path, texts: Iterator[str], embedder: Embedder, stored: int, size: int,
                          budget: Budget) -> tuple[FillResult, Latency]:
    async with opened_service(home, embedder) as (service, user_id):
        filled = await fill(service, user_id, texts, size - stored, single=budget.single, batch=budget.batch)
        latency = await recall_latency(service, user_id, corpus.queries(), requests=budget.recalls,
                                       warmup=budget.warmup)
    return filled, latency


def run(sizes: list[int], budget: Budget, clients: int, workdir: Path) -> list[SizeReport]:
    home = workdir / "home"
    home.mkdir(mode=0o700, parents=True)
    embedder = create_embedder(settings_for(home))
    texts = corpus.memory_texts()
    reports: list[SizeReport] = []
    stored = 0
    for size in sizes:
        print(f"{size:,} memories: filling from {stored:,} ...", flush=True)
        filled, latency = asyncio.run(grow_and_recall(home, texts, embedder, stored, size, budget))
        stored = size
        print(f"  remember {filled.single_per_s:.0f}/s single, {filled.batch_per_s:.0f}/s in batches; "
              f"recall in-process p50 {latency.p50_ms:.2f} ms p99 {latency.p99_ms:.2f} ms", flush=True)
        served = measure_server(home, workdir / f"server-{size}.log", budget, clients)
        http = served.http
        print(f"  ownsona serve: RSS {served.rss_seeded_mb:.1f} MB after start, {served.rss_after_mb:.1f} MB after "
              f"{http.requests} recalls (HTTP p50 {http.p50_ms:.2f} ms p99 {http.p99_ms:.2f} ms)", flush=True)
        reports.append(SizeReport(
            memories=size, fill=filled, recall=latency, http=http, http_clients=clients,
            server_start_s=round(served.start_seconds, 2), rss_seeded_mb=round(served.rss_seeded_mb, 1),
            anon_seeded_mb=round(served.seeded_split["anon"], 1), file_seeded_mb=round(served.seeded_split["file"], 1),
            rss_after_recall_mb=round(served.rss_after_mb, 1), anon_after_recall_mb=round(served.anon_mb, 1),
            file_after_recall_mb=round(served.file_mb, 1),
        ))
    return reports


def render(reports: list[SizeReport], budget: Budget) -> str:
    lines = [
        "| memories | recall in-process p50 / p99 ms | recall HTTP p50 / p99 ms | HTTP req/s | RSS after start MB (anon + file) "
        "| RSS after recalls MB (anon + file) | remember single /s | remember_batch items/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        lines.append(
            f"| {r.memories:,} | {r.recall.p50_ms:.2f} / {r.recall.p99_ms:.2f} | {r.http.p50_ms:.2f} / "
            f"{r.http.p99_ms:.2f} | {r.http.rps:.0f} | {r.rss_seeded_mb:.1f} "
            f"({r.anon_seeded_mb:.1f} + {r.file_seeded_mb:.1f}) | {r.rss_after_recall_mb:.1f} "
            f"({r.anon_after_recall_mb:.1f} + {r.file_after_recall_mb:.1f}) | {r.fill.single_per_s:.0f} "
            f"| {r.fill.batch_per_s:.0f} |"
        )
    lines.append(
        f"\nRecall: default limit, {budget.recalls} in-process calls and {budget.http_recalls} tools/call at "
        f"{reports[0].http_clients if reports else 1} client(s), each after {budget.warmup} warm-up calls. "
        f"remember: {budget.single} single calls, then batches of {budget.batch}, default dedup policy, "
        f"while growing to each size. Targets: in-process p99 <= {P99_TARGET_MS:g} ms at 100k; "
        f"RSS <= {RSS_TARGET_MB:g} MB serving 10k."
    )
    return "\n".join(lines)


def save(reports: list[SizeReport], budget: Budget, quick: bool, table: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"recall-{stamp}{'-quick' if quick else ''}.json"
    document = {
        "when": stamp,
        "quick": quick,
        "machine": {"python": platform.python_version(), "platform": platform.platform()},
        "budget": asdict(budget),
        "sizes": [asdict(r) for r in reports],
        "table": table,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def parse_sizes(text: str) -> list[int]:
    sizes = [int(part.replace("_", "").lower().replace("k", "000")) for part in text.split(",") if part.strip()]
    if not sizes or any(b <= a for a, b in zip(sizes, sizes[1:], strict=False)) or sizes[0] <= 0:
        raise argparse.ArgumentTypeError("sizes must be increasing positive counts, e.g. 1k,10k,100k")
    return sizes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/recall", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed calls per size (about 4 minutes)")
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("1k,10k,100k"),
                        help="store sizes to measure at, increasing (default 1k,10k,100k)")
    parser.add_argument("--clients", type=int, default=1, help="concurrent HTTP clients (default 1: latency)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (store and server logs)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    configure_logging("warning")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ownsona-recall-"))
    try:
        reports = run(args.sizes, budget, args.clients, workdir)
        table = render(reports, budget)
        print("\n" + table)
        path = save(reports, budget, args.quick, table)
        print(f"\nSaved {path.relative_to(ROOT)}; took {time.monotonic() - started:.0f} s.")
        return 0
    finally:
        if args.keep:
            print(f"Work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
