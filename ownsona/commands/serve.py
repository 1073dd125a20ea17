"""`ownsona serve`: run the MCP server on the embedded defaults or the configured backends."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Run the MCP server (default http://127.0.0.1:8765/mcp; put nginx with TLS in front)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="address to listen on (OWNSONA_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (OWNSONA_PORT, default 8765)")
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")


def run(args: argparse.Namespace) -> int:
    from ownsona.config import settings_from_environ
    from ownsona.server import serve

    settings = settings_from_environ(env_file=args.env_file, overrides={"host": args.host, "port": args.port})
    try:
        serve(settings)
    except OSError as exc:
        # A taken port, or a state directory the service user may not write.
        print(f"ownsona: cannot start: {exc}", file=sys.stderr)
        return 1
    return 0
