"""`ownsona oauth clients | revoke CLIENT_ID | rotate-key`: see and cut off OAuth clients."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import sqlite3

    from ownsona.auth.oauth.clients import Client
    from ownsona.db import Database

HELP = "List OAuth clients, revoke one (its tokens stop working at once), or rotate the signing key."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("clients", help="list registered and metadata-document clients")
    revoke = actions.add_parser("revoke", help="revoke a client and every grant it holds")
    revoke.add_argument("client_id")
    actions.add_parser("rotate-key", help="make a new signing key (used after the next restart; the old one "
                                          "stays published until its tokens expire)")


def _when(epoch: int | None) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M") if epoch else "-"


def run(args: argparse.Namespace) -> int:
    import asyncio

    from ownsona.config import settings_from_environ
    from ownsona.schemas import store_database

    settings = settings_from_environ(env_file=args.env_file)

    async def act() -> int:
        db = store_database(settings.database_path)
        await db.open()
        try:
            if args.action == "clients":
                return await _list(db)
            if args.action == "revoke":
                return await _revoke(db, args.client_id)
            from ownsona.auth.oauth.keys import rotate_key

            kid = await rotate_key(db, settings.home)
            print(f"New signing key {kid}; restart the server to sign with it.", file=sys.stderr)
            return 0
        finally:
            await db.close()

    return asyncio.run(act())


async def _list(db: Database) -> int:
    from ownsona.auth.oauth.clients import list_clients
    from ownsona.auth.oauth.urls import redirect_host

    def read(conn: sqlite3.Connection) -> tuple[list[Client], dict[str, int]]:
        grants = dict(conn.execute(
            "SELECT client_id, count(*) FROM oauth_grants WHERE revoked_at IS NULL GROUP BY client_id").fetchall())
        return list_clients(conn), grants

    clients, grants = await db.read(read)
    if not clients:
        print("no OAuth clients yet", file=sys.stderr)
    print("CLIENT_ID\tNAME\tSOURCE\tREDIRECT_HOSTS\tCREATED\tLAST_USED\tACTIVE_GRANTS\tSTATUS")
    for c in clients:
        hosts = ",".join(sorted({redirect_host(u) for u in c.redirect_uris}))
        status = f"revoked {_when(c.revoked_at)}" if c.revoked_at else "active"
        print(f"{c.client_id}\t{c.client_name}\t{c.source}\t{hosts}\t{_when(c.created_at)}\t"
              f"{_when(c.last_used_at)}\t{grants.get(c.client_id, 0)}\t{status}")
    return 0


async def _revoke(db: Database, client_id: str) -> int:
    import time

    from ownsona.auth.oauth.clients import revoke_client

    changed = await db.write(lambda conn: revoke_client(conn, client_id, int(time.time())))
    if not changed:
        print(f"ownsona: no active client {client_id!r} (see `ownsona oauth clients`)", file=sys.stderr)
        return 1
    print(f"Revoked {client_id}: its tokens stop working now.", file=sys.stderr)
    return 0
