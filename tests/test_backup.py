"""`ownsona backup` / `ownsona restore`: online copies of a real SQLite file, retention, restore."""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from deploy_support import App, ownsona_server  # noqa: F401 - a fixture

from ownsona.backup import (
    BackupError,
    BackupFile,
    backups_to_prune,
    create_backup,
    database_in_use,
    integrity_problems,
    list_backups,
    prune_backups,
    restore_backup,
    run_backup,
)
from ownsona.commands import backup as backup_command
from ownsona.commands import restore as restore_command

NOW = datetime(2026, 12, 4, 3, 15, tzinfo=UTC)
LiveDb = tuple[Path, sqlite3.Connection]


def _rows(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [row[0] for row in conn.execute("SELECT text FROM memories ORDER BY id")]
    finally:
        conn.close()


@pytest.fixture
def live_db(tmp_path: Path) -> Iterator[LiveDb]:
    """A WAL database held open by a 'server' connection whose last writes are still in the WAL."""
    home = tmp_path / "state"
    home.mkdir()
    path = home / "ownsona.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA wal_autocheckpoint = 0")  # keep every write in -wal, as a busy server would
    conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    conn.executemany("INSERT INTO memories (text) VALUES (?)", [("likes tea",), ("lives in Lyon",)])
    yield path, conn
    conn.close()


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_online_backup_captures_wal_writes_and_is_private(live_db: LiveDb, tmp_path: Path) -> None:
    path, server = live_db
    assert Path(f"{path}-wal").stat().st_size > 0  # the rows are not in the main file yet

    backup = create_backup(path, tmp_path / "backups", now=NOW)

    assert backup.path.name == "ownsona-20261204T031500Z.db"
    assert _rows(backup.path) == ["likes tea", "lives in Lyon"]
    assert _mode(backup.path) == 0o600
    assert _mode(backup.path.parent) == 0o700
    assert not Path(f"{backup.path}-wal").exists()  # one self-contained file
    assert integrity_problems(backup.path) == []
    assert [p.name for p in (tmp_path / "backups").iterdir()] == [backup.path.name]  # no partial left


def test_round_trip_restores_the_snapshot_and_keeps_the_current_database(live_db: LiveDb, tmp_path: Path) -> None:
    path, server = live_db
    backup = create_backup(path, tmp_path / "backups", now=NOW)
    server.execute("INSERT INTO memories (text) VALUES ('written after the backup')")
    server.close()  # the service is stopped before a restore

    result = restore_backup(backup.path, path, now=NOW + timedelta(hours=1))

    assert _rows(path) == ["likes tea", "lives in Lyon"]
    assert _mode(path) == 0o600
    assert result.safety_copy == path.with_name("ownsona.db.before-restore-20261204T041500Z")
    assert _rows(result.safety_copy) == ["likes tea", "lives in Lyon", "written after the backup"]
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists()


def test_restore_into_an_empty_state_dir(live_db: LiveDb, tmp_path: Path) -> None:
    path, _server = live_db
    backup = create_backup(path, tmp_path / "backups", now=NOW)
    fresh = tmp_path / "new-host" / "var-lib-ownsona" / "ownsona.db"

    result = restore_backup(backup.path, fresh)

    assert result.safety_copy is None
    assert _rows(fresh) == ["likes tea", "lives in Lyon"]
    assert _mode(fresh) == 0o600
    assert sorted(p.name for p in fresh.parent.iterdir()) == ["ownsona.db"]


def test_restore_refuses_while_a_server_holds_the_database(live_db: LiveDb, tmp_path: Path) -> None:
    path, server = live_db
    backup = create_backup(path, tmp_path / "backups", now=NOW)
    assert database_in_use(path)

    with pytest.raises(BackupError, match="stop it first"):
        restore_backup(backup.path, path)

    server.execute("INSERT INTO memories (text) VALUES ('still usable')")
    assert _rows(path)[-1] == "still usable"
    assert not list(path.parent.glob("*.before-restore-*"))


