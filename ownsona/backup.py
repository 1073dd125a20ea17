"""Online backups of the SQLite database, their retention, and restoring one.

Why SQLite's backup API and not a file copy: the server keeps writing while the daily backup runs,
and in WAL mode the newest transactions live in `ownsona.db-wal`. Copying `ownsona.db` alone can
miss them or catch a half-checkpointed page; the backup API copies one consistent snapshot, WAL
included, while the server goes on (WAL readers never block the writer).

Every copy is a single self-contained file (journal mode DELETE, no -wal beside it), created with
mode 0600 (it holds every memory), checked with `PRAGMA integrity_check` before it gets its final
name, and named `ownsona-YYYYMMDDTHHMMSSZ.db` so retention works from the name alone.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

BACKUP_PREFIX = "ownsona-"
BACKUP_SUFFIX = ".db"
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_NAME_RE = re.compile(r"^ownsona-(?P<stamp>\d{8}T\d{6}Z)(?:-(?P<seq>\d+))?\.db$")
_BUSY_TIMEOUT_SECONDS = 10.0
# Files SQLite keeps beside a database; they belong to it and move with it.
_SIDECAR_SUFFIXES = ("-wal", "-shm", "-journal")


class BackupError(Exception):
    """A backup or restore could not be done; the message says why and is safe to print."""


@dataclass(frozen=True)
class BackupFile:
    """One backup copy found in the backup directory."""

    path: Path
    taken_at: datetime


@dataclass(frozen=True)
class BackupResult:
    backup: BackupFile
    size_bytes: int
    pruned: tuple[Path, ...]


@dataclass(frozen=True)
class RestoreResult:
    database: Path
    safety_copy: Path | None


# --- helpers ------------------------------------------------------------------------------------


def _uri(path: Path, mode: str) -> str:
    # A URI lets us say mode=ro / mode=rw (never create by accident); quote() keeps a `?` or `#`
    # in a directory name from being read as URI syntax.
    return f"file:{quote(str(path.resolve()))}?mode={mode}"


def _create_private(path: Path) -> None:
    """Create an empty file with mode 0600, failing if it exists: SQLite then writes into it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _copy_database(source_uri: str, target: Path) -> None:
    """Copy one consistent snapshot of `source_uri` into the (new, empty) file `target`."""
    source = sqlite3.connect(source_uri, uri=True, timeout=_BUSY_TIMEOUT_SECONDS)
    try:
        destination = sqlite3.connect(target)
        try:
            source.backup(destination)  # all pages in one step: one snapshot, no restarts
            # The copy of a WAL database is flagged WAL; make it one self-contained file.
            destination.execute("PRAGMA journal_mode = DELETE")
        finally:
            destination.close()
    finally:
        source.close()


