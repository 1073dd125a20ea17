"""Crash safety: SIGKILL a real `ownsona serve` during concurrent writes, restart, check the store.

A write counts as acknowledged when its HTTP response arrived with `ok: true` and a memory id.
After the kill and a restart, every acknowledged (id, text) must be in the store, live, and the
file must pass `PRAGMA integrity_check`. Writes in flight at the kill may land or not; either is fine.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.harness import corpus, wire
from bench.harness.loadgen import session_for
from bench.harness.procs import ServerProcess, ServerSpec, call_tool

BATCH_ITEMS = 5


@dataclass
class CrashRound:
    killed_after_s: float
    acknowledged: int
    missing: list[int] = field(default_factory=list)
    changed: list[int] = field(default_factory=list)
    integrity: str = ""
    served_after_restart: bool = False

    @property
    def ok(self) -> bool:
        return not self.missing and not self.changed and self.integrity == "ok" and self.served_after_restart


def _acknowledged(message: dict[str, object], body: bytes) -> dict[int, str]:
    """The (id, text) pairs a response confirms as stored."""
    result = json.loads(body).get("result")
    if not isinstance(result, dict) or result.get("isError"):
        return {}
    payload = wire.tool_payload(result)
    arguments = message["params"]["arguments"]  # type: ignore[index]
    if "items" in arguments:
        return {
            r["memory_id"]: arguments["items"][r["input_index"]]["text"]
            for r in payload.get("results", [])
            if r.get("ok") and r.get("message") == "Ok"
        }
    if payload.get("ok") and payload.get("message") == "Ok":
        return {int(payload["memory_id"]): arguments["text"]}
    return {}


async def write_until_killed(server: ServerProcess, clients: int, kill_after: float, nonce: str) -> dict[int, str]:
    """Run `clients` writers (single and batch `remember`), SIGKILL the server mid-stream."""
    acked: dict[int, str] = {}
    counter = itertools.count()
    stop = asyncio.Event()

    async def writer(session: aiohttp.ClientSession, number: int) -> None:
        while not stop.is_set():
            i = next(counter)
            if number % 4 == 0:  # every fourth writer sends batches
                items = [{"text": corpus.template_fact(i * BATCH_ITEMS + k, f"{nonce} batch")}
                         for k in range(BATCH_ITEMS)]
                message = wire.tool_call("remember_batch", {"items": items}, i)
            else:
                message = wire.tool_call("remember", {"text": corpus.template_fact(i, f"{nonce} single")}, i)
            try:
                async with session.post(server.spec.url, data=wire.encode(message)) as response:
                    body = await response.read()
                    if response.status == 200:
                        acked.update(_acknowledged(message, body))
            except (aiohttp.ClientError, asyncio.TimeoutError):
                return  # the server is gone

    async with session_for(server.spec.token, clients, 30.0) as session:
        tasks = [asyncio.create_task(writer(session, n)) for n in range(clients)]
        await asyncio.sleep(kill_after)
        server.kill()
        stop.set()
        await asyncio.gather(*tasks)
    return acked


def check_store(database: Path, acked: dict[int, str]) -> tuple[list[int], list[int], str]:
    """Missing ids, ids whose text differs, and the integrity-check verdict."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        rows = dict(conn.execute("SELECT id, text FROM memories WHERE deleted_at IS NULL").fetchall())
        integrity = "; ".join(row[0] for row in conn.execute("PRAGMA integrity_check"))
    missing = sorted(i for i in acked if i not in rows)
    changed = sorted(i for i, text in acked.items() if i in rows and rows[i] != text)
    return missing, changed, integrity


def _served_text(spec: ServerSpec, memory_id: int) -> object:
    memory = call_tool(spec, "get_memory", {"id": memory_id}).get("memory")
    return memory.get("text") if isinstance(memory, dict) else None


def crash_round(spec: ServerSpec, database: Path, log_path: Path, *, clients: int, kill_after: float,
                nonce: str) -> CrashRound:
    """One kill-restart-verify cycle over the store in `database` (served by `spec`)."""
    first = ServerProcess(spec, log_path)
    first.start()
    try:
        first.wait_ready()
        started = time.perf_counter()
        acked = asyncio.run(write_until_killed(first, clients, kill_after, nonce))
        killed_after = time.perf_counter() - started
    finally:
        first.kill()
    report = CrashRound(round(killed_after, 2), len(acked))
    with ServerProcess(spec, log_path) as second:
        second.wait_ready()
        report.missing, report.changed, report.integrity = check_store(database, acked)
        sample = random.Random(nonce).sample(sorted(acked), min(10, len(acked)))
        report.served_after_restart = all(_served_text(spec, memory_id) == acked[memory_id] for memory_id in sample)
    return report
