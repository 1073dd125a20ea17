"""`ownsona check-logs [FILE...] [--journal UNIT]`: prove no log holds a token or a query string.

Exit status: 0 clean, 1 something found (even if another input was unreadable), 2 an input or the
token store could not be read. The report names each finding's file, line and kind, never the
text: printing the leak would leak it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HELP = "Scan log files and the journal for token=, query strings and the values of configured secrets."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="*", type=Path, metavar="FILE",
                        help="log files to scan (nginx access/error logs, exported journals; .gz is fine; - is stdin)")
    parser.add_argument("--journal", action="append", default=[], metavar="UNIT",
                        help="also scan `journalctl -u UNIT -o cat` (repeatable)")
    parser.add_argument("--secret-file", type=Path, metavar="FILE",
                        help="also look for these values, one per line (e.g. a token revoked earlier)")
    parser.add_argument("--env-file", type=Path, help="read OWNSONA_* settings from this file too")
    parser.epilog = "Exit status: 0 clean, 1 something found, 2 an input could not be read."


def run(args: argparse.Namespace) -> int:
    from ownsona.config import ConfigError
    from ownsona.logcheck import Finding, UnreadableInput, scan_file, scan_journal

    if not args.files and not args.journal:
        print("ownsona check-logs: name at least one FILE or --journal UNIT", file=sys.stderr)
        return 2
    try:
        secrets = _configured_secrets(args.env_file)
        if args.secret_file:
            secrets.update(_secrets_from_file(args.secret_file))
    except (ConfigError, UnreadableInput) as exc:
        print(f"ownsona check-logs: {exc}", file=sys.stderr)
        return 2

    inputs: list[tuple[str, list[Finding]]] = []
    unreadable = False
    for path in args.files:
        try:
            inputs.append((str(path), scan_file(path, secrets)))
        except UnreadableInput as exc:
            print(f"ownsona check-logs: {exc}", file=sys.stderr)
            unreadable = True
    for unit in args.journal:
        try:
            inputs.append((f"journal:{unit}", scan_journal(unit, secrets)))
        except UnreadableInput as exc:
            print(f"ownsona check-logs: {exc}", file=sys.stderr)
            unreadable = True

    total = 0
    for label, findings in inputs:
        for finding in findings:
            print(f"{label}:{finding.line}: {finding.kind}")
        total += len(findings)
    checked = f"{len(inputs)} input(s), {len(secrets)} secret value(s) checked"
    if total:
        print(f"ownsona check-logs: {total} finding(s) in {checked}", file=sys.stderr)
        return 1
    if unreadable:
        return 2
    print(f"ownsona check-logs: clean: {checked}", file=sys.stderr)
    return 0


def _configured_secrets(env_file: Path | None) -> dict[str, str]:
    """Every configured secret by label: each static token the server accepts, and every other
    secret setting (OWNSONA_EMBEDDING_API_KEY, ...)."""
    from pydantic import SecretStr

    from ownsona.auth.tokens import TokenStore
    from ownsona.config import ENV_PREFIX, settings_from_environ

    settings = settings_from_environ(env_file=env_file)
    env_token = settings.api_token.get_secret_value() if settings.api_token else None
    store = TokenStore(settings.tokens_path, env_token=env_token, default_user_id=settings.user_id)
    secrets = {f"token {token.name!r}": token.value for token in store.load()}
    for field, value in settings:
        if isinstance(value, SecretStr) and field != "api_token":  # api_token is token 'default'
            secrets[f"{ENV_PREFIX}{field.upper()}"] = value.get_secret_value()
    return secrets


def _secrets_from_file(path: Path) -> dict[str, str]:
    from ownsona.logcheck import UnreadableInput

    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UnreadableInput(f"cannot read {path}: {exc.strerror}") from None
    values = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {f"secret {path.name}:{number}": value for number, value in enumerate(values, start=1)}
