"""`ownsona import`: load memories from our JSON Lines export or a Java `export_memories` payload."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

HELP = "Import memories from JSON Lines or a Java OwnSona export; safe to run twice."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="the export to read ('-' for stdin)")
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    parser.add_argument("--user", help="whose memories they become (default: OWNSONA_USER_ID)")


def run(args: argparse.Namespace) -> int:
    from ownsona.config import ConfigError, settings_from_environ
    from ownsona.db import DatabaseTooNew
    from ownsona.embeddings import EmbeddingError
    from ownsona.memory.transfer import TransferError

    try:
        settings = settings_from_environ(env_file=args.env_file)
        text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text(encoding="utf-8")
        report = asyncio.run(_import(settings, args.user or settings.user_id, text))
    except (ConfigError, TransferError, EmbeddingError, DatabaseTooNew) as exc:
        print(f"ownsona import: {exc}", file=sys.stderr)
        return 1
    except (OSError, UnicodeDecodeError) as exc:
        print(f"ownsona import: cannot read {args.file}: {getattr(exc, 'strerror', None) or exc}", file=sys.stderr)
        return 1
    for position, message in report.rejected[:20]:
        print(f"  rejected record {position}: {message}", file=sys.stderr)
    if len(report.rejected) > 20:
        print(f"  … and {len(report.rejected) - 20} more rejected", file=sys.stderr)
    summary = report.as_dict()
    print("imported: " + ", ".join(f"{k} {v}" for k, v in summary.items()), file=sys.stderr)
    return 0 if not report.rejected else 2


async def _import(settings, user: str, text: str):  # type: ignore[no-untyped-def]
    from ownsona.memory.transfer import ImportReport, Importer, parse_records
    from ownsona.schemas import open_store_with_embedder

    def progress(report: ImportReport) -> None:
        print(f"\rread {report.read}, inserted {report.inserted}", end="", file=sys.stderr, flush=True)

    async with open_store_with_embedder(settings) as (db, embedder):
        try:
            result = await Importer(db, embedder).run(user, parse_records(text), report=progress)
        finally:
            print(file=sys.stderr)
    return result
