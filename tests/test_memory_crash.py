"""Durability: a real `ownsona serve` killed with SIGKILL while 8 clients write loses no acknowledged write."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from conftest import TEST_TOKEN

ROOT = Path(__file__).resolve().parents[1]
HEADERS = {
    "Authorization": f"Bearer {TEST_TOKEN}",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-06-18",
}


def start_server(home: Path, port: int) -> subprocess.Popen[bytes]:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "OWNSONA_HOME": str(home),
           "OWNSONA_PORT": str(port), "OWNSONA_API_TOKEN": TEST_TOKEN, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "ownsona", "serve"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def wait_healthy(session: aiohttp.ClientSession, port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited during start-up"
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not become healthy")


async def call(session: aiohttp.ClientSession, port: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}
    async with session.post(f"http://127.0.0.1:{port}/mcp", json=body, headers=HEADERS) as response:
        reply = await response.json()
    return json.loads(reply["result"]["content"][0]["text"])


async def test_acknowledged_writes_survive_sigkill(tmp_path: Path, unused_tcp_port: int) -> None:
    port = unused_tcp_port
    server = start_server(tmp_path, port)
    acknowledged: dict[int, str] = {}
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, port, server)

            async def writer(n: int) -> None:
                i = 0
                while True:
                    text = f"Writer {n} remembers fact number {i}."
                    try:
                        payload = await call(session, port, "remember", {"text": text, "dedup_policy": "insert"})
                    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError):
                        return  # the server is gone; this write was never acknowledged
                    assert payload["ok"] is True, payload
                    acknowledged[payload["memory_id"]] = text
                    i += 1

            writers = [asyncio.create_task(writer(n)) for n in range(8)]
            await asyncio.sleep(2.0)
            os.kill(server.pid, signal.SIGKILL)
            await asyncio.wait_for(asyncio.gather(*writers), timeout=30)
        server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert len(acknowledged) > 8

    database = tmp_path / "ownsona.db"
    conn = sqlite3.connect(database)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(conn.execute("SELECT id, text FROM memories"))
    finally:
        conn.close()
    missing = {i: t for i, t in acknowledged.items() if stored.get(i) != t}
    assert not missing

    # The server starts again on the same file and still finds what it acknowledged.
    restarted = start_server(tmp_path, port)
    try:
        async with aiohttp.ClientSession() as session:
            await wait_healthy(session, port, restarted)
            some_id, some_text = next(iter(acknowledged.items()))
            got = await call(session, port, "get_memory", {"id": some_id})
            assert got["memory"]["text"] == some_text
            count = await call(session, port, "count_memories", {})
            assert count["count"] == len(stored)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=15)
