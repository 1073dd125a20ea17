"""`ownsona token new NAME | show [NAME] | list | revoke NAME`: manage named static tokens."""

from __future__ import annotations

import argparse
import sys

HELP = "Create, show, list and revoke the named bearer tokens clients use."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env-file", type=_path, help="read OWNSONA_* settings from this file too")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    new = actions.add_parser("new", help="generate a new 256-bit token and print it once")
    new.add_argument("name", help="a label for the client, e.g. laptop or chatgpt")
    new.add_argument("--user", help="the user whose memories this token reaches (default: OWNSONA_USER_ID)")
    show = actions.add_parser("show", help="print a token's value (default: the 'default' token)")
    show.add_argument("name", nargs="?", default="default")
    actions.add_parser("list", help="list token names, users and creation times (never values)")
    revoke = actions.add_parser("revoke", help="delete a stored token; a running server stops accepting it within a second")
    revoke.add_argument("name")


def _path(value: str):  # argparse type
    from pathlib import Path

    return Path(value)


def run(args: argparse.Namespace) -> int:
    from ownsona.auth.tokens import TokenError, TokenStore
    from ownsona.config import ConfigError, settings_from_environ

    try:
        settings = settings_from_environ(env_file=args.env_file)
        env_token = settings.api_token.get_secret_value() if settings.api_token else None
        store = TokenStore(settings.tokens_path, env_token=env_token, default_user_id=settings.user_id)
        store.load()
        if args.action == "new":
            token = store.create(args.name, args.user)
            print(f"Created token {token.name!r} for user {token.user_id!r}. It is shown once here:", file=sys.stderr)
            print(token.value)
        elif args.action == "show":
            token = store.get(args.name)
            if token is None:
                print(f"ownsona: no token is named {args.name!r} (see `ownsona token list`)", file=sys.stderr)
                return 1
            print(token.value)
        elif args.action == "list":
            tokens = store.tokens()
            if not tokens:
                print("no tokens yet: `ownsona serve` generates 'default' on first start", file=sys.stderr)
            for token in tokens:
                origin = "OWNSONA_API_TOKEN" if token.from_environment else (token.created_at or "-")
                print(f"{token.name}\tuser={token.user_id}\t{origin}")
        elif args.action == "revoke":
            store.revoke(args.name)
            print(f"Revoked token {args.name!r}.", file=sys.stderr)
    except (ConfigError, TokenError) as exc:
        print(f"ownsona: {exc}", file=sys.stderr)
        return 2
    return 0
