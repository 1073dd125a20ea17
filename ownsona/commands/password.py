"""`ownsona password [--stdin]`: set the owner password for the OAuth sign-in page.

The password is read from the terminal (twice) or, for scripts, one line from standard input;
never from the command line, where `ps` and shell history would see it. Setting it signs out
every browser session; issued grants stay (cut them off with `ownsona oauth revoke`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Set the owner password that signs in OAuth clients (ChatGPT, Claude)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--stdin", action="store_true", help="read the password as one line from standard input")
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        print("ownsona: no terminal to prompt on; pipe the password with --stdin", file=sys.stderr)
        return None
    import getpass

    first = getpass.getpass("New owner password: ")
    if getpass.getpass("Repeat it: ") != first:
        print("ownsona: the two passwords differ; nothing was changed", file=sys.stderr)
        return None
    return first


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ownsona.auth.oauth.password import PasswordRejected, check_strength, set_owner_password
    from ownsona.config import settings_from_environ
    from ownsona.schemas import store_database

    settings = settings_from_environ(env_file=args.env_file)
    password = _read_password(args.stdin)
    if password is None:
        return 1
    try:
        check_strength(password)
    except PasswordRejected as exc:
        print(f"ownsona: {exc}", file=sys.stderr)
        return 1

    async def store() -> None:
        db = store_database(settings.database_path)
        await db.open()
        try:
            await set_owner_password(db, password)
        finally:
            await db.close()

    asyncio.run(store())
    print("Owner password set; browser sign-in sessions were ended.", file=sys.stderr)
    return 0
