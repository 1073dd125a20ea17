"""Servers under test as real child processes: start, wait for the first `initialize`, read RSS, stop.

Each server writes its stdout and stderr to a log file (never a pipe: a full pipe would stall a
server that logs every request), which the chaos checks read afterwards.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from bench.harness import wire

ROOT = Path(__file__).resolve().parents[2]  # the repository: bench/harness/procs.py
PYTHON = sys.executable
LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """An ephemeral loopback port for a child process to listen on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def rss_mb(pid: int) -> float:
    """Resident set size of a process in MB (VmRSS, as `ps` and systemd report it)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@dataclass
class ServerSpec:
    """How to run one server: its command line, environment, and where it answers MCP."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] = field(default_factory=dict)
    token: str | None = None
    path: str = "/mcp"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{self.path}"


class ServerProcess:
    """One running server. Use as a context manager so it never outlives the caller."""

    def __init__(self, spec: ServerSpec, log_path: Path) -> None:
        self.spec = spec
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._started_at = 0.0

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), **self.spec.env}
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._started_at = time.perf_counter()
            self._proc = subprocess.Popen(
                self.spec.argv, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError(f"{self.spec.name} is not started")
        return self._proc.pid

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait_ready(self, timeout: float = 60.0) -> float:
        """Poll with `initialize` until one succeeds; return seconds since the process was spawned."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise RuntimeError(f"{self.spec.name} exited early; see {self.log_path}:\n{self.log_tail()}")
            try:
                status, body = post(self.spec, wire.initialize(), timeout=5.0)
            except OSError:
                time.sleep(0.005)
                continue
            if wire.failure(status, body) is None:
                return time.perf_counter() - self._started_at
            raise RuntimeError(f"{self.spec.name} refused initialize: HTTP {status} {body[:200]!r}")
        raise TimeoutError(f"{self.spec.name} did not answer initialize within {timeout} s")

    def rss_mb(self) -> float:
        return rss_mb(self.pid)

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait for a graceful exit; SIGKILL if it does not come."""
        if self._proc is None:
            return 0
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def kill(self) -> None:
        """SIGKILL: the crash the store must survive."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGKILL)
            self._proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def __enter__(self) -> ServerProcess:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()


def post(
    spec: ServerSpec,
    message: object,
    *,
    headers: dict[str, str] | None = None,
    raw: bytes | None = None,
    timeout: float = 30.0,
) -> tuple[int, bytes]:
    """One POST over a fresh connection; for set-up and checks, not for load."""
    conn = http.client.HTTPConnection(LOOPBACK, spec.port, timeout=timeout)
    try:
        body = raw if raw is not None else wire.encode(message)
        conn.request("POST", spec.path, body=body, headers=headers if headers is not None else wire.headers(spec.token))
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def call_tool(spec: ServerSpec, name: str, arguments: dict[str, object]) -> dict[str, object]:
    """Call a tool and return its payload; raise if the call is not a success."""
    status, body = post(spec, wire.tool_call(name, arguments, 1))
    problem = wire.failure(status, body)
    if problem is not None:
        raise RuntimeError(f"{spec.name}: {name} failed: {problem}")
    return wire.tool_payload(json.loads(body)["result"])


def ownsona_spec(
    home: Path, token: str, *, port: int | None = None, extra_env: dict[str, str] | None = None
) -> ServerSpec:
    """A real `ownsona serve` over the store in `home`, authenticated with `token`."""
    port = port or free_port()
    env = {"OWNSONA_HOME": str(home), "OWNSONA_API_TOKEN": token, **(extra_env or {})}
    return ServerSpec("ownsona", [PYTHON, "-m", "ownsona", "serve", "--port", str(port)], port, env=env, token=token)
