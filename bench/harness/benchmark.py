"""`bench/run`: OwnSona against the ceiling (bare aiohttp) and against the SDK's own server.

Each server runs alone, one after the other, so none shares the two cores with another server;
the load generator is a separate process (`bench.harness.loadgen`) driving every target with the same
bytes. OwnSona and the SDK server each get their own copy of one store seeded with 10,000
memories, so `recall` searches identical data.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from bench.harness.loadgen import LoadResult, LoadSpec, run_in_subprocess
from bench.harness.procs import PYTHON, ROOT, ServerProcess, ServerSpec, free_port
from bench.harness.seed import copy_store, seed_store
from ownsona.logs import configure_logging

SEEDED_MEMORIES = 10_000
ISSUE2_CALLS = 10_000  # issue 2: RSS after this many tools/call on the trivial tool
ISSUE2_CLIENTS = 8
RESULTS_DIR = ROOT / "bench" / "results"


@dataclass(frozen=True)
class Budget:
    """How long each measurement may run (whichever bound comes first), and how many rounds.

    The machine is shared, so a cell can be slowed by a neighbour for a few seconds. Every round
    runs every server once, in turn, and a cell keeps its fastest round: interference only ever
    slows a run down, so the best round is the closest to what the server can do.
    """

    seconds: float
    max_requests: int
    warmup_requests: int
    rounds: int
    clients: tuple[int, ...] = (1, 8, 32)


QUICK = Budget(seconds=2.5, max_requests=20_000, warmup_requests=100, rounds=2)
FULL = Budget(seconds=10.0, max_requests=200_000, warmup_requests=500, rounds=3)


@dataclass
class Measurement:
    scenario: str
    clients: int
    result: LoadResult


@dataclass
class TargetReport:
    name: str
    description: str
    cold_start_s: float
    rss_start_mb: float
    rss_end_mb: float
    issue2_rps: float | None = None
    rss_after_issue2_mb: float | None = None
    measurements: list[Measurement] = field(default_factory=list)

    def rps(self, scenario: str, clients: int) -> float | None:
        for m in self.measurements:
            if m.scenario == scenario and m.clients == clients:
                return m.result.rps
        return None

    def merge(self, later: TargetReport) -> None:
        """Fold a later round in: the fastest run of each cell, the quickest start, the largest RSS."""
        self.cold_start_s = min(self.cold_start_s, later.cold_start_s)
        self.rss_end_mb = max(self.rss_end_mb, later.rss_end_mb)
        if later.issue2_rps and (self.issue2_rps or 0) < later.issue2_rps:
            self.issue2_rps = later.issue2_rps
        for mine, theirs in zip(self.measurements, later.measurements, strict=True):
            if theirs.result.rps > mine.result.rps:
                mine.result = theirs.result


@dataclass
class Target:
    spec: ServerSpec
    description: str
    scenarios: tuple[str, ...]
    issue2: bool = False
    seeded_home: Path | None = None  # copied afresh into the server's home before each round


def make_targets(workdir: Path, token: str, *, profile_path: Path | None) -> list[Target]:
    """The four servers of one run, each with its own home directory and port."""
    seeded = workdir / "seed"

    def spec(name: str, module_args: list[str], *, authenticated: bool = True, path: str = "/mcp") -> ServerSpec:
        port = free_port()
        home = workdir / name
        home.mkdir(mode=0o700, exist_ok=True)
        env = {"OWNSONA_HOME": str(home), **({"OWNSONA_API_TOKEN": token} if authenticated else {})}
        return ServerSpec(name, [PYTHON, "-m", *module_args, "--port", str(port)], port, env=env,
                          token=token if authenticated else None, path=path)

    serve = ["ownsona", "serve"]
    if profile_path is not None:
        serve = ["bench.harness.profiled", str(profile_path), "-m", *serve]
    return [
        Target(spec("echo-baseline", ["bench.harness.servers", "echo-baseline"], authenticated=False, path="/echo"),
               "bare aiohttp JSON echo (the ceiling)", ("echo",), issue2=True),
        Target(spec("echo-stack", ["bench.harness.servers", "echo-stack"]),
               "OwnSona HTTP+MCP stack, trivial echo tool", ("echo",), issue2=True),
        Target(spec("ownsona", serve), "ownsona serve" + (" (under cProfile)" if profile_path else ""),
               ("recall", "remember"), seeded_home=seeded),
        Target(spec("sdk", ["bench.harness.sdk_server"], authenticated=False),
               "mcp SDK MCPServer, stateless JSON, uvicorn", ("echo", "recall", "remember"), seeded_home=seeded),
    ]


def measure(target: Target, budget: Budget, log_dir: Path, nonce: str) -> TargetReport:
    """Start the server, time its cold start, run every scenario at every client count, stop it."""
    spec = target.spec
    if target.seeded_home is not None:
        copy_store(target.seeded_home, Path(spec.env["OWNSONA_HOME"]))
    with ServerProcess(spec, log_dir / f"{spec.name}.log") as server:
        cold_start = server.wait_ready()
        report = TargetReport(spec.name, target.description, round(cold_start, 3), round(server.rss_mb(), 1), 0.0)
        if target.issue2:
            result = load(spec, "echo", ISSUE2_CLIENTS, ISSUE2_CALLS, 600.0, 0, nonce)
            if result.requests < ISSUE2_CALLS:
                raise RuntimeError(f"{spec.name}: only {result.requests} of {ISSUE2_CALLS} calls finished")
            report.issue2_rps = result.rps
            report.rss_after_issue2_mb = round(server.rss_mb(), 1)
        for scenario in target.scenarios:
            for clients in budget.clients:
                result = load(spec, scenario, clients, budget.max_requests, budget.seconds,
                              budget.warmup_requests, f"{nonce}c{clients}")
                report.measurements.append(Measurement(scenario, clients, result))
                print(f"  {spec.name:<13} {scenario:<9} {clients:>3} clients  {result.rps:>8.1f} req/s  "
                      f"p50 {result.p50_ms:>7.2f} ms  p99 {result.p99_ms:>7.2f} ms  errors {result.errors}", flush=True)
        report.rss_end_mb = round(server.rss_mb(), 1)
    return report


def load(spec: ServerSpec, scenario: str, clients: int, requests: int, seconds: float, warmup: int,
         nonce: str) -> LoadResult:
    return run_in_subprocess(LoadSpec(url=spec.url, token=spec.token, scenario=scenario, concurrency=clients,
                                      max_requests=requests, max_seconds=seconds, warmup_requests=warmup,
                                      nonce=nonce))


def ratio(ours: float | None, theirs: float | None) -> str:
    return f"{ours / theirs:.2f}" if ours and theirs else "-"


def render(reports: dict[str, TargetReport], budget: Budget) -> str:
    """The tables of the closing note: throughput and latency with ratios, then start-up and memory."""
    ceiling = reports["echo-baseline"]
    sdk = reports.get("sdk")
    lines = [
        "| server | tool | clients | req/s | p50 ms | p99 ms | errors | × ceiling | × SDK |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports.values():
        for m in report.measurements:
            vs_ceiling = ratio(m.result.rps, ceiling.rps("echo", m.clients)) if report is not ceiling else "1.00"
            ours = report.name in ("ownsona", "echo-stack")
            vs_sdk = ratio(m.result.rps, sdk.rps(m.scenario, m.clients)) if sdk and ours else ""
            lines.append(f"| {report.name} | {m.scenario} | {m.clients} | {m.result.rps:.0f} | {m.result.p50_ms:.2f} "
                         f"| {m.result.p99_ms:.2f} | {m.result.errors} | {vs_ceiling} | {vs_sdk} |")
    lines += ["", "| server | what | cold start to first initialize (s) | RSS after start (MB) | RSS at end (MB) |",
              "|---|---|---:|---:|---:|"]
    for report in reports.values():
        lines.append(f"| {report.name} | {report.description} | {report.cold_start_s:.2f} | {report.rss_start_mb:.1f} "
                     f"| {report.rss_end_mb:.1f} |")
    stack = reports.get("echo-stack")
    if stack and stack.issue2_rps and ceiling.issue2_rps:
        lines += ["", f"Issue 2 (trivial tool, {ISSUE2_CALLS:,} tools/call at {ISSUE2_CLIENTS} clients): "
                  f"OwnSona stack {stack.issue2_rps:.0f} req/s vs bare aiohttp echo {ceiling.issue2_rps:.0f} req/s "
                  f"= {stack.issue2_rps / ceiling.issue2_rps:.2f}; RSS {stack.rss_start_mb:.1f} MB after start, "
                  f"{stack.rss_after_issue2_mb:.1f} MB after {ISSUE2_CALLS:,} calls (bare echo: "
                  f"{ceiling.rss_start_mb:.1f} MB, then {ceiling.rss_after_issue2_mb:.1f} MB)."]
    lines.append(f"Each cell: the fastest of {budget.rounds} rounds, each up to {budget.seconds:g} s or "
                 f"{budget.max_requests:,} requests after {budget.warmup_requests} warm-up requests; "
                 f"{SEEDED_MEMORIES:,} seeded memories; a fresh copy of the store each round.")
    return "\n".join(lines)


def save(reports: dict[str, TargetReport], budget: Budget, quick: bool, table: str, seed_seconds: float) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"run-{stamp}{'-quick' if quick else ''}.json"
    document = {
        "when": stamp,
        "quick": quick,
        "machine": {"python": platform.python_version(), "cpus": _cpu_count(), "platform": platform.platform()},
        "budget": asdict(budget),
        "seeded_memories": SEEDED_MEMORIES,
        "seed_seconds": round(seed_seconds, 2),
        "targets": {name: asdict(report) for name, report in reports.items()},
        "table": table,
    }
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short cells (about 3 minutes in all)")
    parser.add_argument("--profile", action="store_true", help="run ownsona under cProfile and print its top entries")
    parser.add_argument("--only", choices=["echo-baseline", "echo-stack", "ownsona", "sdk"], action="append",
                        help="measure only these servers (repeatable); the echo baseline is always measured")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (stores and server logs)")
    args = parser.parse_args(argv)
    budget = QUICK if args.quick else FULL
    configure_logging("warning")  # seeding in this process: only problems, as JSON lines
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="ownsona-bench-"))
    try:
        print(f"Seeding {SEEDED_MEMORIES:,} memories ...", flush=True)
        seed_seconds = seed_store(workdir / "seed", SEEDED_MEMORIES)
        print(f"  seeded in {seed_seconds:.1f} s", flush=True)
        profile_path = workdir / "ownsona.prof" if args.profile else None
        token = secrets.token_urlsafe(32)
        wanted = {*args.only, "echo-baseline"} if args.only else None
        targets = [t for t in make_targets(workdir, token, profile_path=profile_path)
                   if wanted is None or t.spec.name in wanted]
        reports: dict[str, TargetReport] = {}
        for number in range(1, budget.rounds + 1):
            print(f"Round {number} of {budget.rounds}", flush=True)
            for target in targets:
                print(f"{target.spec.name}: {target.description}", flush=True)
                report = measure(target, budget, workdir / "logs", secrets.token_hex(3))
                if target.spec.name in reports:
                    reports[target.spec.name].merge(report)
                else:
                    reports[target.spec.name] = report
        table = render(reports, budget)
        print("\n" + table)
        path = save(reports, budget, args.quick, table, seed_seconds)
        print(f"\nSaved {path.relative_to(ROOT)}; took {time.monotonic() - started:.0f} s.")
        if profile_path is not None and profile_path.exists():
            from bench.harness.profiled import top_entries

            print("\nProfile of ownsona (all threads, wall-clock, idle waits left out), top by own time:\n")
            print(top_entries(profile_path, 25, "tottime"))
            print("OwnSona's own functions by cumulative time:\n")
            print(top_entries(profile_path, 30, "cumulative", restrict="ownsona"))
        return 0
    finally:
        if args.keep:
            print(f"Work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
