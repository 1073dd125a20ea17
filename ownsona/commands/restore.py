"""`ownsona restore BACKUP`: replace the database with a backup, keeping the current one aside."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Restore the database from a backup file (or 'latest'); the server must be stopped."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("backup", help="a backup file written by `ownsona backup`, or 'latest'")
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    parser.add_argument("--dir", type=Path, help="where 'latest' is looked for (default: OWNSONA_BACKUP_DIR)")


def run(args: argparse.Namespace) -> int:
    from ownsona.backup import BackupError, resolve_backup, restore_backup
    from ownsona.config import ConfigError, settings_from_environ

    try:
        settings = settings_from_environ(env_file=args.env_file, overrides={"backup_dir": args.dir})
        source = resolve_backup(args.backup, settings.backup_directory)
        result = restore_backup(source, settings.database_path)
    except (ConfigError, BackupError, OSError) as exc:
        print(f"ownsona restore: {exc}", file=sys.stderr)
        return 1
    print(f"restored {source} into {result.database}")
    if result.safety_copy is not None:
        print(f"the previous database was kept as {result.safety_copy} (delete it once all is well)")
    print("start the server again: systemctl start ownsona")
    return 0
