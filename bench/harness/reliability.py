"""`bench/chaos`: crash safety, sustained load, memory and fuzzing, against a real `ownsona serve`.

Every check prints one verdict line; the exit status is 0 only when all of them pass. The test
suite runs reduced versions of the same functions (`tests/test_chaos.py`).
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.harness.crash import crash_round
from bench.harness.fuzz import fuzz, log_problems
from bench.harness.loadgen import LoadSpec, run_in_subprocess
from bench.harness.procs import ROOT, ServerProcess, free_port, ownsona_spec
from bench.harness.seed import seed_store
from ownsona.logs import configure_logging

RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Plan:
    crash_rounds: int
    crash_clients: int
    sustained_seconds: float
    sustained_clients: int
    memory_requests: int
    memory_chunks: int
    fuzz_examples: int
    seeded: int


QUICK = Plan(crash_rounds=2, crash_clients=16, sustained_seconds=20, sustained_clients=32, memory_requests=20_000,
             memory_chunks=10, fuzz_examples=1_500, seeded=2_000)
FULL = Plan(crash_rounds=5, crash_clients=32, sustained_seconds=60, sustained_clients=32, memory_requests=100_000,
            memory_chunks=20, fuzz_examples=10_000, seeded=10_000)
FUZZ_SEEDED = 300
# RSS may drift by allocator noise; more than this after warm-up is growth.
ALLOWED_GROWTH_MB = 3.0
WARMUP_FRACTION = 0.2


@dataclass
class Verdict:
    check: str
    ok: bool
    summary: str
    details: dict[str, Any] = field(default_factory=dict)


def check_crash(workdir: Path, token: str, rounds: int, clients: int) -> Verdict:
    """SIGKILL during concurrent writes, `rounds` times over one store; nothing acknowledged may be lost."""
    home = workdir / "crash"
    home.mkdir(mode=0o700)
    spec = ownsona_spec(home, token)
    results = []
    for number in range(rounds):
        kill_after = 0.5 + number * 0.7  # kill at different points of the write stream
        results.append(crash_round(spec, home / "ownsona.db", workdir / "logs" / "crash.log", clients=clients,
                                   kill_after=kill_after, nonce=f"crash{number}"))
    acked = sum(r.acknowledged for r in results)
    ok = all(r.ok for r in results) and acked > 0
    summary = (f"{rounds} SIGKILLs during {clients} concurrent writers: {acked} acknowledged writes, "
               f"{sum(len(r.missing) for r in results)} missing, {sum(len(r.changed) for r in results)} changed, "
               f"integrity {', '.join(sorted({r.integrity for r in results}))}")
    return Verdict("crash safety", ok, summary, {"rounds": [asdict(r) for r in results]})


def check_sustained(server: ServerProcess, seconds: float, clients: int) -> Verdict:
    """Mixed reads and writes at `clients` concurrent clients for `seconds`, with zero errors."""
    result = run_in_subprocess(LoadSpec(url=server.spec.url, token=server.spec.token, scenario="mixed",
                                        concurrency=clients, max_requests=10**9, max_seconds=seconds,
                                        nonce=secrets.token_hex(3)))
    ok = result.errors == 0 and result.requests > 0
    summary = (f"{seconds:g} s of mixed load at {clients} clients: {result.requests} requests, {result.errors} errors, "
               f"{result.rps:.0f} req/s, p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms")
    return Verdict("sustained load", ok, summary, asdict(result))


def check_memory(server: ServerProcess, requests: int, chunks: int, clients: int = 8) -> Verdict:
    """Read traffic in chunks, RSS after each; after warm-up, RSS must stay flat."""
    per_chunk = requests // chunks
    samples = [round(server.rss_mb(), 1)]
    errors = 0
    for number in range(chunks):
        result = run_in_subprocess(LoadSpec(url=server.spec.url, token=server.spec.token, scenario="reads",
                                            concurrency=clients, max_requests=per_chunk, max_seconds=600,
                                            nonce=f"m{number}"))
        errors += result.errors
        samples.append(round(server.rss_mb(), 1))
    warm = samples[max(1, round(chunks * WARMUP_FRACTION))]
    growth = samples[-1] - warm
    ok = growth <= ALLOWED_GROWTH_MB and errors == 0
    summary = (f"{per_chunk * chunks:,} requests: RSS {samples[0]:.1f} MB at start, {warm:.1f} MB after warm-up, "
               f"{samples[-1]:.1f} MB at the end (growth {growth:+.1f} MB, allowed {ALLOWED_GROWTH_MB:g}); "
               f"{errors} errors")
    return Verdict("memory", ok, summary, {"rss_mb": samples, "errors": errors})


def check_fuzz(server: ServerProcess, database: Path, examples: int) -> Verdict:
    """Hypothesis against the live server, then its log: no error event, no traceback."""
    log_before = len(server.log_text().splitlines())
    report = fuzz(server.spec, database, examples=examples)
    in_log = log_problems("\n".join(server.log_text().splitlines()[log_before:]))
    ok = report.failure is None and not in_log
    summary = (f"{report.examples} examples ({report.accepted} accepted, {report.refused} refused; statuses "
               f"{dict(sorted(report.statuses.items()))}); invariant broken: {report.failure or 'none'}; "
               f"log problems: {len(in_log)}")
    return Verdict("fuzzing", ok, summary, {**asdict(report), "log_problems": in_log[:10]})


@contextmanager
def serving(workdir: Path, name: str, seeded: int, token: str) -> Iterator[tuple[ServerProcess, Path]]:
    """A real `ownsona serve` over a freshly seeded store of its own; yields it and its database."""
    home = workdir / name
    seed_store(home, seeded)
    with ServerProcess(ownsona_spec(home, token, port=free_port()), workdir / "logs" / f"{name}.log") as server:
        server.wait_ready()
        yield server, home / "ownsona.db"


def run_checks(workdir: Path, plan: Plan) -> list[Verdict]:
    token = secrets.token_urlsafe(32)
    verdicts: list[Verdict] = []

    def record(verdict: Verdict) -> None:
        verdicts.append(verdict)
        print_verdict(verdict)

    record(check_crash(workdir, token, plan.crash_rounds, plan.crash_clients))
    with serving(workdir, "load", plan.seeded, token) as (load_server, _):
        record(check_sustained(load_server, plan.sustained_seconds, plan.sustained_clients))
        record(check_memory(load_server, plan.memory_requests, plan.memory_chunks))
    # A small store for fuzzing: every call stays cheap, and the small ids it draws hit real rows.
    with serving(workdir, "fuzz", FUZZ_SEEDED, token) as (fuzz_server, database):
        record(check_fuzz(fuzz_server, database, plan.fuzz_examples))
    problems = log_problems(load_server.log_text() + "\n" + fuzz_server.log_text())
    summary = f"{len(problems)} error events or tracebacks in the servers' logs, graceful stops included"
    record(Verdict("server log", not problems, summary, {"problems": problems[:10]}))
    return verdicts


def print_verdict(verdict: Verdict) -> None:
    print(f"{'PASS' if verdict.ok else 'FAIL'}  {verdict.check}: {verdict.summary}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter checks (about a minute in all)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (stores and server logs)")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    configure_logging("warning")  # seeding in this process: only problems, as JSON lines
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ownsona-chaos-"))
    try:
        verdicts = run_checks(workdir, plan)
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        path = RESULTS_DIR / f"chaos-{stamp}{'-quick' if args.quick else ''}.json"
        path.write_text(json.dumps({"when": stamp, "plan": asdict(plan), "verdicts": [asdict(v) for v in verdicts]},
                                   indent=2) + "\n", encoding="utf-8")
        passed = all(v.ok for v in verdicts)
        print(f"\n{'All checks passed' if passed else 'Some checks FAILED'}; saved {path.relative_to(ROOT)}; "
              f"took {time.monotonic() - started:.0f} s.")
        return 0 if passed else 1
    finally:
        if args.keep:
            print(f"Work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
