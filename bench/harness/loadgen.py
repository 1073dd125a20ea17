"""The load generator: N concurrent keep-alive clients, bounded by a request count and a time limit.

Run it as its own process (`python -m bench.harness.loadgen '<json spec>'`, JSON result on stdout)
so that it never shares an interpreter, a GIL or an event loop with the server it measures.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import subprocess
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

import aiohttp

from bench.harness import wire
from bench.harness.procs import PYTHON, ROOT
from bench.harness.scenarios import SCENARIOS, Scenario

MAX_ERROR_SAMPLES = 5


@dataclass
class LoadSpec:
    url: str
    scenario: str
    concurrency: int
    max_requests: int
    max_seconds: float
    token: str | None = None
    warmup_requests: int = 0
    nonce: str = "run"
    request_timeout: float = 30.0


@dataclass
class LoadResult:
    requests: int
    errors: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    error_kinds: dict[str, int] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list (0 for an empty one)."""
    if not sorted_values:
        return 0.0
    rank = min(len(sorted_values), max(1, math.ceil(fraction * len(sorted_values))))
    return sorted_values[rank - 1]


def _kind(problem: str) -> str:
    """Group error messages by their kind, not their varying detail."""
    return problem.split(":", 1)[0]


async def drive(
    session: aiohttp.ClientSession,
    url: str,
    scenario: Scenario,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    nonce: str,
) -> LoadResult:
    """Send requests from `concurrency` clients until `max_requests` are done or time is up."""
    indices = itertools.count()
    latencies: list[float] = []
    kinds: Counter[str] = Counter()
    samples: list[str] = []
    start = time.perf_counter()
    deadline = start + max_seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            i = next(indices)
            if i >= max_requests:
                return
            message = scenario(i, nonce)
            sent = time.perf_counter()
            try:
                async with session.post(url, data=wire.encode(message)) as response:
                    body = await response.read()
                    status = response.status
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                problem: str | None = f"connection: {type(exc).__name__}"
            else:
                latencies.append(time.perf_counter() - sent)
                problem = wire.failure(status, body)
            if problem is not None:
                kinds[_kind(problem)] += 1
                if len(samples) < MAX_ERROR_SAMPLES:
                    samples.append(problem)

    await asyncio.gather(*(client() for _ in range(concurrency)))
    seconds = time.perf_counter() - start
    latencies.sort()
    done = len(latencies) + kinds["connection"]
    return LoadResult(
        requests=done,
        errors=sum(kinds.values()),
        seconds=round(seconds, 3),
        rps=round(len(latencies) / seconds, 1) if seconds else 0.0,
        p50_ms=round(percentile(latencies, 0.50) * 1000, 2),
        p90_ms=round(percentile(latencies, 0.90) * 1000, 2),
        p99_ms=round(percentile(latencies, 0.99) * 1000, 2),
        max_ms=round((latencies[-1] if latencies else 0.0) * 1000, 2),
        error_kinds=dict(kinds),
        error_samples=samples,
    )


def session_for(token: str | None, concurrency: int, request_timeout: float) -> aiohttp.ClientSession:
    """Keep-alive connections, one per client, with the MCP headers on every request."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=concurrency),
        headers=wire.headers(token),
        timeout=aiohttp.ClientTimeout(total=request_timeout),
    )


async def run(spec: LoadSpec) -> LoadResult:
    scenario = SCENARIOS[spec.scenario]
    async with session_for(spec.token, spec.concurrency, spec.request_timeout) as session:
        if spec.warmup_requests:
            await drive(session, spec.url, scenario, concurrency=spec.concurrency,
                        max_requests=spec.warmup_requests, max_seconds=spec.max_seconds,
                        nonce=f"{spec.nonce}w")
        return await drive(session, spec.url, scenario, concurrency=spec.concurrency,
                           max_requests=spec.max_requests, max_seconds=spec.max_seconds, nonce=spec.nonce)


def run_in_subprocess(spec: LoadSpec) -> LoadResult:
    """Run the load generator in its own process and return its result."""
    completed = subprocess.run(
        [PYTHON, "-m", "bench.harness.loadgen", json.dumps(asdict(spec))],
        cwd=ROOT, capture_output=True, text=True, timeout=spec.max_seconds * 2 + 120, check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed ({completed.returncode}):\n{completed.stderr[-2000:]}")
    return LoadResult(**json.loads(completed.stdout))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m bench.harness.loadgen '<LoadSpec as JSON>'", file=sys.stderr)
        return 2
    spec = LoadSpec(**json.loads(argv[0]))
    result = asyncio.run(run(spec))
    print(json.dumps(asdict(result)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
