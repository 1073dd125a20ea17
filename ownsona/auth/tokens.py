"""Named static bearer tokens: `<home>/tokens.json` (mode 0600) plus `OWNSONA_API_TOKEN` as "default".

Names let clients be rotated one at a time and are what logs show; values never leave this module
except through `ownsona token show`. The server re-reads the file when it changes, so
`ownsona token revoke NAME` takes effect within a second, without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ownsona.config import ConfigError
from ownsona.redact import register_secret

MIN_TOKEN_LENGTH = 32
TOKEN_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
DEFAULT_TOKEN_NAME = "default"
RELOAD_INTERVAL_SECONDS = 1.0

_PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "placeholder", "example", "your-token", "your_token",
                      "yourtoken", "replace-me", "replaceme", "secret-here", "token-here", "insert", "xxxx")


class TokenError(Exception):
    """A token operation failed; the message never contains a token value."""


@dataclass(frozen=True, slots=True)
class StaticToken:
    name: str
    value: str
    user_id: str
    created_at: str
    from_environment: bool = False

    def __repr__(self) -> str:  # a stray repr in a log must not leak the value
        return f"StaticToken(name={self.name!r}, user_id={self.user_id!r})"


def check_token_strength(value: str, *, source: str) -> None:
    """Refuse short or placeholder tokens: they are guessable, and a guessed token is the whole memory."""
    if len(value) < MIN_TOKEN_LENGTH:
        raise ConfigError(f"{source} is too short: tokens need at least {MIN_TOKEN_LENGTH} characters")
    lowered = value.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS) or len(set(value)) < 8:
        raise ConfigError(f"{source} looks like a placeholder; generate one with `ownsona token new NAME`")


def generate_token_value() -> str:
    """256 bits from the OS CSPRNG, URL-safe so it also works as `?token=`."""
    return secrets.token_urlsafe(32)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).digest()


class TokenStore:
    """The set of valid static tokens, and the file that keeps the generated ones."""

    def __init__(self, path: Path, *, env_token: str | None, default_user_id: str) -> None:
        self._path = path
        self._env_token = env_token
        self._default_user_id = default_user_id
        self._tokens: list[StaticToken] = []
        self._digests: list[tuple[bytes, StaticToken]] = []
        self._mtime_ns: int | None = None
        self._checked_at = 0.0

    @property
    def path(self) -> Path:
        return self._path

    # --- reading -------------------------------------------------------------------------------

    def load(self) -> list[StaticToken]:
        """Read the file (if any) and the environment token; validate every value."""
        tokens: list[StaticToken] = []
        if self._env_token is not None:
            check_token_strength(self._env_token, source="OWNSONA_API_TOKEN")
            tokens.append(StaticToken(DEFAULT_TOKEN_NAME, self._env_token, self._default_user_id, "", True))
        for token in self._read_file():
            if any(t.name == token.name for t in tokens):
                continue  # the environment's "default" wins over a stored one
            check_token_strength(token.value, source=f"token {token.name!r} in {self._path}")
            tokens.append(token)
        for token in tokens:
            # Tokens created while the server runs reach the log redactor here, not only at start.
            register_secret(token.value)
        self._tokens = tokens
        self._digests = [(_digest(t.value), t) for t in tokens]
        return list(tokens)

    def _read_file(self) -> list[StaticToken]:
        try:
            stat = self._path.stat()
        except FileNotFoundError:
            self._mtime_ns = None
            return []
        if stat.st_mode & 0o077:
            raise ConfigError(f"{self._path} is readable by others; run: chmod 600 {self._path}")
        self._mtime_ns = stat.st_mtime_ns
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
            return [
                StaticToken(str(t["name"]), str(t["value"]), str(t.get("user_id") or self._default_user_id),
                            str(t.get("created_at", "")))
                for t in data.get("tokens", [])
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            raise ConfigError(f"{self._path} is not a valid token file") from None

    def tokens(self) -> list[StaticToken]:
        return list(self._tokens)

    def get(self, name: str) -> StaticToken | None:
        return next((t for t in self._tokens if t.name == name), None)

    def match(self, presented: str) -> StaticToken | None:
        """Compare against every token in constant time, so timing reveals neither value nor count."""
        self._reload_if_changed()
        presented_digest = _digest(presented)
        found: StaticToken | None = None
        for digest, token in self._digests:
            if hmac.compare_digest(digest, presented_digest):
                found = token
        return found

    def _reload_if_changed(self) -> None:
        now = time.monotonic()
        if now - self._checked_at < RELOAD_INTERVAL_SECONDS:
            return
        self._checked_at = now
        try:
            mtime: int | None = self._path.stat().st_mtime_ns
        except FileNotFoundError:
            mtime = None
        if mtime != self._mtime_ns:
            try:
                self.load()
            except ConfigError:
                pass  # keep serving with the last good set; `ownsona token` reports file problems

    # --- writing -------------------------------------------------------------------------------

    def ensure_default(self) -> bool:
        """With no token at all, generate "default" and store it. Returns True when one was made."""
        if self.load():
            return False
        self.create(DEFAULT_TOKEN_NAME)
        return True

    def create(self, name: str, user_id: str | None = None) -> StaticToken:
        if not TOKEN_NAME_PATTERN.match(name):
            raise TokenError("token names are 1-64 characters: lower-case letters, digits, '.', '_' or '-'")
        stored = self._read_file()
        if any(t.name == name for t in stored) or (name == DEFAULT_TOKEN_NAME and self._env_token is not None):
            raise TokenError(f"a token named {name!r} already exists; revoke it first to replace it")
        token = StaticToken(name, generate_token_value(), user_id or self._default_user_id,
                            datetime.now(UTC).isoformat(timespec="seconds"))
        self._write_file([*stored, token])
        self.load()
        return token

    def revoke(self, name: str) -> None:
        stored = self._read_file()
        if not any(t.name == name for t in stored):
            if name == DEFAULT_TOKEN_NAME and self._env_token is not None:
                raise TokenError("the 'default' token comes from OWNSONA_API_TOKEN; remove it from the environment")
            raise TokenError(f"no stored token is named {name!r}")
        self._write_file([t for t in stored if t.name != name])
        self.load()

    def _write_file(self, tokens: list[StaticToken]) -> None:
        """Write atomically with mode 0600 from the start: the value never sits in a readable file."""
        self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        data = {"tokens": [
            {"name": t.name, "value": t.value, "user_id": t.user_id, "created_at": t.created_at} for t in tokens
        ]}
        tmp = self._path.with_name(f".{self._path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self._path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