def _corrupt(path: Path) -> None:
    """Build a table with an index, then overwrite a page in the middle of the file with garbage."""
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    conn.execute("CREATE INDEX memories_text ON memories (text)")
    conn.executemany("INSERT INTO memories (text) VALUES (?)", [(f"fact number {i} " * 4,) for i in range(2000)])
    conn.commit()
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    with path.open("r+b") as handle:
        handle.seek(page_size * (pages // 2))
        handle.write(b"\xa5" * page_size)


def test_integrity_check_failure_is_detected_and_nothing_is_kept(tmp_path: Path) -> None:
    damaged = tmp_path / "ownsona.db"
    _corrupt(damaged)
    assert integrity_problems(damaged)

    with pytest.raises(BackupError, match="integrity_check"):
        create_backup(damaged, tmp_path / "backups", now=NOW)
    assert list((tmp_path / "backups").iterdir()) == []


def test_restore_refuses_a_damaged_backup_and_leaves_the_database_alone(live_db: LiveDb, tmp_path: Path) -> None:
    path, server = live_db
    server.close()
    damaged = tmp_path / "ownsona-20261201T000000Z.db"
    _corrupt(damaged)

    with pytest.raises(BackupError, match="integrity_check"):
        restore_backup(damaged, path)
    assert _rows(path) == ["likes tea", "lives in Lyon"]


def test_backup_without_a_database_says_so(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no database at .*nothing to back up"):
        create_backup(tmp_path / "missing.db", tmp_path / "backups")


def _fake(directory: Path, when: datetime) -> BackupFile:
    return BackupFile(directory / f"ownsona-{when:%Y%m%dT%H%M%SZ}.db", when)


def test_retention_keeps_newest_per_day_and_per_week(tmp_path: Path) -> None:
    # 60 days of backups, two a day (03:00 and 15:00), ending on Friday 2026-12-04.
    backups = [
        _fake(tmp_path, datetime(2026, 12, 4, hour, tzinfo=UTC) - timedelta(days=day))
        for day in range(60)
        for hour in (3, 15)
    ]

    doomed = backups_to_prune(backups, keep_daily=14, keep_weekly=8)
    kept = sorted({b.taken_at for b in backups} - {b.taken_at for b in doomed}, reverse=True)

    daily = [datetime(2026, 12, 4, 15, tzinfo=UTC) - timedelta(days=day) for day in range(14)]
    assert kept[:14] == daily  # the newest copy of each of the last 14 days
    older = kept[14:]
    # Then the newest copy of each earlier ISO week, 8 weeks in all: the daily copies (Nov 21 -
    # Dec 4) already hold the newest of 3 weeks (Nov 16-22, Nov 23-29, Nov 30-Dec 6), so 5 more
    # Sundays at 15:00 are kept.
    assert older == [datetime(2026, 11, 15, 15, tzinfo=UTC) - timedelta(weeks=w) for w in range(5)]
    assert all(o.isoweekday() == 7 for o in older)


def test_retention_always_keeps_the_newest_even_with_nothing_else(tmp_path: Path) -> None:
    backups = [_fake(tmp_path, NOW - timedelta(hours=h)) for h in range(5)]
    assert [b.taken_at for b in backups_to_prune(backups, keep_daily=1, keep_weekly=0)] == [
        NOW - timedelta(hours=h) for h in range(1, 5)
    ]
    with pytest.raises(ValueError):
        backups_to_prune(backups, keep_daily=0, keep_weekly=8)


def test_run_backup_prunes_files_on_disk_and_ignores_foreign_files(live_db: LiveDb, tmp_path: Path) -> None:
    path, _server = live_db
    directory = tmp_path / "backups"
    directory.mkdir()
    for days in (1, 2, 3, 10):
        (directory / f"ownsona-{NOW - timedelta(days=days):%Y%m%dT%H%M%SZ}.db").write_bytes(b"old")
    (directory / "notes.txt").write_text("operator's own file")

    result = run_backup(path, directory, keep_daily=3, keep_weekly=0, now=NOW)

    assert [p.name for p in result.pruned] == ["ownsona-20261201T031500Z.db", "ownsona-20261124T031500Z.db"]
    assert [b.taken_at for b in list_backups(directory)] == [NOW - timedelta(days=d) for d in (0, 1, 2)]
    assert (directory / "notes.txt").exists()
    assert prune_backups(directory, keep_daily=3, keep_weekly=0) == []


def test_two_backups_in_one_second_get_distinct_names(live_db: LiveDb, tmp_path: Path) -> None:
    path, _server = live_db
    first = create_backup(path, tmp_path / "b", now=NOW)
    second = create_backup(path, tmp_path / "b", now=NOW)
    assert first.path != second.path
    assert {b.path for b in list_backups(tmp_path / "b")} == {first.path, second.path}


def _run(module, argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_commands_back_up_and_restore_latest(
    live_db: LiveDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    path, server = live_db
    for key in [k for k in os.environ if k.startswith("OWNSONA_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OWNSONA_HOME", str(path.parent))
    monkeypatch.setenv("OWNSONA_BACKUP_DIR", str(tmp_path / "offsite"))

    assert _run(backup_command, []) == 0
    out = capsys.readouterr().out
    assert f"backup written: {tmp_path / 'offsite'}/ownsona-" in out and "integrity ok" in out

    assert _run(restore_command, ["latest"]) == 1  # the 'server' still has it open
    assert "stop it first" in capsys.readouterr().err

    server.execute("DELETE FROM memories")
    server.close()
    assert _run(restore_command, ["latest"]) == 0
    assert "before-restore" in capsys.readouterr().out
    assert _rows(path) == ["likes tea", "lives in Lyon"]

    assert _run(restore_command, [str(tmp_path / "nope.db")]) == 1
    assert "no backup file at" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() != 0, reason="only root can give files away")
def test_root_makes_backups_and_restores_owned_by_the_service_user(tmp_path: Path) -> None:
    service_uid = service_gid = 65534  # nobody: stands in for the `ownsona` user
    state = tmp_path / "state"
    state.mkdir()
    database = state / "ownsona.db"
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE memories (id INTEGER PRIMARY KEY, text TEXT NOT NULL)")
    conn.execute("INSERT INTO memories (text) VALUES ('likes tea')")
    conn.commit()
    conn.close()
    os.chown(state, service_uid, service_gid)
    os.chown(database, service_uid, service_gid)

    backup = create_backup(database, state / "backups", now=NOW)
    restore_backup(backup.path, database)

    for path in (backup.path.parent, backup.path, database):
        assert (path.stat().st_uid, path.stat().st_gid) == (service_uid, service_gid), path


def test_restore_sets_aside_a_file_that_is_not_a_database(live_db: LiveDb, tmp_path: Path) -> None:
    path, _server = live_db
    backup = create_backup(path, tmp_path / "backups", now=NOW)
    broken = tmp_path / "broken" / "ownsona.db"
    broken.parent.mkdir()
    broken.write_bytes(b"this is not an SQLite file" * 100)

    result = restore_backup(backup.path, broken, now=NOW)

    assert _rows(broken) == ["likes tea", "lives in Lyon"]
    assert result.safety_copy is not None and result.safety_copy.read_bytes().startswith(b"this is not")


def _remember(app: App, text: str) -> int:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": {"name": "remember", "arguments": {"text": text, "dedup_policy": "insert"}}}
    request = urllib.request.Request(
        f"http://127.0.0.1:{app.port}/mcp", data=json.dumps(call).encode(), method="POST",
        headers={"Authorization": f"Bearer {app.token}", "Content-Type": "application/json",
                 "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        reply = json.loads(response.read())
    return json.loads(reply["result"]["content"][0]["text"])["memory_id"]


def _ownsona(app: App, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ownsona", *argv], env=app.env, capture_output=True, text=True,
                          timeout=60)


def test_backup_of_the_running_server_and_restore_refused_until_it_stops(ownsona_server: App, tmp_path: Path) -> None:
    memory_id = _remember(ownsona_server, "The backup test fact: the owner's cat is called Miso.")
    directory = tmp_path / "backups"

    backup = _ownsona(ownsona_server, "backup", "--dir", str(directory))

    assert backup.returncode == 0, backup.stderr
    [copy] = list_backups(directory)
    assert integrity_problems(copy.path) == []
    conn = sqlite3.connect(copy.path)
    try:
        row = conn.execute("SELECT text FROM memories WHERE id = ?", (memory_id,)).fetchone()
    finally:
        conn.close()
    assert row == ("The backup test fact: the owner's cat is called Miso.",)

    restore = _ownsona(ownsona_server, "restore", "latest", "--dir", str(directory))
    assert restore.returncode == 1
    assert "is open by a running OwnSona server; stop it first" in restore.stderr
