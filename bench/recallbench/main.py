"""`bench/recall`: recall latency, resident memory and remember throughput at growing store sizes.

One store grows through the sizes (1k, 10k, 100k by default). At each size:

1. in this process, the memory service fills the store up to the size (`inprocess.fill`: bulk
   `remember_batch`, then the last memories through timed `remember_batch` and single `remember`
   calls) and times sequential `recall` calls;
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
    single: int  # timed remember calls, one memory each
    batch: int  # items per remember_batch
    timed_batches: int  # timed remember_batch calls


QUICK = Budget(recalls=300, http_recalls=300, warmup=20, single=100, batch=200, timed_batches=2)
FULL = Budget(recalls=2_000, http_recalls=2_000, warmup=100, single=500, batch=200, timed_batches=5)


@dataclass
class Resident:
    """A process's resident memory, in MB: all of it (VmRSS), anonymous, and file-backed."""

    rss_mb: float
    anon_mb: float
    file_mb: float

    @classmethod
    def of(cls, pid: int) -> Resident:
        """Read Linux's `smaps_rollup`: anonymous pages are the heap and the vector matrix; file-backed
        ones are shared libraries and the memory-mapped model, shared and reclaimable."""
        fields: dict[str, float] = {}
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                parts = line.split()
                if parts[0] in ("Rss:", "Anonymous:"):
                    fields[parts[0]] = int(parts[1]) / 1024
        rss, anon = fields["Rss:"], fields["Anonymous:"]
        return cls(round(rss, 1), round(anon, 1), round(rss - anon, 1))


def peak_rss_mb(pid: int) -> float:
    """The largest RSS the process has had (VmHWM); loading the vectors at start-up used to be it."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmHWM for process {pid}")


@dataclass
class ServerReport:
    start_seconds: float  # from spawn to the first answered `initialize`
    after_start: Resident  # store open, vectors loaded, nothing recalled yet
    http: LoadResult
    http_clients: int
    after_recalls: Resident
    peak_rss_mb: float


@dataclass
class SizeReport:
    memories: int
    fill: FillResult
    recall: Latency  # in-process
    server: ServerReport


def measure_server(home: Path, log_path: Path, budget: Budget, clients: int) -> ServerReport:
    """Start `ownsona serve` over `home`, read its RSS, drive recall over HTTP, read its RSS again."""
    token = secrets.token_urlsafe(32)
    spec = ownsona_spec(home, token, extra_env={"OWNSONA_LOG_LEVEL": "warning"})
    with ServerProcess(spec, log_path) as server:
        start_seconds = round(server.wait_ready(timeout=300.0), 2)
        after_start = Resident.of(server.pid)
        result = run_in_subprocess(LoadSpec(
            url=spec.url, token=token, scenario="recall", concurrency=clients, max_requests=budget.http_recalls,
            max_seconds=600.0, warmup_requests=budget.warmup, nonce=secrets.token_hex(3),
        ))
        if result.errors:
            raise RuntimeError(f"recall over HTTP failed: {result.error_kinds} {result.error_samples}")
        return ServerReport(start_seconds, after_start, result, clients, Resident.of(server.pid),
                            peak_rss_mb(server.pid))


async def grow_and_recall(home: Path, texts: Iterator[str], embedder: Embedder, stored: int, size: int,
                          budget: Budget) -> tuple[FillResult, Latency]:
    async with opened_service(home, embedder) as (service, user_id):
        filled = await fill(service, user_id, texts, size - stored, single=budget.single, batch=budget.batch,
                            timed_batches=budget.timed_batches)
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
        print(f"  seeded {filled.seeded:,} at {filled.seed_per_s:.0f}/s; remember {filled.single_per_s:.0f}/s single, "
              f"{filled.batch_per_s:.0f}/s in batches; "
              f"recall in-process p50 {latency.p50_ms:.2f} ms p99 {latency.p99_ms:.2f} ms", flush=True)
        served = measure_server(home, workdir / f"server-{size}.log", budget, clients)
        print(f"  ownsona serve: RSS {served.after_start.rss_mb:.1f} MB after start, "
              f"{served.after_recalls.rss_mb:.1f} MB after {served.http.requests} recalls, peak "
              f"{served.peak_rss_mb:.1f} MB (HTTP p50 {served.http.p50_ms:.2f} ms p99 {served.http.p99_ms:.2f} ms)",
              flush=True)
        reports.append(SizeReport(size, filled, latency, served))
    return reports


def render(reports: list[SizeReport], budget: Budget) -> str:
    lines = [
        "| memories | recall in-process p50 / p99 ms | recall HTTP p50 / p99 ms | HTTP req/s "
        "| RSS after start MB (anon + file) | RSS after recalls MB (anon + file) | peak RSS MB "
        "| remember single /s | remember_batch items/s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in reports:
        http, start, after = r.server.http, r.server.after_start, r.server.after_recalls
        lines.append(
            f"| {r.memories:,} | {r.recall.p50_ms:.2f} / {r.recall.p99_ms:.2f} | {http.p50_ms:.2f} / "
            f"{http.p99_ms:.2f} | {http.rps:.0f} | {start.rss_mb:.1f} ({start.anon_mb:.1f} + {start.file_mb:.1f}) "
            f"| {after.rss_mb:.1f} ({after.anon_mb:.1f} + {after.file_mb:.1f}) | {r.server.peak_rss_mb:.1f} "
            f"| {r.fill.single_per_s:.0f} | {r.fill.batch_per_s:.0f} |"
        )
    lines.append(
        f"\nRecall: default limit, {budget.recalls} in-process calls and {budget.http_recalls} tools/call at "
        f"{reports[0].server.http_clients if reports else 1} client(s), each after {budget.warmup} warm-up calls. "
        f"remember: the last {budget.timed_batches} batches of {budget.batch} and {budget.single} "
        f"single calls before each size, default dedup policy (exact and near-duplicate checks); the bulk "
        f"before them with dedup_policy=insert. Targets: in-process p99 <= {P99_TARGET_MS:g} ms at 100k; "
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
    parser.add_argument("--quick", action="store_true",
                        help="fewer timed calls per size (under a minute; the full run takes about two)")
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
