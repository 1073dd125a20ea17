"""Vector search at scale: the in-memory numpy index against sqlite-vec, exact top-k both.

    .venv/bin/python -m bench.vector_search [--rows 100000] [--dims 256] [--queries 200]

What it measures, per engine: p50/p99 latency of one top-10 query over all rows, the same with a
filter that keeps 1 % of the rows (a tag filter), load/build time, and the memory the index adds.
Vectors are random unit vectors (latency does not depend on their content for exact search).

sqlite-vec needs an SQLite that can load extensions. The Python this project runs on is built
without `enable_load_extension`, so the benchmark loads it through `apsw` (`pip install apsw`);
using sqlite-vec in the server would add that dependency too.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from ownsona.memory.store import NEVER, VectorRows
from ownsona.memory.vectors import UserVectors


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


def bench_numpy(vectors: np.ndarray, queries: np.ndarray, allowed: np.ndarray) -> dict[str, object]:
    rows = len(vectors)
    before = _rss_mb()
    started = time.perf_counter()
    index = UserVectors(
        VectorRows(
            ids=np.arange(1, rows + 1, dtype=np.int64),
            matrix=vectors,
            deleted=np.zeros(rows, dtype=bool),
            expires_at=np.full(rows, NEVER, dtype=np.int64),
        ),
        vectors.shape[1],
    )
    build = time.perf_counter() - started
    now = int(time.time() * 1000)
    plain, filtered = [], []
    for query in queries:
        t = time.perf_counter()
        index.search(query, 10, now)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        index.search(query, 10, now, allowed=allowed)
        filtered.append(time.perf_counter() - t)
    return {"engine": "numpy in-memory (ownsona.memory.vectors)", "build_s": round(build, 3),
            "index_mb": round(_rss_mb() - before, 1), "top10": _percentiles(plain),
            "top10_filtered_1pct": _percentiles(filtered)}


def bench_sqlite_vec(vectors: np.ndarray, queries: np.ndarray, allowed: np.ndarray, path: Path) -> dict[str, object]:
    import apsw
    import sqlite_vec

    conn = apsw.Connection(str(path))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    dims = vectors.shape[1]
    started = time.perf_counter()
    conn.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{dims}] distance_metric=cosine, "
                 "tag integer)")
    allowed_set = set(allowed.tolist())
    with conn:
        conn.executemany(
            "INSERT INTO v (rowid, embedding, tag) VALUES (?, ?, ?)",
            ((i + 1, vectors[i].tobytes(), 1 if (i + 1) in allowed_set else 0) for i in range(len(vectors))),
        )
    build = time.perf_counter() - started
    size_mb = path.stat().st_size / 1e6
    plain, filtered = [], []
    for query in queries:
        blob = query.astype(np.float32).tobytes()
        t = time.perf_counter()
        list(conn.execute("SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 10", (blob,)))
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        list(conn.execute("SELECT rowid, distance FROM v WHERE embedding MATCH ? AND k = 10 AND tag = 1", (blob,)))
        filtered.append(time.perf_counter() - t)
    conn.close()
    return {"engine": f"sqlite-vec {sqlite_vec.__version__} vec0 (apsw)", "build_s": round(build, 3),
            "file_mb": round(size_mb, 1), "top10": _percentiles(plain), "top10_filtered_1pct": _percentiles(filtered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((args.rows, args.dims)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[rng.choice(args.rows, args.queries, replace=False)] + 0.1
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    allowed = np.sort(rng.choice(np.arange(1, args.rows + 1), max(1, args.rows // 100), replace=False))
    results = [bench_numpy(vectors, queries, allowed)]
    gc.collect()
    with tempfile.TemporaryDirectory() as tmp:
        try:
            results.append(bench_sqlite_vec(vectors, queries, allowed, Path(tmp) / "vec.db"))
        except ImportError as exc:
            results.append({"engine": "sqlite-vec", "skipped": f"needs apsw and sqlite-vec ({exc.name} missing)"})
    print(json.dumps({"rows": args.rows, "dims": args.dims, "queries": args.queries, "results": results}, indent=2))


if __name__ == "__main__":
    main()
