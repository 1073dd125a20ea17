"""`ownsona check-logs`: finds planted leaks, passes clean logs, and never prints the secret it found.

The command tests run the real CLI in a subprocess with its own `OWNSONA_HOME`.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from ownsona import logs
from ownsona.logcheck import QUERY_IN_REQUEST_LINE, TOKEN_PARAMETER, Finding, scan_lines, secret_kind

REPO = Path(__file__).resolve().parents[1]
LAPTOP = "token 'laptop'"
DEFAULT_TOKEN_KIND = secret_kind("token 'default'")
API_TOKEN = "Zq8vT3mK9pL2xR7wN4bY6cH1dF5gJ0sA-uE_tokenvalue"

CLEAN_NGINX = [
    '203.0.113.7 - - [04/Dec/2026:20:00:00 +0000] "POST /mcp HTTP/2.0" 200 512 "-" "openai-mcp/1.0"',
    '203.0.113.7 - - [04/Dec/2026:20:00:01 +0000] "GET /healthz HTTP/1.1" 200 40 "-" "curl/8.5.0"',
    '2026/12/04 20:00:02 [error] 12#12: *5 upstream timed out, request: "POST /mcp HTTP/1.1", host: "mem.example"',
    '{"event": "127.0.0.1 \\"GET /mcp?[redacted] HTTP/1.1\\" 200", "logger": "aiohttp.access"}',
    '{"event": "request", "method": "POST", "path": "/mcp", "credential": "laptop", "max_tokens": 5}',
]


def clean_env(home: Path) -> dict[str, str]:
    """The test's environment without OWNSONA_* settings, running this tree's `ownsona`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OWNSONA_")}
    env["OWNSONA_HOME"] = str(home)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def ownsona(*args: str, home: Path, api_token: str | None = API_TOKEN, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = clean_env(home)
    if api_token is not None:
        env["OWNSONA_API_TOKEN"] = api_token
    env.update(kwargs.pop("extra_env", {}))  # type: ignore[arg-type]
    return subprocess.run(
        [sys.executable, "-m", "ownsona", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- scan_lines: the rules ----------------------------------------------------------------------


def test_scan_lines_reports_each_kind_with_its_line_number() -> None:
    lines = [
        "nothing here",
        '1.2.3.4 - - [x] "GET /mcp?Token=abc HTTP/1.1" 200',
        "redirect to /cb%3Fstate%3D1%26token%3Dabc",
        f"path /files/{API_TOKEN}/x",
        "POST /x?y HTTP/2.0",
        "GET https://mem.example/mcp?a=1 HTTP/1.1",
    ]
    assert scan_lines(lines, {LAPTOP: API_TOKEN}) == [
        Finding(2, TOKEN_PARAMETER),
        Finding(2, QUERY_IN_REQUEST_LINE),
        Finding(3, TOKEN_PARAMETER),
        Finding(4, secret_kind(LAPTOP)),
        Finding(5, QUERY_IN_REQUEST_LINE),
        Finding(6, QUERY_IN_REQUEST_LINE),
    ]


def test_scan_lines_finds_a_percent_encoded_token_value() -> None:
    value = "abc+def/ghi=jkl-0123456789abcdef"
    assert scan_lines(["x=abc%2Bdef%2Fghi%3Djkl-0123456789abcdef"], {"old token": value}) == [
        Finding(1, secret_kind("old token"))
    ]


def test_scan_lines_accepts_clean_nginx_lines_and_our_redaction_marker() -> None:
    assert scan_lines(CLEAN_NGINX, {"default": API_TOKEN}) == []


@pytest.fixture
def own_logging() -> Iterator[None]:
    yield
    logs.reset_logging()


def test_what_the_log_pipeline_writes_passes_the_check(own_logging: None) -> None:
    """The scrubber and the checker agree: our own output is clean, unscrubbed output is not."""
    for scrub, expect_clean in ((True, True), (False, False)):
        stream = io.StringIO()
        logs.configure_logging(stream=stream)
        if not scrub:
            logging.getLogger().handlers[0].setFormatter(logs.build_formatter(scrub=False))
        logs.get_logger("t").info("in", url="/mcp?token=abc", line="POST /mcp?x=1 HTTP/1.1", h={"Cookie": "token=abc"})
        logging.getLogger("aiohttp.access").info('127.0.0.1 "%s" 200', "GET /mcp?token=abc&x=1 HTTP/1.1")
        found = scan_lines(stream.getvalue().splitlines(), {})
        assert (found == []) is expect_clean, found


# --- the command --------------------------------------------------------------------------------


def test_planted_leaks_are_found_and_the_secret_is_not_printed(tmp_path: Path) -> None:
    access = write(tmp_path / "access.log", [*CLEAN_NGINX, f'1.2.3.4 - - [x] "POST /mcp?token={API_TOKEN} HTTP/1.1" 200'])
    with gzip.open(tmp_path / "access.log.2.gz", "wt", encoding="utf-8") as rotated:
        rotated.write(f"{CLEAN_NGINX[0]}\nreferer https://mem.example/files/{API_TOKEN}\n")

    result = ownsona("check-logs", str(access), str(tmp_path / "access.log.2.gz"), home=tmp_path)

    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [
        f"{access}:6: {TOKEN_PARAMETER}",
        f"{access}:6: {QUERY_IN_REQUEST_LINE}",
        f"{access}:6: {DEFAULT_TOKEN_KIND}",
        f"{tmp_path / 'access.log.2.gz'}:2: {DEFAULT_TOKEN_KIND}",
    ]
    assert API_TOKEN not in result.stdout + result.stderr
    assert "4 finding(s)" in result.stderr


def test_clean_logs_pass(tmp_path: Path) -> None:
    access = write(tmp_path / "access.log", CLEAN_NGINX)
    result = ownsona("check-logs", str(access), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    assert "clean" in result.stderr and "1 secret value(s)" in result.stderr


def test_values_of_stored_tokens_are_looked_for_by_name(tmp_path: Path) -> None:
    created = ownsona("token", "new", "laptop", home=tmp_path, api_token=None)
    assert created.returncode == 0, created.stderr
    value = created.stdout.strip()
    journal = write(tmp_path / "export.txt", ["started", f"debug header was Bearer {value}"])

    result = ownsona("check-logs", str(journal), home=tmp_path, api_token=None)

    assert result.returncode == 1
    assert result.stdout == f"{journal}:2: {secret_kind(LAPTOP)}\n"
    assert value not in result.stdout + result.stderr


def test_other_secret_settings_are_looked_for_too(tmp_path: Path) -> None:
    key = "sk-test-embedding-key-0123456789abcdef"
    log = write(tmp_path / "app.log", ["ok", f"calling the embedder with {key}"])
    result = ownsona("check-logs", str(log), home=tmp_path, extra_env={"OWNSONA_EMBEDDING_API_KEY": key})
    assert result.returncode == 1
    assert result.stdout == f"{log}:2: {secret_kind('OWNSONA_EMBEDDING_API_KEY')}\n"
    assert key not in result.stdout + result.stderr


def test_secret_file_adds_values_to_look_for(tmp_path: Path) -> None:
    old = "an-old-revoked-token-value-0123456789"
    secrets = write(tmp_path / "old-tokens.txt", ["# revoked in May", old])
    log = write(tmp_path / "app.log", [f"Authorization: Bearer {old}"])
    result = ownsona("check-logs", str(log), "--secret-file", str(secrets), home=tmp_path)
    assert result.returncode == 1
    assert result.stdout == f"{log}:1: {secret_kind('secret old-tokens.txt:1')}\n"
    assert old not in result.stdout + result.stderr


def test_unreadable_input_exits_2_unless_a_leak_was_found(tmp_path: Path) -> None:
    missing = tmp_path / "missing.log"
    result = ownsona("check-logs", str(missing), home=tmp_path)
    assert result.returncode == 2
    assert f"cannot read {missing}" in result.stderr

    leaky = write(tmp_path / "leaky.log", ["GET /mcp?token=x HTTP/1.1"])
    assert ownsona("check-logs", str(missing), str(leaky), home=tmp_path).returncode == 1


def test_no_input_is_a_usage_error(tmp_path: Path) -> None:
    result = ownsona("check-logs", home=tmp_path)
    assert result.returncode == 2
    assert "FILE or --journal" in result.stderr


def test_standard_input_can_be_scanned(tmp_path: Path) -> None:
    env = clean_env(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "ownsona", "check-logs", "-"],
        input="ok\nPOST /mcp?x=1 HTTP/1.1\n", capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 1
    assert result.stdout == f"-:2: {QUERY_IN_REQUEST_LINE}\n"


@pytest.fixture
def fake_journalctl(tmp_path: Path) -> Path:
    """A `journalctl` on PATH that prints the fixture journal for unit `ownsona` and fails otherwise."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    journal = write(tmp_path / "journal.txt", [*CLEAN_NGINX, '{"event": "fetch /mcp?token=abc"}'])
    script = bin_dir / "journalctl"
    script.write_text(
        "#!/bin/sh\n"
        'case "$*" in\n'
        f'  "--no-pager -u ownsona -o cat") cat {journal} ;;\n'
        '  *) echo "Failed to add match: $*" >&2; exit 1 ;;\n'
        "esac\n"
    )
    script.chmod(0o755)
    return bin_dir


def test_journal_of_a_unit_is_scanned(tmp_path: Path, fake_journalctl: Path) -> None:
    path = {"extra_env": {"PATH": f"{fake_journalctl}:{os.environ['PATH']}"}}
    result = ownsona("check-logs", "--journal", "ownsona", home=tmp_path, **path)
    assert result.returncode == 1, result.stderr
    assert result.stdout == f"journal:ownsona:6: {TOKEN_PARAMETER}\n"

    failed = ownsona("check-logs", "--journal", "other", home=tmp_path, **path)
    assert failed.returncode == 2
    assert "journalctl failed for unit 'other'" in failed.stderr
