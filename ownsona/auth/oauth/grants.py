"""Authorization codes, grants and refresh-token families: the token endpoint's state machine.

A *grant* is one consent by the owner to one client. Its refresh tokens form a family: each use
rotates the token; presenting a rotated one after the grace window is treated as theft and ends
the whole grant. Access tokens carry `sid` = grant id, so ending a grant also ends its access
tokens at once (the verifier looks the grant up).

Each function here runs inside one `Database.write` transaction and *returns* its failures
instead of raising them: a raise would roll back, and a failed code redemption must still burn
the code, a detected replay must still revoke the family.
"""

from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass

from ownsona.auth.oauth.crypto import digest, new_secret, pkce_matches

CODE_TTL_SECONDS = 60
FLOW_TTL_SECONDS = 600
USED_CODE_MEMORY_SECONDS = 600


@dataclass(frozen=True)
class Lifetimes:
    refresh: int
    family: int
    grace: int


@dataclass(frozen=True)
class Issued:
    """A successful code exchange or refresh: what the access token and response are made of."""

    grant_id: str
    client_id: str
    user_id: str
    scope: str
    resource: str
    refresh_token: str | None


@dataclass(frozen=True)
class Refused:
    """An OAuth error for the client, and the audit event (if any) worth recording."""

    error: str
    description: str
    event: str | None = None
    grant_id: str | None = None


def create_code(
    conn: sqlite3.Connection, *, client_id: str, redirect_uri: str, code_challenge: str, resource: str,
    scope: str, user_id: str, now: int,
) -> str:
    code = new_secret()
    conn.execute(
        "INSERT INTO oauth_codes (code_hash, client_id, redirect_uri, code_challenge, resource, scope, user_id, "
        "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (digest(code), client_id, redirect_uri, code_challenge, resource, scope, user_id, now + CODE_TTL_SECONDS),
    )
    return code


def exchange_code(
    conn: sqlite3.Connection, *, code: str, client_id: str, redirect_uri: str | None, verifier: str,
    resource: str | None, issue_refresh: bool, lifetimes: Lifetimes, now: int,
) -> Issued | Refused:
    """Redeem a code once. Any attempt burns it; a second redemption revokes what the first minted."""
    row = conn.execute(
        "SELECT client_id, redirect_uri, code_challenge, resource, scope, user_id, expires_at, used_at, grant_id "
        "FROM oauth_codes WHERE code_hash = ?",
        (digest(code),),
    ).fetchone()
    if row is None:
        return Refused("invalid_grant", "the authorization code is invalid or expired")
    code_client, code_redirect, challenge, code_resource, scope, user_id, expires_at, used_at, grant_id = row
    if used_at is not None:
        if grant_id:
            revoke_grant(conn, grant_id, "authorization code replayed", now)
        return Refused("invalid_grant", "the authorization code was already used", "oauth_code_replayed", grant_id)
    conn.execute("UPDATE oauth_codes SET used_at = ? WHERE code_hash = ?", (now, digest(code)))
    if now >= expires_at:
        return Refused("invalid_grant", "the authorization code is invalid or expired")
    if code_client != client_id:
        return Refused("invalid_grant", "the authorization code was issued to another client")
    if redirect_uri != code_redirect:
        return Refused("invalid_grant", "redirect_uri does not match the authorization request")
    if not pkce_matches(verifier, challenge):
        return Refused("invalid_grant", "code_verifier does not match the code challenge")
    if resource is not None and resource != code_resource:
        return Refused("invalid_target", "resource does not match the authorization request")
    grant_id = str(uuid.uuid4())
    conn.execute(
        "INSERT INTO oauth_grants (grant_id, client_id, user_id, scope, resource, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        (grant_id, client_id, user_id, scope, code_resource, now, now + lifetimes.family),
    )
    conn.execute("UPDATE oauth_codes SET grant_id = ? WHERE code_hash = ?", (grant_id, digest(code)))
    conn.execute("UPDATE oauth_clients SET last_used_at = ? WHERE client_id = ?", (now, client_id))
    refresh = _new_refresh(conn, grant_id, now, lifetimes.refresh, now + lifetimes.family) if issue_refresh else None
    return Issued(grant_id, client_id, user_id, scope, code_resource, refresh)


def _new_refresh(conn: sqlite3.Connection, grant_id: str, now: int, ttl: int, family_end: int) -> str:
    token = new_secret()
    conn.execute(
        "INSERT INTO oauth_refresh_tokens (token_hash, grant_id, expires_at) VALUES (?, ?, ?)",
        (digest(token), grant_id, min(now + ttl, family_end)),
    )
    return token


