"""`ownsona export`: write one user's memories as JSON Lines, tombstones included."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

HELP = "Export a user's memories as JSON Lines (stdout or --output), for backups and moves."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    parser.add_argument("--user", help="whose memories (default: OWNSONA_USER_ID)")
    parser.add_argument("--output", "-o", type=Path, help="write to this file (mode 0600) instead of stdout")
    parser.add_argument("--active-only", action="store_true", help="leave out forgotten and expired memories")


def run(args: argparse.Namespace) -> int:
    from ownsona.config import settings_from_environ

    settings = settings_from_environ(env_file=args.env_file)
    user = args.user or settings.user_id
    try:
        count = asyncio.run(_export(settings.database_path, user, args.output, not args.active_only))
    except OSError as exc:
        print(f"ownsona export: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"exported {count} memories of user {user!r}", file=sys.stderr)
    return 0


async def _export(database_path: Path, user: str, output: Path | None, include_deleted: bool) -> int:
    import os

    from ownsona.schemas import store_database
    from ownsona.memory.transfer import iter_export

    if not database_path.exists():
        raise FileNotFoundError(f"no database at {database_path}")
    db = store_database(database_path)
    await db.open()
    stream = sys.stdout
    if output is not None:
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        stream = os.fdopen(fd, "w", encoding="utf-8")
    count = 0
    try:
        async for line in iter_export(db, user, include_deleted=include_deleted):
            stream.write(line + "\n")
            count += 1
            if count % 1000 == 0:
                print(f"\rexported {count}", end="", file=sys.stderr, flush=True)
    finally:
        if output is not None:
            stream.close()
        else:
            stream.flush()
        await db.close()
    if count >= 1000:
        print(file=sys.stderr)
    return count