def _match_owner(path: Path, like: Path) -> None:
    """When root works for the service user, give `path` to the owner of `like` (the state dir).

    Otherwise a backup directory or a restored database made by `sudo ownsona ...` would belong to
    root, and the service (or the next timer run) could not open it.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        owner = like.stat()
        if (owner.st_uid, owner.st_gid) != (0, 0):
            os.chown(path, owner.st_uid, owner.st_gid)


def integrity_problems(path: Path) -> list[str]:
    """Run `PRAGMA integrity_check` on `path`; an empty list means the file is sound."""
    try:
        conn = sqlite3.connect(_uri(path, "ro"), uri=True, timeout=_BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        return [f"cannot open: {exc}"]
    try:
        rows = [str(row[0]) for row in conn.execute("PRAGMA integrity_check").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    finally:
        conn.close()
    return [] if rows == ["ok"] else rows


def database_in_use(path: Path) -> bool:
    """True when another connection (a running server) has `path` open.

    In WAL mode every open connection holds a shared lock for as long as it is open, so asking
    for an exclusive lock without waiting fails exactly while a server holds the file.
    """
    if not path.exists():
        return False
    try:
        conn = sqlite3.connect(_uri(path, "rw"), uri=True, timeout=0, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute("PRAGMA locking_mode = EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("ROLLBACK")
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    except sqlite3.DatabaseError:
        return False  # not a database at all: nothing can be holding it, and restore sets it aside
    finally:
        conn.close()
    return False


# --- backup and retention -----------------------------------------------------------------------


def list_backups(directory: Path) -> list[BackupFile]:
    """Backups in `directory`, newest first. Files not named by `create_backup` are ignored."""
    if not directory.is_dir():
        return []
    found = []
    for entry in directory.iterdir():
        match = _NAME_RE.match(entry.name)
        if match and entry.is_file():
            taken_at = datetime.strptime(match["stamp"], _STAMP_FORMAT).replace(tzinfo=UTC)
            found.append(BackupFile(entry, taken_at))
    return sorted(found, key=lambda b: (b.taken_at, b.path.name), reverse=True)


def _backup_name(directory: Path, taken_at: datetime) -> Path:
    stamp = taken_at.astimezone(UTC).strftime(_STAMP_FORMAT)
    candidate = directory / f"{BACKUP_PREFIX}{stamp}{BACKUP_SUFFIX}"
    sequence = 2
    while candidate.exists():  # two backups within one second
        candidate = directory / f"{BACKUP_PREFIX}{stamp}-{sequence}{BACKUP_SUFFIX}"
        sequence += 1
    return candidate


def create_backup(database: Path, directory: Path, *, now: datetime | None = None) -> BackupFile:
    """Write a verified, mode-0600 online copy of `database` into `directory`."""
    if not database.is_file():
        raise BackupError(f"no database at {database}: nothing to back up (is OWNSONA_HOME right?)")
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True)
        _match_owner(directory, database.parent)
    taken_at = now or datetime.now(UTC)
    final = _backup_name(directory, taken_at)
    partial = directory / f".{final.name}.partial"
    partial.unlink(missing_ok=True)  # left over from a run that was killed
    try:
        _create_private(partial)
        _copy_database(_uri(database, "rw"), partial)
        problems = integrity_problems(partial)
        if problems:
            raise BackupError(
                f"the copy of {database} failed PRAGMA integrity_check ({'; '.join(problems[:3])}); "
                "the database itself is probably damaged: keep the existing backups"
            )
        os.chmod(partial, 0o600)
        _match_owner(partial, database.parent)
        _fsync(partial)
        os.replace(partial, final)
        _fsync(directory)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot back up {database}: {exc}") from None
    finally:
        partial.unlink(missing_ok=True)
    return BackupFile(final, taken_at)


def backups_to_prune(backups: Iterable[BackupFile], *, keep_daily: int, keep_weekly: int) -> list[BackupFile]:
    """The backups that retention no longer keeps.

    Kept: the newest copy of each of the `keep_daily` most recent days that have a copy, and the
    newest copy of each of the `keep_weekly` most recent ISO weeks that have one. Counting days
    that *have* a copy (not calendar days) means a host that was off for a month still keeps its
    last good copies.
    """
    if keep_daily < 1:
        raise ValueError("keep_daily must be at least 1: the newest backup is always kept")
    ordered = sorted(backups, key=lambda b: (b.taken_at, b.path.name), reverse=True)
    days: set[date] = set()
    weeks: set[tuple[int, int]] = set()
    kept: set[Path] = set()
    for backup in ordered:
        day = backup.taken_at.date()
        week = tuple(backup.taken_at.isocalendar())[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            kept.add(backup.path)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)  # type: ignore[arg-type]
            kept.add(backup.path)
    return [b for b in ordered if b.path not in kept]


def prune_backups(directory: Path, *, keep_daily: int, keep_weekly: int) -> list[Path]:
    """Delete the backups retention no longer keeps; return their paths."""
    doomed = backups_to_prune(list_backups(directory), keep_daily=keep_daily, keep_weekly=keep_weekly)
    for backup in doomed:
        backup.path.unlink(missing_ok=True)
    return [b.path for b in doomed]


def run_backup(
    database: Path, directory: Path, *, keep_daily: int, keep_weekly: int, now: datetime | None = None
) -> BackupResult:
    """Back up, then prune: the new copy is in place and verified before anything is deleted."""
    backup = create_backup(database, directory, now=now)
    pruned = prune_backups(directory, keep_daily=keep_daily, keep_weekly=keep_weekly)
    return BackupResult(backup, backup.path.stat().st_size, tuple(pruned))


# --- restore ------------------------------------------------------------------------------------


def _set_aside(database: Path, stamp: str) -> Path:
    """Rename the current database (and its WAL) to `<name>.before-restore-<stamp>`.

    Renaming the pair together keeps the set-aside copy openable with its latest transactions.
    The -shm index is rebuilt by SQLite on open, so it is simply removed.
    """
    safety = database.with_name(f"{database.name}.before-restore-{stamp}")
    os.replace(database, safety)
    for suffix in _SIDECAR_SUFFIXES:
        sidecar = database.with_name(database.name + suffix)
        if not sidecar.exists():
            continue
        if suffix == "-shm":
            sidecar.unlink()
        else:
            os.replace(sidecar, safety.with_name(safety.name + suffix))
    return safety




def restore_backup(source: Path, database: Path, *, now: datetime | None = None) -> RestoreResult:
    """Replace `database` with the backup `source`, keeping the current file as a safety copy."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    problems = integrity_problems(source)
    if problems:
        raise BackupError(f"{source} failed PRAGMA integrity_check ({'; '.join(problems[:3])}); not restoring it")
    if database_in_use(database):
        raise BackupError(
            f"{database} is open by a running OwnSona server; stop it first (systemctl stop ownsona), "
            "then run the restore again"
        )
    state_dir = database.parent
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    staging = state_dir / f".{database.name}.restoring"
    staging.unlink(missing_ok=True)
    try:
        _create_private(staging)
        _copy_database(_uri(source, "ro"), staging)
        problems = integrity_problems(staging)
        if problems:
            raise BackupError(f"the restored copy failed PRAGMA integrity_check ({'; '.join(problems[:3])})")
        _match_owner(staging, state_dir)
        _fsync(staging)
        stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime(_STAMP_FORMAT)
        safety = _set_aside(database, stamp) if database.exists() else None
        os.replace(staging, database)
        _fsync(state_dir)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot restore {source}: {exc}") from None
    finally:
        staging.unlink(missing_ok=True)
    return RestoreResult(database, safety)


def resolve_backup(argument: str, directory: Path) -> Path:
    """`latest` means the newest backup in `directory`; anything else is a path."""
    if argument == "latest":
        backups = list_backups(directory)
        if not backups:
            raise BackupError(f"no backups in {directory}")
        return backups[0].path
    return Path(argument)