def use_refresh_token(
    conn: sqlite3.Connection, *, token: str, client_id: str, scope: str | None, resource: str | None,
    lifetimes: Lifetimes, now: int,
) -> Issued | Refused:
    """Rotate a refresh token. Reuse after the grace window revokes the family."""
    row = conn.execute(
        "SELECT rt.grant_id, rt.expires_at, rt.rotated_at, g.client_id, g.user_id, g.scope, g.resource, "
        "g.expires_at, g.revoked_at, c.revoked_at "
        "FROM oauth_refresh_tokens rt JOIN oauth_grants g ON g.grant_id = rt.grant_id "
        "JOIN oauth_clients c ON c.client_id = g.client_id WHERE rt.token_hash = ?",
        (digest(token),),
    ).fetchone()
    if row is None:
        return Refused("invalid_grant", "the refresh token is invalid")
    grant_id, expires_at, rotated_at, grant_client, user_id, grant_scope, grant_resource, family_end, \
        grant_revoked, client_revoked = row
    if grant_revoked is not None or client_revoked is not None:
        return Refused("invalid_grant", "the refresh token has been revoked")
    if grant_client != client_id:
        return Refused("invalid_grant", "the refresh token was issued to another client")
    if rotated_at is not None and now - rotated_at > lifetimes.grace:
        revoke_grant(conn, grant_id, "refresh token reused", now)
        return Refused("invalid_grant", "the refresh token was already used", "oauth_refresh_reuse", grant_id)
    if now >= expires_at or now >= family_end:
        return Refused("invalid_grant", "the refresh token has expired")
    granted = grant_scope.split()
    if scope is not None and not set(scope.split()) <= set(granted):
        return Refused("invalid_scope", "scope may only narrow the original grant")
    if resource is not None and resource != grant_resource:
        return Refused("invalid_target", "resource does not match the original grant")
    if rotated_at is None:
        conn.execute("UPDATE oauth_refresh_tokens SET rotated_at = ? WHERE token_hash = ?", (now, digest(token)))
    conn.execute("UPDATE oauth_clients SET last_used_at = ? WHERE client_id = ?", (now, client_id))
    successor = _new_refresh(conn, grant_id, now, lifetimes.refresh, family_end)
    narrowed = " ".join(s for s in granted if scope is None or s in scope.split())
    return Issued(grant_id, client_id, user_id, narrowed, grant_resource, successor)


def revoke_grant(conn: sqlite3.Connection, grant_id: str, why: str, now: int) -> bool:
    return conn.execute(
        "UPDATE oauth_grants SET revoked_at = ?, revoked_why = ? WHERE grant_id = ? AND revoked_at IS NULL",
        (now, why, grant_id),
    ).rowcount > 0


def grant_of_refresh_token(conn: sqlite3.Connection, token: str) -> tuple[str, str] | None:
    """(grant_id, client_id) of a refresh token, rotated or not."""
    row = conn.execute(
        "SELECT g.grant_id, g.client_id FROM oauth_refresh_tokens rt JOIN oauth_grants g ON g.grant_id = rt.grant_id "
        "WHERE rt.token_hash = ?",
        (digest(token),),
    ).fetchone()
    return (row[0], row[1]) if row else None


def grant_is_live(conn: sqlite3.Connection, grant_id: str, client_id: str) -> bool:
    """Whether an access token of this grant may still be honoured (neither grant nor client revoked)."""
    row = conn.execute(
        "SELECT 1 FROM oauth_grants g JOIN oauth_clients c ON c.client_id = g.client_id "
        "WHERE g.grant_id = ? AND g.client_id = ? AND g.revoked_at IS NULL AND c.revoked_at IS NULL",
        (grant_id, client_id),
    ).fetchone()
    return row is not None


def prune(conn: sqlite3.Connection, now: int) -> None:
    """Drop state nothing can use any more; revoked grants stay until their family would have ended."""
    conn.execute("DELETE FROM oauth_codes WHERE expires_at < ?", (now - USED_CODE_MEMORY_SECONDS,))
    conn.execute("DELETE FROM oauth_flows WHERE created_at < ?", (now - FLOW_TTL_SECONDS,))
    conn.execute("DELETE FROM oauth_sessions WHERE expires_at < ?", (now,))
    conn.execute("DELETE FROM oauth_refresh_tokens WHERE expires_at < ?", (now,))
    conn.execute("DELETE FROM oauth_grants WHERE expires_at < ?", (now,))
