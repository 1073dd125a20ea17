"""A minimal headless-Chromium driver over the Chrome DevTools Protocol, on aiohttp's websocket.

Chosen over Selenium + chromedriver: no extra package, no second process, and it is async, so
the browser and the server under test share the test's event loop. It knows exactly what the
OAuth end-to-end test needs: navigate, evaluate JavaScript, wait for a condition, read cookies.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any

import aiohttp

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class CdpError(Exception):
    pass


class Chromium:
    """One headless browser with one page; use as `async with Chromium(profile_dir) as page:`."""

    def __init__(self, profile: Path, executable: str | None = None) -> None:
        self._profile = profile
        self._executable = executable or find_chromium()
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._tasks: list[asyncio.Task[None]] = []
        self.stderr_lines: list[str] = []

    async def __aenter__(self) -> Chromium:
        if not self._executable:
            raise CdpError("chromium is not installed")
        self._process = await asyncio.create_subprocess_exec(
            self._executable, *FLAGS, f"--user-data-dir={self._profile}", "--remote-debugging-port=0",
            "about:blank", stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "HOME": str(self._profile)},
        )
        browser_url = await asyncio.wait_for(self._devtools_url(), timeout=30)
        port = re.match(r"ws://[^:/]+:(\d+)/", browser_url).group(1)  # type: ignore[union-attr]
        self._tasks.append(asyncio.create_task(self._drain_stderr()))
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as response:
            targets = await response.json(content_type=None)
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        self._tasks.append(asyncio.create_task(self._read()))
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            if self._ws is not None:
                await self._ws.close()
        if self._http is not None:
            await self._http.close()
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            try:
                await asyncio.wait_for(self._process.wait(), timeout=10)
            except TimeoutError:
                self._process.kill()
                await self._process.wait()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _devtools_url(self) -> str:
        assert self._process is not None and self._process.stderr is not None
        while True:
            line = (await self._process.stderr.readline()).decode(errors="replace")
            if not line:
                raise CdpError("chromium exited before opening DevTools: " + " | ".join(self.stderr_lines[-5:]))
            self.stderr_lines.append(line.rstrip())
            match = re.search(r"DevTools listening on (ws://\S+)", line)
            if match:
                return match.group(1)

    async def _drain_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        while line := await self._process.stderr.readline():
            self.stderr_lines.append(line.decode(errors="replace").rstrip())

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            future = self._pending.pop(data.get("id", -1), None)
            if future is not None and not future.done():
                if "error" in data:
                    future.set_exception(CdpError(str(data["error"])))
                else:
                    future.set_result(data.get("result", {}))

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        assert self._ws is not None
        message_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message_id] = future
        await self._ws.send_str(json.dumps({"id": message_id, "method": method, "params": params}))
        return await asyncio.wait_for(future, timeout=30)

    async def navigate(self, url: str) -> None:
        await self.call("Page.navigate", url=url)

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(str(result["exceptionDetails"].get("text")))
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 15.0) -> None:
        """Poll `expression` until it is truthy in JavaScript (page loads replace the document)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            with contextlib.suppress(CdpError):
                if await self.evaluate(f"!!({expression})"):
                    return
            if asyncio.get_running_loop().time() > deadline:
                raise CdpError(f"timed out waiting for {expression!r}")
            await asyncio.sleep(0.1)

    async def cookies(self) -> list[dict[str, Any]]:
        return (await self.call("Network.getAllCookies"))["cookies"]
