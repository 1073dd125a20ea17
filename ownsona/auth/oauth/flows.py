"""Pending authorization requests ("flows") and the owner's browser login sessions.

A flow holds a validated /oauth/authorize request between the page that shows it and the form
post that answers it, so the post cannot smuggle in other parameters. It is bound to the browser
by the hash of its CSRF cookie, lives 10 minutes, and is consumed by the decision. A session
lets the owner skip the password for a while; both ids are stored only as hashes.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from ownsona.auth.oauth.crypto import digest, new_secret
from ownsona.auth.oauth.grants import FLOW_TTL_SECONDS


@dataclass(frozen=True)
class Flow:
    client_id: str
    redirect_uri: str
    code_challenge: str
    resource: str
    scope: str
    state: str | None
    csrf_hash: str
    user_id: str | None
    created_at: int


def create_flow(conn: sqlite3.Connection, flow: Flow) -> str:
    flow_id = new_secret()
    conn.execute(
        "INSERT INTO oauth_flows (flow_hash, csrf_hash, client_id, redirect_uri, code_challenge, resource, scope, "
        "state, user_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (digest(flow_id), flow.csrf_hash, flow.client_id, flow.redirect_uri, flow.code_challenge, flow.resource,
         flow.scope, flow.state, flow.user_id, flow.created_at),
    )
    return flow_id


def get_flow(conn: sqlite3.Connection, flow_id: str, now: int) -> Flow | None:
    """The flow, if it exists and is younger than ten minutes (checked on every use)."""
    row = conn.execute(
        "SELECT client_id, redirect_uri, code_challenge, resource, scope, state, csrf_hash, user_id, created_at "
        "FROM oauth_flows WHERE flow_hash = ?",
        (digest(flow_id),),
    ).fetchone()
    if row is None:
        return None
    flow = Flow(*row)
    return flow if now - flow.created_at < FLOW_TTL_SECONDS else None


def mark_logged_in(conn: sqlite3.Connection, flow_id: str, user_id: str) -> None:
    conn.execute("UPDATE oauth_flows SET user_id = ? WHERE flow_hash = ?", (user_id, digest(flow_id)))


def consume_flow(conn: sqlite3.Connection, flow_id: str) -> bool:
    """Delete the flow; False if another request consumed it first (a double-clicked Allow)."""
    return conn.execute("DELETE FROM oauth_flows WHERE flow_hash = ?", (digest(flow_id),)).rowcount > 0


def create_session(conn: sqlite3.Connection, user_id: str, ttl: int, now: int) -> str:
    session = new_secret()
    conn.execute(
        "INSERT INTO oauth_sessions (session_hash, user_id, expires_at) VALUES (?, ?, ?)",
        (digest(session), user_id, now + ttl),
    )
    return session


def session_user(conn: sqlite3.Connection, session: str, now: int) -> str | None:
    row = conn.execute(
        "SELECT user_id FROM oauth_sessions WHERE session_hash = ? AND expires_at > ?", (digest(session), now)
    ).fetchone()
    return row[0] if row else None
