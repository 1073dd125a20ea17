"""Request id and authentication middlewares.

Auth rules (the seed's design): `Authorization: Bearer <token>` first; the `token` query parameter
only when no Authorization header was sent, so a wrong header never falls back to the query.
Every failure gets the same bytes back, so a prober learns nothing from the answer, and one log
event that names the failure class and the address but nothing that was presented.
"""

from __future__ import annotations

import ipaddress
import json
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

import structlog
from aiohttp import web

from ownsona.auth.principal import PRINCIPAL_KEY, Principal
from ownsona.auth.tokens import TokenStore

log = structlog.get_logger("ownsona.auth")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

REQUEST_ID_KEY = web.RequestKey("ownsona_request_id", str)
CLIENT_ADDRESS_KEY = web.RequestKey("ownsona_client_address", str)

AUTH_FAILED_BODY = json.dumps(
    {"ok": False, "error": {"code": "AUTH_FAILED", "message": "Authentication required."}},
    separators=(",", ":"),
).encode()


class BearerVerifier(Protocol):
    """Checks a bearer that is not a static token (an OAuth access token)."""

    async def verify(self, bearer: str) -> Principal | None: ...


# --- request id and client address -----------------------------------------------------------


def client_address(request: web.Request, trusted_proxies: frozenset[str]) -> str:
    """The caller's address: X-Forwarded-For is believed only when the peer is a trusted proxy.

    Walk the chain from the right and take the first hop that is not itself a trusted proxy, so a
    client cannot choose its own address by sending the header.
    """
    peer = request.remote or "unknown"
    if peer not in trusted_proxies:
        return peer
    forwarded = request.headers.getall("X-Forwarded-For", [])
    hops = [hop.strip() for header in forwarded for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _is_ip(hop):
            break
        if hop not in trusted_proxies:
            return hop
    return peer


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def request_context_middleware(trusted_proxies: Iterable[str]) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Give each request an id and a trustworthy client address, bound into every log event."""
    trusted = frozenset(trusted_proxies)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = uuid.uuid4().hex[:16]
        request[REQUEST_ID_KEY] = request_id
        request[CLIENT_ADDRESS_KEY] = client_address(request, trusted)
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            exc.headers["X-Request-Id"] = request_id
            raise
        response.headers["X-Request-Id"] = request_id
        return response

    return middleware


# --- throttling ------------------------------------------------------------------------------


class FailureThrottle:
    """Sliding-window count of auth failures per address; an address over the limit waits.

    Bounded: at most `max_addresses` are tracked (oldest forgotten first), so a flood of
    spoofed sources cannot grow memory without end. Other addresses are never affected.
    """

    def __init__(self, limit: int, window_seconds: float, max_addresses: int = 10_000) -> None:
        self._limit = limit
        self._window = window_seconds
        self._max = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float | None = None) -> int:
        """Seconds the address must wait, or 0 when it may try."""
        now = time.monotonic() if now is None else now
        stamps = self._failures.get(address)
        if not stamps:
            return 0
        while stamps and stamps[0] <= now - self._window:
            stamps.popleft()
        if len(stamps) < self._limit:
            return 0
        return max(1, int(stamps[0] + self._window - now + 0.999))

    def record_failure(self, address: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        stamps = self._failures.pop(address, None) or deque()
        stamps.append(now)
        while len(stamps) > self._limit:
            stamps.popleft()
        self._failures[address] = stamps
        while len(self._failures) > self._max:
            self._failures.popitem(last=False)


# --- authentication --------------------------------------------------------------------------


def _presented_credential(request: web.Request) -> tuple[str | None, str]:
    """The credential to check and where it came from; (None, failure_class) when unusable."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            return None, "unsupported_scheme"
        value = value.strip()
        return (value, "header") if value else (None, "empty_bearer")
    if "token" in request.query:
        value = request.query.get("token", "").strip()
        return (value, "query") if value else (None, "empty_query_token")
    return None, "missing"


class Authenticator:
    """Turns a request into a Principal, or into the one 401 every failure shares."""

    def __init__(
        self,
        tokens: TokenStore,
        throttle: FailureThrottle,
        *,
        verifier: BearerVerifier | None = None,
        challenge_params: dict[str, str] | None = None,
    ) -> None:
        self._tokens = tokens
        self._throttle = throttle
        self._verifier = verifier
        params = {"realm": "ownsona", **(challenge_params or {})}
        self._challenge = "Bearer " + ", ".join(f'{k}="{v}"' for k, v in params.items())

    def set_verifier(self, verifier: BearerVerifier, challenge_params: dict[str, str]) -> None:
        """OAuth is wired in after the store opens; the challenge then points at its metadata."""
        self._verifier = verifier
        params = {"realm": "ownsona", **challenge_params}
        self._challenge = "Bearer " + ", ".join(f'{k}="{v}"' for k, v in params.items())

    def unauthorized(self) -> web.Response:
        return web.Response(
            status=401,
            body=AUTH_FAILED_BODY,
            content_type="application/json",
            headers={"WWW-Authenticate": self._challenge},
        )

    async def authenticate(self, request: web.Request) -> Principal | web.Response:
        address = request.get(CLIENT_ADDRESS_KEY) or request.remote or "unknown"
        wait = self._throttle.retry_after(address)
        if wait:
            log.warning("auth_throttled", remote=address, retry_after=wait)
            return web.Response(
                status=429,
                body=json.dumps({"ok": False, "error": {"code": "RATE_LIMITED",
                                                        "message": "Too many failed attempts; retry later."}}).encode(),
                content_type="application/json",
                headers={"Retry-After": str(wait)},
            )
        value, source = _presented_credential(request)
        principal: Principal | None = None
        if value is not None:
            token = self._tokens.match(value)
            if token is not None:
                principal = Principal(user_id=token.user_id, credential_name=token.name)
            elif self._verifier is not None and source == "header":
                # OAuth access tokens are accepted only in the header (RFC 6750 §2.3 is not offered);
                # `?token=` is the static-token path for clients that cannot send headers.
                principal = await self._verifier.verify(value)
        if principal is None:
            failure = source if value is None else f"invalid_{source}_token"
            self._throttle.record_failure(address)
            log.warning("auth_failed", remote=address, failure=failure, path=request.path)
            return self.unauthorized()
        return principal


def auth_middleware(
    authenticator: Authenticator, protected_paths: frozenset[str]
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Authenticate requests to the protected paths; everything else passes untouched."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in protected_paths:
            return await handler(request)
        outcome = await authenticator.authenticate(request)
        if isinstance(outcome, web.Response):
            return outcome
        request[PRINCIPAL_KEY] = outcome
        structlog.contextvars.bind_contextvars(credential=outcome.credential_name)
        return await handler(request)

    return middleware
