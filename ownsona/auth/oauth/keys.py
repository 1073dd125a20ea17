"""The access-token signing keys: generated at first start, rotated on request, published as JWKS.

Where the private key lives, and why: in its own file `<state dir>/oauth-keys/<kid>.jwk`, created
mode 0600 in a 0700 directory, while the database holds only its `kid` and dates. A database
backup or an `sqlite3 .dump` shared for debugging then never carries the power to mint tokens,
and losing the file costs nothing lasting: the server makes a new key, clients' old access tokens
fail once, and their refresh tokens (opaque, not signed) get them new ones.

ES256 rather than RS256: only this process verifies the tokens, so nothing forces RSA, and a
P-256 key is generated in a millisecond and signs small tokens.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from joserfc.jwk import ECKey, KeySet

from ownsona.db import Database

log = structlog.get_logger("ownsona.oauth")

ALGORITHM = "ES256"


@dataclass(frozen=True)
class KeyRing:
    """The key that signs now, and every key a live token may still carry."""

    current: ECKey
    published: KeySet

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set: no private member ever leaves this method."""
        keys = []
        for key in self.published.keys:
            public = key.as_dict(private=False)
            public.update(kid=str(key.kid), use="sig", alg=ALGORITHM)
            keys.append(public)
        return {"keys": keys}


def key_directory(home: Path) -> Path:
    return home / "oauth-keys"


def _key_path(directory: Path, kid: str) -> Path:
    return directory / f"{kid}.jwk"


def _generate(directory: Path) -> ECKey:
    """A new P-256 key whose kid is its RFC 7638 thumbprint, written 0600 before it is used."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    key = ECKey.generate_key("P-256", private=True)
    kid = key.thumbprint()
    key = ECKey.import_key(key.as_dict(private=True), {"kid": kid})
    path = _key_path(directory, kid)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(key.as_dict(private=True), handle)
        handle.flush()
        os.fsync(handle.fileno())
    return key


def _read(directory: Path, kid: str) -> ECKey | None:
    try:
        data = json.loads(_key_path(directory, kid).read_text(encoding="utf-8"))
        key = ECKey.import_key(data, {"kid": kid})
    except (OSError, ValueError):
        return None
    return key if key.thumbprint() == kid else None


def _insert(conn: sqlite3.Connection, key: ECKey, now: int) -> None:
    conn.execute(
        "INSERT INTO oauth_keys (kid, alg, created_at) VALUES (?, ?, ?)", (key.kid, ALGORITHM, now)
    )


def _ensure_current(conn: sqlite3.Connection, directory: Path, now: int) -> None:
    """Make sure a readable current key exists; runs in the writer, so two starts cannot race."""
    rows = conn.execute("SELECT kid FROM oauth_keys WHERE retired_at IS NULL").fetchall()
    readable = [kid for (kid,) in rows if _read(directory, kid) is not None]
    for (kid,) in rows:
        if kid not in readable:
            log.warning("oauth_signing_key_unreadable", kid=kid, action="retired; a new key is made")
            conn.execute("UPDATE oauth_keys SET retired_at = ? WHERE kid = ?", (now, kid))
    if not readable:
        key = _generate(directory)
        _insert(conn, key, now)
        log.info("oauth_signing_key_created", kid=key.kid)


def _rotate(conn: sqlite3.Connection, directory: Path, now: int) -> str:
    conn.execute("UPDATE oauth_keys SET retired_at = ? WHERE retired_at IS NULL", (now,))
    key = _generate(directory)
    _insert(conn, key, now)
    log.info("oauth_signing_key_rotated", kid=key.kid)
    return str(key.kid)


def _load(conn: sqlite3.Connection, directory: Path, keep_retired_seconds: int, now: int) -> KeyRing:
    rows = conn.execute(
        "SELECT kid, retired_at FROM oauth_keys WHERE retired_at IS NULL OR retired_at > ? "
        "ORDER BY retired_at IS NOT NULL, created_at DESC",
        (now - keep_retired_seconds,),
    ).fetchall()
    keys = [(key, retired) for kid, retired in rows if (key := _read(directory, kid)) is not None]
    current = [key for key, retired in keys if retired is None]
    if not current:
        raise RuntimeError("no current OAuth signing key; the server must be started to create one")
    return KeyRing(current=current[0], published=KeySet([key for key, _ in keys]))


async def load_keyring(db: Database, home: Path, keep_retired_seconds: int) -> KeyRing:
    """Create the first key if needed, then load the current and still-published keys."""
    directory = key_directory(home)
    now = int(time.time())
    await db.write(lambda conn: _ensure_current(conn, directory, now))
    return await db.read(lambda conn: _load(conn, directory, keep_retired_seconds, now))


async def rotate_key(db: Database, home: Path) -> str:
    """Retire the current key (it stays published for one access-token lifetime) and make a new one.

    A running server keeps signing with the key it loaded; after its restart it signs with the
    new key and still accepts tokens signed with the old one until they have all expired.
    """
    directory = key_directory(home)
    return await db.write(lambda conn: _rotate(conn, directory, int(time.time())))
