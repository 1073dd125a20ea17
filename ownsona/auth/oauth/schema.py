"""The `oauth` component's tables in the shared SQLite store.

Every credential is stored as a SHA-256 hash (refresh tokens, codes, sessions, flow ids, client
secrets): a copied database file or backup cannot be replayed against the server. Times are
integer Unix seconds (64-bit in SQLite, so no Y2038 problem).
"""

from __future__ import annotations

import sqlite3

from ownsona.db import Migration, Schema, run_script

_V1 = """
CREATE TABLE oauth_owner (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    password_hash TEXT NOT NULL,
    updated_at    INTEGER NOT NULL
);
CREATE TABLE oauth_keys (
    kid        TEXT PRIMARY KEY,   -- RFC 7638 thumbprint; the private key is the file <kid>.jwk
    alg        TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retired_at INTEGER             -- NULL for the current key; retired keys stay published a while
);
CREATE TABLE oauth_clients (
    client_id       TEXT PRIMARY KEY,
    source          TEXT NOT NULL CHECK (source IN ('dcr', 'cimd')),
    client_name     TEXT NOT NULL,
    redirect_uris   TEXT NOT NULL,  -- JSON array
    grant_types     TEXT NOT NULL,  -- JSON array
    auth_method     TEXT NOT NULL,
    secret_hash     TEXT,
    scope           TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER,
    metadata_expires_at INTEGER,    -- CIMD cache expiry
    revoked_at      INTEGER
);
CREATE TABLE oauth_flows (
    flow_hash      TEXT PRIMARY KEY,
    csrf_hash      TEXT NOT NULL,   -- binds the flow to the browser that started it
    client_id      TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scope          TEXT NOT NULL,
    state          TEXT,
    user_id        TEXT,            -- set once the owner has logged in on this flow
    created_at     INTEGER NOT NULL
);
CREATE TABLE oauth_sessions (
    session_hash TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE TABLE oauth_grants (        -- one consent; its access tokens carry `sid` = grant_id
    grant_id    TEXT PRIMARY KEY,
    client_id   TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    user_id     TEXT NOT NULL,
    scope       TEXT NOT NULL,
    resource    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,   -- absolute family lifetime
    revoked_at  INTEGER,
    revoked_why TEXT
);
CREATE INDEX oauth_grants_client ON oauth_grants (client_id);
CREATE TABLE oauth_codes (
    code_hash      TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT NOT NULL,
    resource       TEXT NOT NULL,
    scope          TEXT NOT NULL,
    user_id        TEXT NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,         -- kept after use so a replay can revoke what it minted
    grant_id       TEXT
);
CREATE TABLE oauth_refresh_tokens (
    token_hash  TEXT PRIMARY KEY,
    grant_id    TEXT NOT NULL REFERENCES oauth_grants (grant_id) ON DELETE CASCADE,
    expires_at  INTEGER NOT NULL,
    rotated_at  INTEGER             -- NULL while this is the family's live token
);
CREATE INDEX oauth_refresh_tokens_grant ON oauth_refresh_tokens (grant_id);
"""


def _v1(conn: sqlite3.Connection) -> None:
    run_script(conn, _V1)


OAUTH_SCHEMA = Schema(component="oauth", migrations=[Migration(1, "oauth tables", _v1)])
