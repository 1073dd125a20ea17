"""The `ownsona` command line: one sub-command per module, imported only when it runs.

Each command module exposes `HELP` (one line), `add_arguments(parser)` and `run(args) -> int`.
Keeping the imports lazy makes `ownsona --help` and `ownsona token show` start fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from ownsona import __version__

# name -> module implementing it, in the order `--help` lists them.
COMMANDS: dict[str, str] = {
    "serve": "ownsona.commands.serve",
    "token": "ownsona.commands.token",
    "password": "ownsona.commands.password",
    "oauth": "ownsona.commands.oauth",
    "check-logs": "ownsona.commands.check_logs",
    "backup": "ownsona.commands.backup",
    "restore": "ownsona.commands.restore",
    "doctor": "ownsona.commands.doctor",
    "reembed": "ownsona.commands.reembed",
    "export": "ownsona.commands.export",
    "import": "ownsona.commands.import_",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ownsona",
        description="OwnSona: a self-hosted memory server for LLM assistants, spoken to over MCP.",
        epilog="Configuration comes from OWNSONA_* environment variables; see README.md.",
    )
    parser.add_argument("--version", action="version", version=f"ownsona {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    from ownsona.config import ConfigError
    from ownsona.db import DatabaseTooNew

    try:
        return int(args.run(args) or 0)
    except (ConfigError, DatabaseTooNew) as exc:
        # Bad settings and a store written by a newer OwnSona are the user's to fix: say what,
        # not where in the code (the message names the setting, never its value).
        print(f"ownsona: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
