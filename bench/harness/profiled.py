"""Run a Python module under cProfile, every thread included, and save the merged stats on exit.

    python -m bench.harness.profiled OUT.prof -m ownsona serve --port N

cProfile alone sees only the main thread; OwnSona reads SQLite in reader threads and writes in a
writer thread, so each new thread gets its own profiler and all are merged when the module returns
(after SIGTERM, which `ownsona serve` handles as a graceful stop).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import runpy
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Any


class ThreadedProfile:
    """One `cProfile.Profile` per thread, started as each thread starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: list[cProfile.Profile] = []

    def _start_in_thread(self, frame: FrameType, event: str, arg: Any) -> None:
        profile = cProfile.Profile()
        with self._lock:
            self._profiles.append(profile)
        profile.enable()  # replaces this hook for the rest of the thread's life

    def __enter__(self) -> ThreadedProfile:
        threading.setprofile(self._start_in_thread)
        self._main = cProfile.Profile()
        self._main.enable()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._main.disable()
        threading.setprofile(None)  # type: ignore[arg-type]

    def save(self, path: Path) -> None:
        stats = pstats.Stats(self._main)
        with self._lock:
            for profile in self._profiles:
                stats.add(profile)
        stats.dump_stats(str(path))


# Threads blocked in these are idle, not busy: a reader waiting for work, the loop waiting for I/O.
IDLE_WAITS = (
    "method 'get' of '_queue.SimpleQueue'",
    "method 'poll' of 'select.epoll'",
    "method 'acquire' of '_thread.lock'",
    "method 'acquire' of '_thread.RLock'",
)


def top_entries(path: Path, count: int = 25, sort: str = "tottime", restrict: str | None = None) -> str:
    """The most expensive functions, idle waits left out; `restrict` keeps one package's files only."""
    stream = io.StringIO()
    stats = pstats.Stats(str(path), stream=stream)
    for key in list(stats.stats):  # type: ignore[attr-defined]
        name = pstats.func_std_string(key)
        if any(wait in name for wait in IDLE_WAITS) or (restrict and f"/{restrict}/" not in key[0]):
            del stats.stats[key]  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats(sort).print_stats(count)
    return stream.getvalue()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "-m":
        print("usage: python -m bench.harness.profiled OUT.prof -m MODULE [ARGS...]", file=sys.stderr)
        return 2
    out, module, args = Path(argv[0]), argv[2], argv[3:]
    sys.argv = [module, *args]
    code = 0
    with ThreadedProfile() as profile:
        try:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
    profile.save(out)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
