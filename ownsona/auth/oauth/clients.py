"""OAuth clients: RFC 7591 registration rules, and their rows in `oauth_clients`.

A client is either dynamically registered (`source='dcr'`, random `client_id`) or described by a
Client ID Metadata Document (`source='cimd'`, the `client_id` is the document's https URL and the
row is a cache of it). Revoking a client keeps its row with `revoked_at`, so a revoked CIMD URL
cannot simply be fetched again and used.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ownsona.auth.oauth.crypto import digest, same
from ownsona.auth.oauth.urls import redirect_uri_problem

SCOPES_SUPPORTED = ("memory",)
GRANT_TYPES = ("authorization_code", "refresh_token")
AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
MAX_NAME_LENGTH = 100
MAX_REDIRECT_URIS = 10
UNUSED_CLIENT_GRACE_SECONDS = 86_400


class ClientMetadataError(ValueError):
    """Registration metadata broke a rule. `error` is the RFC 7591 code; the message is safe to show."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Client:
    client_id: str
    source: str
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...]
    auth_method: str
    scope: str
    created_at: int
    secret_hash: str | None = None
    last_used_at: int | None = None
    metadata_expires_at: int | None = None
    revoked_at: int | None = None

    @property
    def is_public(self) -> bool:
        return self.auth_method == "none"


def parse_metadata(
    body: Any, allowlist: Iterable[str], *, default_auth_method: str = "client_secret_basic"
) -> dict[str, Any]:
    """Validate RFC 7591 client metadata; return the normalised fields we keep.

    Defaults follow RFC 7591 (`client_secret_basic`) except `grant_types`, which defaults to
    code + refresh so that a client that forgets to ask still gets refresh tokens.
    """
    if not isinstance(body, Mapping):
        raise ClientMetadataError("invalid_client_metadata", "the body must be a JSON object")
    allowlist = tuple(allowlist)
    uris = body.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise ClientMetadataError("invalid_redirect_uri", "redirect_uris must be a non-empty array of strings")
    if len(uris) > MAX_REDIRECT_URIS:
        raise ClientMetadataError("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect_uris are allowed")
    for index, uri in enumerate(uris):
        problem = redirect_uri_problem(uri, allowlist)
        if problem:
            raise ClientMetadataError("invalid_redirect_uri", f"redirect_uris[{index}] {problem}")

    method = body.get("token_endpoint_auth_method", default_auth_method)
    if method not in AUTH_METHODS:
        raise ClientMetadataError(
            "invalid_client_metadata", f"token_endpoint_auth_method must be one of {', '.join(AUTH_METHODS)}"
        )
    grants = body.get("grant_types", list(GRANT_TYPES))
    if not isinstance(grants, list) or "authorization_code" not in grants or not set(grants) <= set(GRANT_TYPES):
        raise ClientMetadataError(
            "invalid_client_metadata", "grant_types must include authorization_code and may add refresh_token only"
        )
    responses = body.get("response_types", ["code"])
    if responses != ["code"]:
        raise ClientMetadataError("invalid_client_metadata", 'response_types must be ["code"]')
    scope = body.get("scope", " ".join(SCOPES_SUPPORTED))
    if not isinstance(scope, str) or not set(scope.split()) <= set(SCOPES_SUPPORTED):
        raise ClientMetadataError("invalid_client_metadata", f"scope may contain only: {' '.join(SCOPES_SUPPORTED)}")
    name = body.get("client_name", "")
    if not isinstance(name, str) or len(name) > MAX_NAME_LENGTH:
        raise ClientMetadataError("invalid_client_metadata", f"client_name must be a string of at most {MAX_NAME_LENGTH}")
    return {
        "client_name": " ".join(name.split()) or "Unnamed client",
        "redirect_uris": tuple(uris),
        "grant_types": tuple(g for g in GRANT_TYPES if g in grants),
        "auth_method": method,
        "scope": " ".join(s for s in SCOPES_SUPPORTED if s in scope.split()) or " ".join(SCOPES_SUPPORTED),
    }


_COLUMNS = (
    "client_id, source, client_name, redirect_uris, grant_types, auth_method, scope, created_at, "
    "secret_hash, last_used_at, metadata_expires_at, revoked_at"
)


def _row_to_client(row: tuple[Any, ...]) -> Client:
    values = list(row)
    values[3] = tuple(json.loads(values[3]))
    values[4] = tuple(json.loads(values[4]))
    return Client(*values)


def get_client(conn: sqlite3.Connection, client_id: str) -> Client | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM oauth_clients WHERE client_id = ?", (client_id,)).fetchone()
    return _row_to_client(row) if row else None


def list_clients(conn: sqlite3.Connection) -> list[Client]:
    rows = conn.execute(f"SELECT {_COLUMNS} FROM oauth_clients ORDER BY created_at").fetchall()
    return [_row_to_client(row) for row in rows]


def save_client(conn: sqlite3.Connection, client: Client) -> None:
    """Insert a client, or refresh a cached CIMD document (keeping created/used/revoked dates)."""
    conn.execute(
        f"INSERT INTO oauth_clients ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (client_id) DO UPDATE SET client_name = excluded.client_name, "
        "redirect_uris = excluded.redirect_uris, grant_types = excluded.grant_types, "
        "auth_method = excluded.auth_method, scope = excluded.scope, "
        "metadata_expires_at = excluded.metadata_expires_at",
        (
            client.client_id, client.source, client.client_name, json.dumps(list(client.redirect_uris)),
            json.dumps(list(client.grant_types)), client.auth_method, client.scope, client.created_at,
            client.secret_hash, client.last_used_at, client.metadata_expires_at, client.revoked_at,
        ),
    )


def register_client(conn: sqlite3.Connection, client: Client, max_clients: int, now: int) -> bool:
    """Store a DCR client within the cap; False if the cap is reached even after pruning.

    Claude registers a new client per connection, so the table grows: registrations that never
    completed a grant and are a day old are pruned first.
    """
    conn.execute(
        "DELETE FROM oauth_clients WHERE source = 'dcr' AND last_used_at IS NULL AND revoked_at IS NULL "
        "AND created_at < ?",
        (now - UNUSED_CLIENT_GRACE_SECONDS,),
    )
    (count,) = conn.execute(
        "SELECT count(*) FROM oauth_clients WHERE source = 'dcr' AND revoked_at IS NULL"
    ).fetchone()
    if count >= max_clients:
        return False
    save_client(conn, client)
    return True


def touch_client(conn: sqlite3.Connection, client_id: str, now: int) -> None:
    conn.execute("UPDATE oauth_clients SET last_used_at = ? WHERE client_id = ?", (now, client_id))


def revoke_client(conn: sqlite3.Connection, client_id: str, now: int) -> bool:
    """Mark the client revoked and end all its grants (their access tokens stop working at once)."""
    changed = conn.execute(
        "UPDATE oauth_clients SET revoked_at = ? WHERE client_id = ? AND revoked_at IS NULL", (now, client_id)
    ).rowcount
    conn.execute(
        "UPDATE oauth_grants SET revoked_at = ?, revoked_why = 'client revoked' "
        "WHERE client_id = ? AND revoked_at IS NULL",
        (now, client_id),
    )
    return changed > 0


def secret_matches(client: Client, secret: str) -> bool:
    return client.secret_hash is not None and same(digest(secret), client.secret_hash)
