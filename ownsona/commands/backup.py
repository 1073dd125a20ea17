"""`ownsona backup`: take a verified online copy of the database and prune old copies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Copy the database online (SQLite backup API) into the backup directory, verify it, prune old copies."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    parser.add_argument("--dir", type=Path, help="backup directory (default: OWNSONA_BACKUP_DIR or <home>/backups)")
    parser.add_argument("--keep-daily", type=int,
                        help="days to keep one copy of (default: OWNSONA_BACKUP_KEEP_DAILY, 14)")
    parser.add_argument("--keep-weekly", type=int,
                        help="weeks to keep one copy of (default: OWNSONA_BACKUP_KEEP_WEEKLY, 8)")
    parser.add_argument("--list", action="store_true", help="only list the existing backups, newest first")


def run(args: argparse.Namespace) -> int:
    from ownsona.backup import BackupError, list_backups, run_backup
    from ownsona.config import ConfigError, settings_from_environ

    try:
        settings = settings_from_environ(
            env_file=args.env_file,
            overrides={
                "backup_dir": args.dir,
                "backup_keep_daily": args.keep_daily,
                "backup_keep_weekly": args.keep_weekly,
            },
        )
        directory = settings.backup_directory
        if args.list:
            backups = list_backups(directory)
            if not backups:
                print(f"no backups in {directory}", file=sys.stderr)
            for backup in backups:
                print(f"{backup.path}\t{backup.taken_at:%Y-%m-%d %H:%M:%S}Z\t{backup.path.stat().st_size} bytes")
            return 0
        result = run_backup(
            settings.database_path,
            directory,
            keep_daily=settings.backup_keep_daily,
            keep_weekly=settings.backup_keep_weekly,
        )
    except (ConfigError, BackupError, OSError) as exc:
        print(f"ownsona backup: {exc}", file=sys.stderr)
        return 1
    print(f"backup written: {result.backup.path} ({result.size_bytes} bytes, integrity ok, mode 0600)")
    for path in result.pruned:
        print(f"pruned: {path}")
    return 0
