"""`/oauth/authorize`: validate the request, sign the owner in, ask for consent, issue a code.

Order matters. The client and its exact redirect URI are checked first, and until both pass every
problem is an HTML page, never a redirect: otherwise this endpoint would bounce browsers to any
address an attacker names. After that, errors go back to the client as RFC 6749 redirects, all
carrying `iss` (RFC 9207) and the client's `state`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import structlog
from aiohttp import web

from ownsona.auth.oauth import pages
from ownsona.auth.oauth.cimd import CimdError, is_metadata_url
from ownsona.auth.oauth.clients import SCOPES_SUPPORTED, Client, get_client, save_client
from ownsona.auth.oauth.crypto import digest, new_secret, same, valid_challenge
from ownsona.auth.oauth.flows import (
    Flow,
    consume_flow,
    create_flow,
    create_session,
    get_flow,
    mark_logged_in,
    session_user,
)
from ownsona.auth.oauth.grants import FLOW_TTL_SECONDS, create_code
from ownsona.auth.oauth.httputil import remote_address
from ownsona.auth.oauth.password import verify_owner_password
from ownsona.auth.oauth.state import OAUTH_STATE_KEY, OAuthState
from ownsona.auth.oauth.urls import canonical_resource, origin_of, redirect_host, redirect_uri_problem, with_query

log = structlog.get_logger("ownsona.oauth")

CSRF_COOKIE = "__Host-ownsona_csrf"
SESSION_COOKIE = "__Host-ownsona_session"
# Scopes clients commonly add that need no grant of their own here: refresh tokens are always issued.
IGNORED_SCOPES = frozenset({"offline_access"})
MAX_LOGGED_ID = 200  # a client_id is caller-supplied: log a bounded prefix


class AuthorizeRejected(Exception):
    """The request cannot be trusted enough to redirect: show `message` on a page."""


async def find_client(state: OAuthState, client_id: str) -> Client:
    """A registered client, or a metadata-document client fetched (or taken from cache) now."""
    now = state.now()
    client = await state.db.read(lambda conn: get_client(conn, client_id))
    if client is not None and client.revoked_at is not None:
        raise AuthorizeRejected("This client has been revoked by the owner.")
    if client is not None and (client.source == "dcr" or (client.metadata_expires_at or 0) > now):
        return client
    if not (state.settings.oauth_cimd and is_metadata_url(client_id)):
        raise AuthorizeRejected("Unknown client.")
    try:
        metadata, max_age = await state.cimd.fetch(client_id)
    except CimdError as exc:
        log.warning("oauth_cimd_rejected", client_id=client_id[:MAX_LOGGED_ID], reason=str(exc))
        raise AuthorizeRejected(f"The client could not be verified: {exc}.") from None
    fetched = Client(client_id=client_id, source="cimd", created_at=now, metadata_expires_at=now + max_age, **metadata)
    await state.db.write(lambda conn: save_client(conn, fetched))
    return fetched


def _redirect_uri(state: OAuthState, client: Client, requested: str | None) -> str:
    # Required even when only one is registered: the token request must then repeat it, and
    # every MCP client sends it anyway.
    if requested is None:
        raise AuthorizeRejected("The request names no redirect_uri.")
    if requested not in client.redirect_uris:  # exact string comparison, no normalisation
        raise AuthorizeRejected("The redirect_uri is not registered for this client.")
    if redirect_uri_problem(requested, state.allowlist):  # the allow-list may have shrunk since
        raise AuthorizeRejected("The redirect_uri is no longer allowed by this server.")
    return requested


class ErrorRedirect(Exception):
    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _checked_request(state: OAuthState, client: Client, query: Mapping[str, str]) -> dict[str, str]:
    """The code-bearing parameters, validated; raises ErrorRedirect for the client to see."""
    if query.get("response_type") != "code":
        raise ErrorRedirect("unsupported_response_type", "response_type must be code")
    if "authorization_code" not in client.grant_types:
        raise ErrorRedirect("unauthorized_client", "this client may not use the authorization code grant")
    challenge = query.get("code_challenge", "")
    if not challenge:
        raise ErrorRedirect("invalid_request", "code_challenge is required (PKCE)")
    if query.get("code_challenge_method") != "S256":
        raise ErrorRedirect("invalid_request", "code_challenge_method must be S256")
    if not valid_challenge(challenge):
        raise ErrorRedirect("invalid_request", "code_challenge is not a valid S256 challenge")
    requested = [s for s in query.get("scope", "").split() if s not in IGNORED_SCOPES]
    allowed = client.scope.split()
    if any(s not in allowed for s in requested):
        raise ErrorRedirect("invalid_scope", "the requested scope is not available to this client")
    scope = " ".join(requested) or " ".join(s for s in SCOPES_SUPPORTED if s in allowed)
    resource = canonical_resource(query.get("resource", state.mcp_url), state.issuer, state.mcp_url)
    if resource is None:
        raise ErrorRedirect("invalid_target", "resource must be this server's MCP URL")
    return {"code_challenge": challenge, "scope": scope, "resource": resource}


def _response_redirect(state: OAuthState, redirect_uri: str, params: dict[str, str], client_state: str | None
                       ) -> web.HTTPFound:
    params = {**params, "iss": state.issuer}
    if client_state:
        params["state"] = client_state
    return web.HTTPFound(with_query(redirect_uri, params), headers={"Cache-Control": "no-store"})


def _set_cookie(response: web.StreamResponse, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Lax")


async def get_authorize(request: web.Request) -> web.StreamResponse:
    state = request.app[OAUTH_STATE_KEY]
    address = remote_address(request, state.settings)
    if state.authorize_limiter.blocked_for(address):
        log.warning("oauth_authorize_rate_limited", remote=address)
        return pages.error_page("Too many sign-in requests from this address; try again in a few minutes.",
                                status=429)
    state.authorize_limiter.hit(address)
    query = request.query
    client_id = query.get("client_id")
    if not client_id:
        return pages.error_page("The request names no client (client_id is missing).")
    try:
        client = await find_client(state, client_id)
        redirect_uri = _redirect_uri(state, client, query.get("redirect_uri"))
    except AuthorizeRejected as exc:
        log.info("oauth_authorize_rejected", remote=address, client_id=client_id[:MAX_LOGGED_ID], reason=str(exc))
        return pages.error_page(str(exc))
    client_state = query.get("state")
    try:
        checked = _checked_request(state, client, query)
    except ErrorRedirect as exc:
        log.info("oauth_authorize_rejected", remote=address, client_id=client_id, reason=exc.error)
        raise _response_redirect(state, redirect_uri, {"error": exc.error, "error_description": exc.description},
                                 client_state) from None

    now = state.now()
    csrf = request.cookies.get(CSRF_COOKIE) or ""
    if len(csrf) < 40:
        csrf = new_secret()
    session = request.cookies.get(SESSION_COOKIE)
    user_id = await state.db.read(lambda conn: session_user(conn, session, now)) if session else None
    flow = Flow(client_id=client.client_id, redirect_uri=redirect_uri, state=client_state, csrf_hash=digest(csrf),
                user_id=user_id, created_at=now, **checked)
    flow_id = await state.db.write(lambda conn: create_flow(conn, flow))
    if user_id is None:
        response = pages.login_page(client_name=client.client_name, flow_id=flow_id, csrf=csrf)
    else:
        response = _consent(client, flow, flow_id, csrf)
    _set_cookie(response, CSRF_COOKIE, csrf, FLOW_TTL_SECONDS)
    return response


def _consent(client: Client, flow: Flow, flow_id: str, csrf: str) -> web.Response:
    return pages.consent_page(client_name=client.client_name, redirect_host=redirect_host(flow.redirect_uri),
                              redirect_origin=origin_of(flow.redirect_uri), scope=flow.scope, flow_id=flow_id,
                              csrf=csrf)


async def post_authorize(request: web.Request) -> web.StreamResponse:
    state = request.app[OAUTH_STATE_KEY]
    form = await request.post()
    flow_id, csrf = str(form.get("flow", "")), str(form.get("csrf", ""))
    now = state.now()
    flow = await state.db.read(lambda conn: get_flow(conn, flow_id, now)) if flow_id else None
    if flow is None:
        return pages.error_page("This sign-in request has expired or was already answered.")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (csrf and cookie and same(csrf, cookie) and same(digest(csrf), flow.csrf_hash)):
        log.warning("oauth_csrf_rejected", remote=remote_address(request, state.settings), client_id=flow.client_id)
        return pages.error_page("The form could not be verified (CSRF check failed).", status=403)
    client = await state.db.read(lambda conn: get_client(conn, flow.client_id))
    if client is None or client.revoked_at is not None:
        return pages.error_page("This client has been revoked by the owner.")
    stage = form.get("stage")
    if stage == "login":
        return await _login(request, state, client, flow, flow_id, csrf, str(form.get("password", "")))
    if stage == "consent":
        # Consent needs both: a sign-in on this flow, and a live session in this browser (a new
        # password ends sessions, and must also end consent pages already on screen).
        session = request.cookies.get(SESSION_COOKIE)
        user_id = await state.db.read(lambda conn: session_user(conn, session, now)) if session else None
        if flow.user_id is None or user_id != flow.user_id:
            return pages.login_page(client_name=client.client_name, flow_id=flow_id, csrf=csrf)
        return await _decide(request, state, client, flow, flow_id, user_id, form.get("decision") == "allow")
    return pages.error_page("Unknown form stage.")


async def _login(request: web.Request, state: OAuthState, client: Client, flow: Flow, flow_id: str, csrf: str,
                 password: str) -> web.Response:
    address = remote_address(request, state.settings)
    wait = max(state.login_limiter.blocked_for(address), state.global_login_limiter.blocked_for("*"))
    if wait:
        log.warning("oauth_login_rate_limited", remote=address, client_id=client.client_id, retry_after=int(wait) + 1)
        minutes = int(wait // 60) + 1
        return pages.login_page(client_name=client.client_name, flow_id=flow_id, csrf=csrf, status=429,
                                error=f"Too many failed attempts. Try again in {minutes} minute(s).")
    if not await verify_owner_password(state.db, password):
        state.login_limiter.hit(address)
        state.global_login_limiter.hit("*")
        log.warning("oauth_login_failed", remote=address, client_id=client.client_id)
        return pages.login_page(client_name=client.client_name, flow_id=flow_id, csrf=csrf,
                                error="That password is not right.")
    state.login_limiter.clear(address)
    user_id = state.settings.user_id
    now = state.now()
    ttl = state.settings.oauth_session_ttl_seconds

    def sign_in(conn: Any) -> str:
        mark_logged_in(conn, flow_id, user_id)
        return create_session(conn, user_id, ttl, now)

    session = await state.db.write(sign_in)
    log.info("oauth_login_succeeded", remote=address, client_id=client.client_id)
    response = _consent(client, flow, flow_id, csrf)
    _set_cookie(response, SESSION_COOKIE, session, ttl)
    return response


async def _decide(request: web.Request, state: OAuthState, client: Client, flow: Flow, flow_id: str, user_id: str,
                  allow: bool) -> web.StreamResponse:
    address = remote_address(request, state.settings)
    now = state.now()

    def answer(conn: Any) -> str | None:
        if not consume_flow(conn, flow_id):
            return None
        if not allow:
            return ""
        return create_code(conn, client_id=client.client_id, redirect_uri=flow.redirect_uri,
                           code_challenge=flow.code_challenge, resource=flow.resource, scope=flow.scope,
                           user_id=user_id, now=now)

    code = await state.db.write(answer)
    if code is None:
        return pages.error_page("This sign-in request has expired or was already answered.")
    if not code:
        log.info("oauth_consent_denied", remote=address, client_id=client.client_id)
        raise _response_redirect(state, flow.redirect_uri,
                                 {"error": "access_denied", "error_description": "the owner denied access"},
                                 flow.state)
    log.info("oauth_consent_granted", remote=address, client_id=client.client_id, scope=flow.scope,
             redirect_host=redirect_host(flow.redirect_uri))
    raise _response_redirect(state, flow.redirect_uri, {"code": code}, flow.state)
