"""`ownsona doctor URL`: check a deployed server end to end, as an assistant would reach it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path

HELP = "Check a running server end to end: 401 challenge, initialize, tools, remember/recall/forget."

TOKEN_VARIABLES = ("OWNSONA_DOCTOR_TOKEN", "OWNSONA_API_TOKEN")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Without this, argparse would take `--token SECRET` as an abbreviation of --token-file.
    parser.allow_abbrev = False
    parser.add_argument("url", help="the public MCP URL, e.g. https://memory.example.com/mcp")
    parser.add_argument(
        "--token-file",
        type=Path,
        help="read the bearer token from this file, or stdin for '-' "
        "(default: $OWNSONA_DOCTOR_TOKEN, then $OWNSONA_API_TOKEN); "
        "there is deliberately no --token: argv is visible to every user of the host",
    )
    parser.add_argument("--query-token", action="store_true",
                        help="send the token as ?token= instead of a bearer header (ChatGPT's 'No auth' mode)")
    parser.add_argument("--cafile", type=Path, help="trust this CA bundle (e.g. a self-signed test certificate)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed for each request (default 30)")


def read_token(token_file: Path | None, environ: Mapping[str, str]) -> str:
    """The token from --token-file, else from the environment; never from argv."""
    if token_file is not None:
        try:
            # `-` is stdin, so `ownsona token show | ownsona doctor URL --token-file -` works.
            value = (sys.stdin.read() if str(token_file) == "-" else token_file.read_text(encoding="utf-8")).strip()
        except OSError as exc:
            raise ValueError(f"cannot read --token-file {token_file}: {exc.strerror}") from None
        if not value:
            raise ValueError(f"--token-file {token_file} is empty")
        return value
    for name in TOKEN_VARIABLES:
        value = environ.get(name, "").strip()
        if value:
            return value
    raise ValueError("no token: set OWNSONA_DOCTOR_TOKEN (or OWNSONA_API_TOKEN), or pass --token-file FILE")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import ssl

    from ownsona.doctor import DoctorError, run_doctor

    try:
        token = read_token(args.token_file, os.environ)
        ssl_context = ssl.create_default_context(cafile=str(args.cafile)) if args.cafile else None
    except (ValueError, OSError, ssl.SSLError) as exc:
        print(f"ownsona doctor: {exc}", file=sys.stderr)
        return 2
    try:
        report = asyncio.run(run_doctor(args.url, token, token_in_query=args.query_token, ssl_context=ssl_context,
                                        timeout_seconds=args.timeout))
    except DoctorError as exc:  # the URL itself is unusable
        print(f"ownsona doctor: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1
