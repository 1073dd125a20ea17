"""`ownsona serve` and `ownsona token` as a user meets them: real subprocesses, real files, real signals."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from processes import clean_env, free_port, wait_for_port

WEAK = "short-token"


def ownsona(*args: str, env: dict[str, str], timeout: float = 60, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ownsona", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, input=stdin)


def test_help_answers_for_every_command(tmp_path: Path) -> None:
    env = clean_env(OWNSONA_HOME=str(tmp_path))
    top = ownsona("--help", env=env)
    assert top.returncode == 0
    for command in ("serve", "token", "check-logs", "backup", "restore", "doctor", "export", "import", "reembed"):
        assert command in top.stdout
        sub = ownsona(command, "--help", env=env)
        assert sub.returncode == 0, (command, sub.stderr)
        assert "usage: ownsona" in sub.stdout


def test_generated_token_is_stored_0600_and_never_logged(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    env = clean_env(OWNSONA_HOME=str(home), OWNSONA_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "ownsona", "serve"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_port(port, timeout=60, process=process)
        token = ownsona("token", "show", env=env).stdout.strip()
        assert len(token) >= 43
        assert stat.S_IMODE(os.stat(home / "tokens.json").st_mode) == 0o600
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/mcp", method="POST", data=json.dumps({"jsonrpc": "2.0", "id": 1, "method": "ping"}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["result"] == {}
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    events = [json.loads(line) for line in out.splitlines()]
    generated = next(e for e in events if e["event"] == "token_generated")
    assert generated["file"] == str(home / "tokens.json") and "ownsona token show" in generated["print_it_with"]
    assert token not in out and token not in err


def test_sigterm_drains_and_exits_cleanly(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(OWNSONA_HOME=str(tmp_path), OWNSONA_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "ownsona", "serve"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_port(port, timeout=60, process=process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["event"] == "ownsona_stopped"
    # The store was closed cleanly: its WAL was checkpointed away and it passes its check.
    with sqlite3.connect(tmp_path / "ownsona.db") as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.parametrize(
    ("env_extra", "names"),
    [
        ({"OWNSONA_PORT": "99999"}, "OWNSONA_PORT"),
        ({"OWNSONA_PORT": "not-a-port"}, "OWNSONA_PORT"),
        ({"OWNSONA_LOG_LEVEL": "chatty"}, "OWNSONA_LOG_LEVEL"),
        ({"OWNSONA_NO_SUCH_SETTING": "1"}, "OWNSONA_NO_SUCH_SETTING"),
        ({"OWNSONA_API_TOKEN": WEAK}, "OWNSONA_API_TOKEN"),
        ({"OWNSONA_API_TOKEN": "changeme-changeme-changeme-changeme!"}, "OWNSONA_API_TOKEN"),
    ],
)
def test_bad_configuration_is_refused_naming_the_key_not_the_value(tmp_path: Path, env_extra: dict[str, str],
                                                                   names: str) -> None:
    result = ownsona("serve", env=clean_env(OWNSONA_HOME=str(tmp_path), **env_extra), timeout=60)
    assert result.returncode == 2
    assert names in result.stderr
    for value in env_extra.values():
        if len(value) > 2:
            assert value not in result.stderr
    assert "Traceback" not in result.stderr


def test_env_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    env_file = tmp_path / "ownsona.env"
    env_file.write_text("# comment\nOWNSONA_PORT=not-a-port\nOWNSONA_LOG_LEVEL='debug'\n")
    result = ownsona("serve", "--env-file", str(env_file), env=clean_env(OWNSONA_HOME=str(tmp_path)))
    assert result.returncode == 2 and "OWNSONA_PORT" in result.stderr
    port = free_port()
    # The environment overrides the file's bad port, so the server starts.
    env = clean_env(OWNSONA_HOME=str(tmp_path), OWNSONA_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "ownsona", "serve", "--env-file", str(env_file)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_port(port, timeout=60, process=process)
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=30)
    assert any(json.loads(line).get("level") == "debug" for line in out.splitlines())


def test_database_newer_than_the_code_is_refused(tmp_path: Path) -> None:
    port = free_port()
    env = clean_env(OWNSONA_HOME=str(tmp_path), OWNSONA_PORT=str(port))
    process = subprocess.Popen([sys.executable, "-m", "ownsona", "serve"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, timeout=60, process=process)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=30)
    with sqlite3.connect(tmp_path / "ownsona.db") as conn:
        conn.execute("UPDATE schema_versions SET version = version + 100 WHERE component = 'memory'")
    result = ownsona("serve", env=env)
    assert result.returncode == 2
    assert "holds schema 'memory' version" in result.stderr and "upgrade OwnSona" in result.stderr
    assert "Traceback" not in result.stderr


def test_token_commands_round_trip(tmp_path: Path) -> None:
    env = clean_env(OWNSONA_HOME=str(tmp_path))
    created = ownsona("token", "new", "laptop", env=env)
    assert created.returncode == 0
    value = created.stdout.strip()
    assert len(value) >= 43 and value not in created.stderr
    assert ownsona("token", "show", "laptop", env=env).stdout.strip() == value
    listing = ownsona("token", "list", env=env)
    assert "laptop" in listing.stdout and value not in listing.stdout
    assert ownsona("token", "new", "laptop", env=env).returncode == 2
    assert ownsona("token", "revoke", "laptop", env=env).returncode == 0
    missing = ownsona("token", "show", "laptop", env=env)
    assert missing.returncode == 1 and "no token" in missing.stderr
