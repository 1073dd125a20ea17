"""What counts as a secret in a log line, and how to take it out.

The log pipeline (`ownsona.logs`) runs every event through `Redactor.scrub` just before it is
rendered; `ownsona check-logs` (`ownsona.logcheck`) uses the same vocabulary to find what slipped
through elsewhere (nginx, old journals). Keeping both in one module means the scrubber's output is,
by construction, something the checker accepts.

Rules, strongest first:

1. Literal values registered with `register_secret` (every configured token) are replaced
   wherever they appear, even in a URL path or free text, plain or percent-encoded.
2. Values under credential keys (`authorization`, `cookie`, `*token`, `*secret`, `password`, …)
   are replaced whole, at any depth.
3. In every string, a query (`?…` or `%3F…`) that follows a non-blank character is cut; fields
   that name a URL (`url`, `path`, `referer`, `request_line`, …) lose everything after `?`.
4. Well-known secret `name=value` pairs, `"name": "value"` pairs, `Bearer …` credentials and
   credential header lines are replaced anywhere in free text.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
"""The one marker the scrubber writes; `check-logs` knows a `?[redacted]` query is not a leak."""

MIN_SECRET_LENGTH = 8
"""Shorter literals would shred ordinary words; every real credential is far longer."""

_MAX_DEPTH = 16

# Keys whose whole value is a credential. Compared after lower-casing and `_` -> `-`.
_CREDENTIAL_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-api-key",
        "api-key",
        "apikey",
        "mcp-session-id",
        "code",
        "code-verifier",
        "private-key",
        "passwd",
        "pwd",
        "query-string",
        "qs",
    }
)
_CREDENTIAL_SUFFIXES = ("token", "secret", "password")

# Keys whose value is a URL or request line: everything after the first `?` goes.
_URL_KEYS = frozenset(
    {
        "url",
        "uri",
        "path",
        "path-qs",
        "raw-path",
        "rel-url",
        "referer",
        "referrer",
        "request-line",
        "first-request-line",
        "request",
        "location",
        "redirect-uri",
        "href",
        "target",
    }
)

# An error code such as "AUTH_FAILED" or -32602 under `code` is not an OAuth authorization code.
_ERROR_CODE = re.compile(r"[A-Z][A-Z0-9_]*\Z")

_CREDENTIAL_NAME = (
    r"[\w.-]*(?:token|secret|passw(?:or)?d)|authorization|proxy-authorization|cookie|set-cookie"
    r"|x-api-key|api[_-]?key|code[_-]verifier|private[_-]key"
)
# Every free-text rule needs one of these; a string without any is returned as it is.
_MAYBE_SECRET = re.compile(r"[?=:]|%3[fFdD]|%25|bearer|basic", re.IGNORECASE)
# A query follows a non-blank character ("/mcp?x"), or stands alone but looks like one ("?token=x").
_QUERY = re.compile(
    r"""(?:(?<=[^\s"'<>])|(?<![^\s"'<>])(?=(?:\?|%3[fF])[\w.~%-]+=))(\?|%3[fF])[^\s"'<>\\`]+"""
)
_PROTOCOL_SUFFIX = re.compile(r" HTTP/\d(?:\.\d)?\Z")
_SECRET_PAIR = re.compile(
    r"(?<![\w.-])(?:[\w.-]*(?:token|secret|passw(?:or)?d|api[_-]?key|code[_-]verifier|signature)"
    r"|code|key|sig|auth)\s*(?:=|%3[dD]|%253[dD])[^\s&;,\"'<>]*",
    re.IGNORECASE,
)
_QUOTED_PAIR = re.compile(
    rf"""(?P<q>["'])(?P<name>{_CREDENTIAL_NAME})(?P=q)\s*:\s*b?(?P<v>["'])(?:(?!(?P=v)).)*(?P=v)""",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(
    r"(?<![\w-])(?P<name>authorization|proxy-authorization|cookie|set-cookie|x-api-key)\s*:\s*"
    r"""(?!\s*["'])[^\r\n"']*""",
    re.IGNORECASE,
)
# "Bearer <token68>" or "Basic <base64>", but not prose ("missing bearer token") or a challenge.
_SCHEME_CREDENTIAL = re.compile(
    r"\b(?P<scheme>bearer|basic)\s+"
    r"(?!(?:token|tokens|auth|authentication|authorization|credentials?|scheme|header|realm|error|scope)\b)"
    r"(?![\w-]+=\")[A-Za-z0-9._~+/-]{8,}=*",
    re.IGNORECASE,
)


@functools.lru_cache(maxsize=1024)  # field names repeat from event to event
def _normal_key(key: str) -> str:
    return key.strip().lower().replace("_", "-")


def is_credential_key(key: str) -> bool:
    """True for a field or header name whose value must never be logged."""
    name = _normal_key(key)
    return name in _CREDENTIAL_KEYS or name.endswith(_CREDENTIAL_SUFFIXES)


def strip_query(text: str) -> str:
    """Cut every query (`?…` or `%3F…`) after a non-blank character, or alone but shaped `?name=`."""
    return _QUERY.sub(lambda m: m.group(1) + REDACTED, text)


class Redactor:
    """Scrubs log events; holds the literal secret values registered at run time."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: set[str] = set()
        self._literal: re.Pattern[str] | None = None
        for secret in secrets:
            self.register(secret)

    def register(self, secret: str) -> None:
        """Redact `secret` (and its percent-encoded forms) from every later event."""
        if len(secret) < MIN_SECRET_LENGTH:
            raise ValueError(f"a registered secret must have at least {MIN_SECRET_LENGTH} characters")
        forms = {secret, quote(secret, safe=""), quote_plus(secret, safe="")}
        with self._lock:
            if forms <= self._secrets:
                return
            self._secrets |= forms
            # Longest first, so a secret that contains another is replaced whole.
            alternatives = sorted(self._secrets, key=len, reverse=True)
            self._literal = re.compile("|".join(re.escape(value) for value in alternatives))

    def scrub_text(self, text: str) -> str:
        """Apply every free-text rule to one string."""
        literal = self._literal
        if literal is not None:
            text = literal.sub(REDACTED, text)
        if not _MAYBE_SECRET.search(text):
            return text  # most values (names, numbers, ids) cannot match any rule below
        text = _HEADER_LINE.sub(lambda m: f"{m.group('name')}: {REDACTED}", text)
        text = _QUOTED_PAIR.sub(lambda m: f"{m['q']}{m['name']}{m['q']}: {m['v']}{REDACTED}{m['v']}", text)
        text = _SCHEME_CREDENTIAL.sub(lambda m: f"{m.group('scheme')} {REDACTED}", text)
        text = strip_query(text)
        return _SECRET_PAIR.sub(REDACTED, text)

    def scrub(self, value: Any, key: str | None = None, depth: int = 0) -> Any:
        """Return a JSON-ready copy of `value` with every secret taken out.

        `key` is the field name the value sits under; it decides rules 2 and 3 of the module doc.
        Anything that is not a JSON primitive, mapping or sequence is turned into `str()` first,
        so a `yarl.URL`, an exception or a request object cannot slip past as an object.
        """
        if key is not None:
            if is_credential_key(key) and not _is_error_code(key, value):
                return REDACTED
            if _normal_key(key) in _URL_KEYS and isinstance(value, str):
                value = _cut_url_field(value)
        if value is None or isinstance(value, (bool, int, float)):
            return value
        if isinstance(value, (bytes, bytearray, memoryview)):
            value = bytes(value).decode("utf-8", errors="replace")
        if isinstance(value, str):
            return self.scrub_text(value)
        if depth >= _MAX_DEPTH:
            return self.scrub_text(_safe_str(value))
        if isinstance(value, Mapping):
            return {
                self.scrub_text(_safe_str(k)): self.scrub(v, _safe_str(k), depth + 1) for k, v in value.items()
            }
        if isinstance(value, (list, tuple)) and len(value) == 2 and isinstance(value[0], (str, bytes)):
            # A header pair such as aiohttp's raw_headers entry (b"Cookie", b"sid=..."): key and value.
            name = value[0].decode("latin-1") if isinstance(value[0], bytes) else value[0]
            return [self.scrub_text(name), self.scrub(value[1], name, depth + 1)]
        if isinstance(value, (list, tuple, set, frozenset)):
            return [self.scrub(item, None, depth + 1) for item in value]
        return self.scrub_text(_safe_str(value))


def _cut_url_field(value: str) -> str:
    """Everything after the first `?` goes; a request line keeps its trailing protocol."""
    head, mark, _ = value.partition("?")
    if not mark:
        return value
    protocol = _PROTOCOL_SUFFIX.search(value)
    return f"{head}?{REDACTED}{protocol.group(0) if protocol else ''}"


def _is_error_code(key: str, value: Any) -> bool:
    if _normal_key(key) != "code":
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return True
    return isinstance(value, str) and bool(_ERROR_CODE.match(value))


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:  # a broken __str__ must not take the log line down with it
        return f"<unprintable {type(value).__name__}>"


REDACTOR = Redactor()
"""The process-wide redactor the log pipeline uses; `register_secret` feeds it."""


def register_secret(secret: str) -> None:
    """Make the log pipeline replace this literal value wherever it appears.

    The server registers every configured token at start, so a token pasted into a URL path or
    an error message is still caught where no structural rule applies.
    """
    REDACTOR.register(secret)
