"""`ownsona password`, `ownsona oauth clients|revoke|rotate-key`, and the refusal to start without a password."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import TEST_TOKEN
from oauthkit import PASSWORD, StartOAuth
from ownsona.auth.oauth.keys import key_directory
from ownsona.auth.oauth.password import owner_password_hash, verify_owner_password
from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.auth.oauth.setup import check_oauth_ready
from ownsona.config import ConfigError
from ownsona.db import Database

pytest_plugins = ["oauth_fixtures"]  # start_oauth, captured_logs

REPO = Path(__file__).resolve().parents[1]


def ownsona(home: Path, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("OWNSONA_")}
    environ.update({"OWNSONA_HOME": str(home), "HOME": str(home), "OWNSONA_API_TOKEN": TEST_TOKEN, **env})
    return subprocess.run([sys.executable, "-m", "ownsona", *args], input=stdin, capture_output=True, text=True,
                          env=environ, timeout=120, stdin=None if stdin is not None else subprocess.DEVNULL,
                          cwd=REPO)


async def test_password_from_stdin_is_stored_as_an_argon2id_hash(home: Path) -> None:
    result = ownsona(home, "password", "--stdin", stdin=PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    db = Database(home / "ownsona.db", [OAUTH_SCHEMA])
    await db.open()
    try:
        stored = await owner_password_hash(db)
        assert stored is not None and stored.startswith("$argon2id$") and PASSWORD not in stored
        assert await verify_owner_password(db, PASSWORD)
        assert not await verify_owner_password(db, PASSWORD + "x")
    finally:
        await db.close()
    assert stat.S_IMODE(os.stat(home / "ownsona.db").st_mode) == 0o600


@pytest.mark.parametrize("weak", ["short", "aaaaaaaaaaaaaaaa", "<pick-a-strong-password>"])
def test_weak_passwords_are_refused(home: Path, weak: str) -> None:
    result = ownsona(home, "password", "--stdin", stdin=weak + "\n")
    assert result.returncode == 1
    assert weak not in result.stderr and "password" in result.stderr


def test_without_a_terminal_the_password_must_come_with_stdin(home: Path) -> None:
    result = ownsona(home, "password")
    assert result.returncode == 1 and "--stdin" in result.stderr


async def test_check_oauth_ready_names_the_fix(home: Path, start_oauth: StartOAuth) -> None:
    with pytest.raises(ConfigError, match="ownsona password"):
        await start_oauth(password=None)


def test_serve_refuses_to_start_with_oauth_on_and_no_password(home: Path, unused_tcp_port: int) -> None:
    result = ownsona(home, "serve", "--port", str(unused_tcp_port), OWNSONA_OAUTH="on",
                     OWNSONA_PUBLIC_URL="https://memory.example.com")
    assert result.returncode == 2, result.stderr
    assert "ownsona password" in result.stderr


async def test_clients_lists_and_revoke_cuts_off_a_running_client(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    client = await h.register(client_name="Claude")
    tokens = await h.tokens_for(client)
    assert (await h.mcp(tokens["access_token"])).status == 200

    listing = ownsona(h.settings.home, "oauth", "clients")
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if line.startswith(client["client_id"]))
    assert "\tClaude\tdcr\t127.0.0.1:9\t" in row and row.endswith("\t1\tactive")
    assert tokens["refresh_token"] not in listing.stdout

    revoked = ownsona(h.settings.home, "oauth", "revoke", client["client_id"])
    assert revoked.returncode == 0, revoked.stderr
    assert (await h.mcp(tokens["access_token"])).status == 401  # at once, without a restart
    status, body = await h.refresh(client, tokens["refresh_token"])
    assert (status, body["error"]) == (401, "invalid_client")
    assert "revoked" in ownsona(h.settings.home, "oauth", "clients").stdout
    assert ownsona(h.settings.home, "oauth", "revoke", client["client_id"]).returncode == 1
    assert ownsona(h.settings.home, "oauth", "revoke", "no-such-client").returncode == 1


async def test_rotate_key_makes_a_new_private_key_file(start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    before = {p.name for p in key_directory(h.settings.home).glob("*.jwk")}
    result = ownsona(h.settings.home, "oauth", "rotate-key")
    assert result.returncode == 0, result.stderr
    files = list(key_directory(h.settings.home).glob("*.jwk"))
    assert len(files) == len(before) + 1
    new = next(p for p in files if p.name not in before)
    assert new.stem in result.stderr
    assert stat.S_IMODE(os.stat(new).st_mode) == 0o600


async def test_check_oauth_ready_passes_when_off_or_when_set(home: Path, start_oauth: StartOAuth) -> None:
    h = await start_oauth()
    await check_oauth_ready(h.settings, h.db)
    off = h.settings.model_copy(update={"oauth": False})
    empty: Any = Database(home / "empty.db", [OAUTH_SCHEMA])
    await empty.open()
    try:
        await check_oauth_ready(off, empty)
        with pytest.raises(ConfigError):
            await check_oauth_ready(h.settings, empty)
    finally:
        await empty.close()
