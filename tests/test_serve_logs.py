"""A real `ownsona serve` process, fed `?token=SECRET` every way we know, logs none of it.

The server runs as a subprocess with real stdout and stderr. It receives the token in the query
of valid and invalid /mcp calls, of a request to a missing path, in a Referer, in a URL path, in
the request line of a malformed request (aiohttp's parser raises and its "Error handling request"
traceback quotes the raw line), and in the query of an authenticated /mcp call whose client hangs
up mid-body (the /mcp handler's read raises). After SIGTERM, stdout must be pure JSON lines and
neither stream may hold the token, `token=` or any query we sent.

The negative control starts the same command with the scrub processor taken out (by replacing
`ownsona.logs.build_formatter` in the child before `main` runs, so production code has no
switch for it) and shows the very same checks then find the leaks.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from processes import free_port

from ownsona import __version__
from ownsona.logcheck import scan_lines

REPO = Path(__file__).resolve().parents[1]
TOKEN = "SECRET" + secrets.token_hex(20)
WRONG_TOKEN = "SECRET" + secrets.token_hex(20)
QUERY_MARKERS = [f"QMARK{n}" for n in range(1, 8)]

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}
TOOLS_LIST = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}

# Run in the child for the negative control: the same CLI, without the scrub processor.
UNSCRUBBED_MAIN = (
    "import functools, sys; import ownsona.logs as logs; "
    "logs.build_formatter = functools.partial(logs.build_formatter, scrub=False); "
    "from ownsona.cli import main; sys.exit(main(sys.argv[1:]))"
)


@dataclass
class Output:
    returncode: int
    stdout: str
    stderr: str
    port: int


def run_server_and_send_leaks(tmp_path: Path, *, scrub: bool) -> Output:
    port = free_port()
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OWNSONA_", "JOURNAL_STREAM"))}
    env.update({"OWNSONA_HOME": str(home), "OWNSONA_API_TOKEN": TOKEN, "OWNSONA_PORT": str(port), "HOME": str(home)})
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    command = [sys.executable, "-m", "ownsona"] if scrub else [sys.executable, "-c", UNSCRUBBED_MAIN]
    out_path, err_path = tmp_path / "stdout", tmp_path / "stderr"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        process = subprocess.Popen([*command, "serve"], stdout=out, stderr=err, env=env, cwd=tmp_path)
        try:
            base = f"http://127.0.0.1:{port}"
            wait_until_healthy(base, process, err_path)
            send_leaky_requests(base, port)
            process.send_signal(signal.SIGTERM)
            returncode = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return Output(returncode, out_path.read_text("utf-8"), err_path.read_text("utf-8"), port)


def wait_until_healthy(base: str, process: subprocess.Popen[bytes], err_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"ownsona serve exited with status {process.returncode}: {err_path.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    pytest.fail("ownsona serve did not answer /healthz within 60 s")


def http(method: str, url: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream", **(headers or {})
    })
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def send_leaky_requests(base: str, port: int) -> None:
    q1, q2, q3, q4, q5, q6, q7 = QUERY_MARKERS
    assert http("POST", f"{base}/mcp?token={TOKEN}&m={q1}", INITIALIZE) == 200
    assert http("POST", f"{base}/mcp?token={WRONG_TOKEN}&m={q2}", INITIALIZE) == 401
    assert http("GET", f"{base}/no/such/path?token={TOKEN}&m={q3}") == 404
    referer = {"Referer": f"https://chat.example/c/1?token={TOKEN}&m={q4}", "Authorization": f"Bearer {TOKEN}"}
    assert http("POST", f"{base}/mcp", TOOLS_LIST, referer) == 200
    # Header-only auth with a query on the URL: the access log must still drop the query.
    assert http("POST", f"{base}/mcp?m={q5}", TOOLS_LIST, {"Authorization": f"Bearer {TOKEN}"}) == 200
    # The token in a path, where no query rule applies: the registered value is replaced.
    assert http("GET", f"{base}/leak/{TOKEN}") == 404
    # A request line aiohttp cannot parse: its handling raises, and the exception quotes the line.
    # The token here was never registered, so only the structural rules can take it out.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        raw.sendall(f"GET /mcp?token={WRONG_TOKEN}&m={q6} junk HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert raw.recv(64).startswith(b"HTTP/1.0 400")
    # An authenticated /mcp call whose client hangs up mid-body: the handler's read raises.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        head = f"POST /mcp?token={TOKEN}&m={q7} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        raw.sendall(f"{head}Content-Length: 100\r\n\r\n{{\"jsonrpc\"".encode())
        time.sleep(0.2)
        raw.shutdown(socket.SHUT_WR)
        raw.recv(64)


def leaks(output: Output) -> list[str]:
    """Everything wrong with the server's output, as readable problems (empty when clean)."""
    problems = []
    streams = {"stdout": output.stdout, "stderr": output.stderr}
    for name, text in streams.items():
        for needle in ("SECRET", "token=", *QUERY_MARKERS):
            if needle in text:
                problems.append(f"{needle!r} in {name}")
        found = scan_lines(text.splitlines(), {"default": TOKEN})
        problems += [f"{name}:{finding.line}: {finding.kind}" for finding in found]
    for number, line in enumerate(output.stdout.splitlines(), start=1):
        try:
            json.loads(line)
        except ValueError:
            problems.append(f"stdout:{number} is not JSON")
    return problems


