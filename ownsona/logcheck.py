"""Find credentials that reached a log: `token=`, request lines with a query, configured secrets.

This is the audit behind `ownsona check-logs`. It looks at logs this process did not write (nginx
access and error logs, an exported journal) as well as ours, so it matches raw text rather than
trusting any format. A finding names a line and a kind, never the matched text: the report of a
leak must not be a second leak.
"""

from __future__ import annotations

import gzip
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from urllib.parse import quote, quote_plus

from ownsona.redact import REDACTED

TOKEN_PARAMETER = "token parameter (token=)"
QUERY_IN_REQUEST_LINE = "request line with a query string"

_TOKEN_PARAMETER = re.compile(r"token(?:=|%3d|%253d)", re.IGNORECASE)
# "GET /mcp?x=1 HTTP/1.1", "POST https://h/x?y HTTP/2.0"; our own scrubber's "?[redacted]" is no leak.
_REQUEST_WITH_QUERY = re.compile(
    r"\b(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS|TRACE|CONNECT)\s+[^\s?\"]*\?"
    + rf"(?!{re.escape(REDACTED)}\s)[^\s\"]+\s+HTTP/\d"
)


class UnreadableInput(Exception):
    """A log file or journal could not be read; the message names the input, never its content."""


@dataclass(frozen=True, slots=True)
class Finding:
    line: int
    kind: str


def secret_kind(label: str) -> str:
    """The kind of a finding of a secret's value: "value of token 'laptop'" (never the value)."""
    return f"value of {label}"


def scan_lines(lines: Iterable[str], secrets: Mapping[str, str]) -> list[Finding]:
    """Every finding in `lines` (numbered from 1). `secrets` maps a printable label to a value."""
    needles = [(secret_kind(label), _forms(value)) for label, value in secrets.items() if value]
    findings: list[Finding] = []
    for number, line in enumerate(lines, start=1):
        if _TOKEN_PARAMETER.search(line):
            findings.append(Finding(number, TOKEN_PARAMETER))
        if _REQUEST_WITH_QUERY.search(line):
            findings.append(Finding(number, QUERY_IN_REQUEST_LINE))
        findings.extend(Finding(number, kind) for kind, forms in needles if any(form in line for form in forms))
    return findings


def _forms(value: str) -> tuple[str, ...]:
    """A value as it may appear in a log: raw, or percent-encoded by a proxy or client."""
    return tuple({value, quote(value, safe=""), quote_plus(value, safe="")})


def scan_file(path: Path, secrets: Mapping[str, str]) -> list[Finding]:
    """Scan a plain or gzip-compressed (rotated) log file; `-` is standard input."""
    try:
        with _open_text(path) as handle:
            return scan_lines(handle, secrets)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UnreadableInput(f"cannot read {path}: {reason}") from None


@contextmanager
def _open_text(path: Path) -> Iterator[IO[str]]:
    if str(path) == "-":
        import sys

        yield sys.stdin
        return
    with open(path, "rb") as probe:
        compressed = probe.read(2) == b"\x1f\x8b"
    if compressed:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as handle:
            yield handle
    else:
        with open(path, encoding="utf-8", errors="replace") as handle:
            yield handle


def scan_journal(unit: str, secrets: Mapping[str, str]) -> list[Finding]:
    """Scan `journalctl -u UNIT -o cat` as it streams, without holding the journal in memory."""
    command = ["journalctl", "--no-pager", "-u", unit, "-o", "cat"]
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", errors="replace"
        )
    except OSError as exc:
        raise UnreadableInput(f"cannot run journalctl: {exc.strerror or exc}") from None
    assert process.stdout is not None and process.stderr is not None
    findings = scan_lines(process.stdout, secrets)
    error = process.stderr.read().strip()
    if process.wait() != 0:
        raise UnreadableInput(f"journalctl failed for unit {unit!r}: {error.splitlines()[-1] if error else process.returncode}")
    return findings
