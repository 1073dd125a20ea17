"""`ownsona reembed`: give every memory a vector from the configured embedding model."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

HELP = "Re-embed memories whose vectors another model made (resumable; a running server keeps serving)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    parser.add_argument("--batch-size", type=int, default=50, help="texts per embedding request (default 50)")
    parser.add_argument("--dry-run", action="store_true", help="only count the rows that need new vectors")


def run(args: argparse.Namespace) -> int:
    from ownsona.config import ConfigError, settings_from_environ
    from ownsona.db import DatabaseTooNew
    from ownsona.embeddings import EmbeddingError
    from ownsona.memory.reembed import ReembedError

    if args.batch_size < 1:
        print("ownsona reembed: --batch-size must be at least 1", file=sys.stderr)
        return 2
    try:
        settings = settings_from_environ(env_file=args.env_file)
        return asyncio.run(_reembed(settings, args.batch_size, args.dry_run))
    except (ConfigError, EmbeddingError, ReembedError, DatabaseTooNew) as exc:
        print(f"\nownsona reembed: {exc}; run it again to resume", file=sys.stderr)
        return 1


async def _reembed(settings, batch_size: int, dry_run: bool) -> int:  # type: ignore[no-untyped-def]
    from ownsona.memory.reembed import Reembedder, ReembedProgress
    from ownsona.schemas import open_store_with_embedder

    def progress(p: ReembedProgress) -> None:
        print(f"\rre-embedded {p.done}/{p.total}", end="", file=sys.stderr, flush=True)

    async with open_store_with_embedder(settings) as (db, embedder):
        walker = Reembedder(db, embedder)
        stale = await walker.count_stale()
        print(f"{stale} memories need vectors from {embedder.provider}:{embedder.model}", file=sys.stderr)
        if dry_run or stale == 0:
            return 0
        result = await walker.run(batch_size=batch_size, report=progress)
        print(f"\ndone: {result.done} re-embedded, {result.skipped} changed meanwhile (already fresh)",
              file=sys.stderr)
        return 0
