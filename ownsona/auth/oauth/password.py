"""The owner's login password: argon2id hash in the database, set by `ownsona password`.

The hash is verified in a worker thread: argon2id is deliberately slow (tens of milliseconds and
64 MiB), and the event loop must keep serving /mcp meanwhile.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ownsona.db import Database

MIN_LENGTH = 12
MAX_LENGTH = 1024
_PLACEHOLDERS = {"<pick-a-strong-password>", "changeme", "password", "correct horse battery staple"}

_hasher = PasswordHasher()  # argon2id, RFC 9106 low-memory profile


class PasswordRejected(ValueError):
    """The proposed password breaks a rule; the message names the rule, never the password."""


def check_strength(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordRejected(f"the password must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        raise PasswordRejected(f"the password must be at most {MAX_LENGTH} characters long")
    if password.strip().lower() in _PLACEHOLDERS or len(set(password)) < 4:
        raise PasswordRejected("that password is a placeholder or too repetitive; pick another")


def _store(conn: sqlite3.Connection, password_hash: str, now: int) -> None:
    conn.execute(
        "INSERT INTO oauth_owner (id, password_hash, updated_at) VALUES (1, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET password_hash = excluded.password_hash, updated_at = excluded.updated_at",
        (password_hash, now),
    )
    # A new password ends every browser login session; issued grants are left to `oauth revoke`.
    conn.execute("DELETE FROM oauth_sessions")


async def set_owner_password(db: Database, password: str) -> None:
    check_strength(password)
    password_hash = await asyncio.to_thread(_hasher.hash, password)
    await db.write(lambda conn: _store(conn, password_hash, int(time.time())))


async def owner_password_hash(db: Database) -> str | None:
    row = await db.read(lambda conn: conn.execute("SELECT password_hash FROM oauth_owner WHERE id = 1").fetchone())
    return row[0] if row else None


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


async def verify_owner_password(db: Database, password: str) -> bool:
    """True if `password` is the owner's. Always hashes, so a missing row costs the same time."""
    stored = await owner_password_hash(db)
    if len(password) > MAX_LENGTH:
        return False
    matched = await asyncio.to_thread(_verify, stored or _dummy_hash(), password)
    return matched and stored is not None


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("ownsona-no-password-is-set")
