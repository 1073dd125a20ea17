"""`OAuthState`: everything the OAuth handlers share, built once from Settings and stored on the app."""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass, field

from aiohttp import web

from ownsona.auth.oauth.cimd import CimdFetcher
from ownsona.auth.oauth.grants import Lifetimes
from ownsona.auth.oauth.keys import KeyRing
from ownsona.auth.oauth.ratelimit import SlidingWindow
from ownsona.auth.oauth.urls import DEFAULT_REDIRECT_ALLOWLIST
from ownsona.config import Settings
from ownsona.db import Database

# Failed logins from all addresses together: a distributed guesser still meets a wall.
GLOBAL_LOGIN_FACTOR = 4
# Authorization requests per address: each one writes a flow row and may fetch a metadata
# document, so a stranger must not be able to drive either at will. An owner needs a handful.
AUTHORIZE_REQUESTS = 30
AUTHORIZE_WINDOW_SECONDS = 600.0


@dataclass
class OAuthState:
    settings: Settings
    db: Database
    issuer: str
    mcp_url: str
    allowlist: tuple[str, ...]
    lifetimes: Lifetimes
    login_limiter: SlidingWindow
    global_login_limiter: SlidingWindow
    dcr_limiter: SlidingWindow
    authorize_limiter: SlidingWindow
    cimd: CimdFetcher
    keyring: KeyRing | None = field(default=None)  # loaded at start-up
    pruner: asyncio.Task[None] | None = field(default=None)

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, cimd_ssl: ssl.SSLContext | None = None) -> OAuthState:
        if not settings.oauth or not settings.public_url or not settings.mcp_url:
            raise ValueError("OAuth is off or OWNSONA_PUBLIC_URL is unset")
        allowlist = DEFAULT_REDIRECT_ALLOWLIST + tuple(settings.oauth_redirect_allowlist)
        return cls(
            settings=settings,
            db=db,
            issuer=settings.public_url,
            mcp_url=settings.mcp_url,
            allowlist=allowlist,
            lifetimes=Lifetimes(
                refresh=settings.oauth_refresh_token_ttl_seconds,
                family=settings.oauth_refresh_family_max_seconds,
                grace=settings.oauth_refresh_grace_seconds,
            ),
            login_limiter=SlidingWindow(settings.oauth_login_attempts, settings.oauth_login_window_seconds),
            global_login_limiter=SlidingWindow(
                settings.oauth_login_attempts * GLOBAL_LOGIN_FACTOR, settings.oauth_login_window_seconds
            ),
            dcr_limiter=SlidingWindow(settings.oauth_dcr_rate_limit, settings.oauth_dcr_rate_window_seconds),
            authorize_limiter=SlidingWindow(AUTHORIZE_REQUESTS, AUTHORIZE_WINDOW_SECONDS),
            cimd=CimdFetcher(
                allow_private=settings.oauth_cimd_allow_private,
                timeout=settings.oauth_cimd_timeout_seconds,
                max_bytes=settings.oauth_cimd_max_bytes,
                allowlist=allowlist,
                ssl_context=cimd_ssl,
            ),
        )

    @property
    def prm_url(self) -> str:
        return f"{self.issuer}/.well-known/oauth-protected-resource"

    def endpoint(self, path: str) -> str:
        return f"{self.issuer}{path}"

    @staticmethod
    def now() -> int:
        return int(time.time())


OAUTH_STATE_KEY = web.AppKey("ownsona_oauth_state", OAuthState)