@pytest.fixture(scope="module")
def scrubbed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Output]:
    yield run_server_and_send_leaks(tmp_path_factory.mktemp("serve"), scrub=True)


def test_no_secret_token_parameter_or_query_reaches_stdout_or_stderr(scrubbed: Output) -> None:
    assert scrubbed.returncode == 0, scrubbed.stderr
    assert leaks(scrubbed) == []
    assert scrubbed.stderr == ""


def test_first_line_names_version_listen_address_store_and_embeddings(scrubbed: Output) -> None:
    first = json.loads(scrubbed.stdout.splitlines()[0])
    assert first["version"] == __version__
    assert f"127.0.0.1:{scrubbed.port}" in first["listen"]
    assert first["store"].startswith("sqlite:")
    assert first["embeddings"].startswith("builtin")


def test_every_request_is_one_structured_access_event(scrubbed: Output) -> None:
    events = [json.loads(line) for line in scrubbed.stdout.splitlines()]
    access = [
        (e["method"], e["path"], e["status"], e["credential"])
        for e in events
        if e.get("event") == "request" and e["path"] != "/healthz"
    ]
    assert access == [
        ("POST", "/mcp", 200, "default"),
        ("POST", "/mcp", 401, None),
        ("GET", "/no/such/path", 404, None),
        ("POST", "/mcp", 200, "default"),
        ("POST", "/mcp", 200, "default"),
        ("GET", "/leak/[redacted]", 404, None),
        ("UNKNOWN", "/", 400, None),  # aiohttp could not parse the request line
        ("POST", "/mcp", 500, "default"),  # the client hung up mid-body
    ]
    assert any(e.get("event") == "auth_failed" for e in events)


def test_errors_keep_their_traceback_but_lose_the_query_and_frame_locals(scrubbed: Output) -> None:
    events = [json.loads(line) for line in scrubbed.stdout.splitlines()]
    bad_line, hung_up = [e for e in events if "exception" in e]
    assert bad_line["event"].startswith("Error handling request") and bad_line["level"] == "error"
    assert bad_line["exception"][0]["exc_type"] == "BadStatusLine"
    assert "GET /mcp?[redacted] junk HTTP/1.1" in bad_line["exception"][0]["exc_value"]
    assert hung_up["credential"] == "default" and len(hung_up["request_id"]) == 16
    frames = hung_up["exception"][0]["frames"]
    assert any(frame["filename"].endswith("transport.py") for frame in frames), "the /mcp handler raised"
    assert all(set(frame) == {"filename", "lineno", "name"} for frame in frames)


def test_negative_control_without_the_scrub_processor_the_leaks_are_seen(tmp_path: Path) -> None:
    unscrubbed = run_server_and_send_leaks(tmp_path, scrub=False)
    problems = leaks(unscrubbed)
    assert "'SECRET' in stdout" in problems
    assert "'token=' in stdout" in problems
    assert "'QMARK6' in stdout" in problems  # the raw request line in aiohttp's traceback
