"""The `memory` component's tables and migrations.

Times are integer milliseconds since the epoch (see `timestamps`). `tags` keeps the caller's
order as a JSON array; `memory_tags` mirrors it one row per tag, maintained by triggers, so tag
filters, counts and `list_tags` are indexed lookups. The FTS5 index is an external-content table
over `text`, also kept in sync by triggers, so no code path can forget it.

Each vector is stored with the provider, model and dimension that made it: a change of embedding
model is visible per row, and `ownsona reembed` finds exactly the stale ones.

`updated_at` is the time of the last *content* change (text, tags, importance, expiry, the
confirmation time set by an update); maintenance writes (confirm, forget, restore, re-embedding)
leave it alone, so "prefer the most recently updated fact" keeps meaning something (§8.1 #10).
"""

from __future__ import annotations

import sqlite3

from ownsona.db import Migration, Schema, run_script
from ownsona.memory.search import FTS_TOKENIZER

# Migration 1 reads the tokenizer chosen by bench/quality. Once a release has shipped, changing
# FTS_TOKENIZER needs a new migration that recreates `memories_fts` and runs its 'rebuild'.

_V1 = f"""
CREATE TABLE memories (
    id                   INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused
    user_id              TEXT    NOT NULL,
    text                 TEXT    NOT NULL,
    normalized_text      TEXT    NOT NULL,
    tags                 TEXT    NOT NULL DEFAULT '[]' CHECK (json_type(tags) = 'array'),
    importance           REAL    NOT NULL DEFAULT 0.5 CHECK (importance BETWEEN 0 AND 1),
    source_provider      TEXT,
    capture_mode         TEXT    CHECK (capture_mode IN ('explicit', 'inferred')),
    session_id           TEXT,
    metadata             TEXT    NOT NULL DEFAULT '{{}}' CHECK (json_type(metadata) = 'object'),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL,
    deleted_at           INTEGER,
    expires_at           INTEGER,
    last_confirmed_at    INTEGER,
    forget_reason        TEXT,
    replaced_by_id       INTEGER REFERENCES memories (id) ON DELETE SET NULL,
    record_version       INTEGER NOT NULL DEFAULT 1,
    embedding            BLOB,
    embedding_provider   TEXT,
    embedding_model      TEXT,
    embedding_dimensions INTEGER,
    CHECK (embedding IS NULL OR length(embedding) = 4 * embedding_dimensions)
);

-- Exact duplicates: one live row per user and key. Tombstones do not hold the slot.
CREATE UNIQUE INDEX memories_user_key_live ON memories (user_id, normalized_text) WHERE deleted_at IS NULL;
CREATE INDEX memories_user_created ON memories (user_id, created_at DESC, id DESC);
CREATE INDEX memories_user_deleted ON memories (user_id, deleted_at);
CREATE INDEX memories_replaced_by ON memories (replaced_by_id) WHERE replaced_by_id IS NOT NULL;
CREATE INDEX memories_embedding_model ON memories (embedding_provider, embedding_model, id);

CREATE TABLE memory_tags (
    memory_id INTEGER NOT NULL REFERENCES memories (id) ON DELETE CASCADE,
    user_id   TEXT    NOT NULL,
    tag       TEXT    NOT NULL,
    PRIMARY KEY (memory_id, tag)
) WITHOUT ROWID;
CREATE INDEX memory_tags_user_tag ON memory_tags (user_id, tag);

CREATE TRIGGER memories_tags_insert AFTER INSERT ON memories BEGIN
    INSERT OR IGNORE INTO memory_tags (memory_id, user_id, tag)
        SELECT new.id, new.user_id, value FROM json_each(new.tags);
END;
CREATE TRIGGER memories_tags_update AFTER UPDATE OF tags ON memories BEGIN
    DELETE FROM memory_tags WHERE memory_id = new.id;
    INSERT OR IGNORE INTO memory_tags (memory_id, user_id, tag)
        SELECT new.id, new.user_id, value FROM json_each(new.tags);
END;

-- Bumped by bulk writers outside the server (ownsona import / reembed), so a running server
-- knows its in-memory vector index is stale and reloads it.
CREATE TABLE memory_epoch (id INTEGER PRIMARY KEY CHECK (id = 1), epoch INTEGER NOT NULL);
INSERT INTO memory_epoch (id, epoch) VALUES (1, 0);

CREATE VIRTUAL TABLE memories_fts USING fts5 (
    text, content = 'memories', content_rowid = 'id', tokenize = '{FTS_TOKENIZER}'
);
CREATE TRIGGER memories_fts_insert AFTER INSERT ON memories BEGIN
    INSERT INTO memories_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER memories_fts_delete AFTER DELETE ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
END;
CREATE TRIGGER memories_fts_update AFTER UPDATE OF text ON memories BEGIN
    INSERT INTO memories_fts (memories_fts, rowid, text) VALUES ('delete', old.id, old.text);
    INSERT INTO memories_fts (rowid, text) VALUES (new.id, new.text);
END;
"""


def _create_memories(conn: sqlite3.Connection) -> None:
    run_script(conn, _V1)


MEMORY_SCHEMA = Schema(
    component="memory",
    migrations=[Migration(1, "memories, tags, full-text index", _create_memories)],
)
