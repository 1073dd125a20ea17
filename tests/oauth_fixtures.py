"""The OAuth tests' fixtures, loaded with `pytest_plugins = ["oauth_fixtures"]` (helpers are in oauthkit)."""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog

from oauthkit import PASSWORD, OAuthHarness, StartOAuth, build_oauth_app, oauth_settings, owner_hash
from ownsona.auth.oauth.password import set_owner_password
from ownsona.auth.oauth.schema import OAUTH_SCHEMA
from ownsona.auth.oauth.state import OAUTH_STATE_KEY
from ownsona.db import Database


@pytest.fixture
async def start_oauth(home: Path, aiohttp_server: Any, unused_tcp_port_factory: Any) -> AsyncIterator[StartOAuth]:
    """Start an OAuth-enabled server (settings overridable per test); closed at teardown."""
    opened: list[tuple[Any, Database, aiohttp.ClientSession]] = []

    async def start(*, password: str | None = PASSWORD, setup_kwargs: dict[str, Any] | None = None,
                    **env: str) -> OAuthHarness:
        port = unused_tcp_port_factory()
        settings = oauth_settings(home, port, **env)
        db = Database(settings.database_path, [OAUTH_SCHEMA])
        await db.open()
        http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        if password == PASSWORD:
            stored = owner_hash()  # hashed once per session: argon2id is slow on purpose
            await db.write(lambda conn: conn.execute(
                "INSERT OR REPLACE INTO oauth_owner (id, password_hash, updated_at) VALUES (1, ?, 0)", (stored,)))
        elif password:
            await set_owner_password(db, password)
        app = await build_oauth_app(settings, db, **(setup_kwargs or {}))
        server = await aiohttp_server(app, port=port)
        opened.append((server, db, http))
        return OAuthHarness(settings, db, http, settings.public_url or "", app[OAUTH_STATE_KEY])

    yield start
    for server, db, http in opened:
        await http.close()
        await server.close()
        await db.close()


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of the process, rendered by the production pipeline, into a buffer."""
    from ownsona import logs

    stream = io.StringIO()
    logs.configure_logging(level="debug", stream=stream)
    yield stream
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    logging.captureWarnings(False)
    sys.excepthook = sys.__excepthook__
    threading.excepthook = threading.__excepthook__
    sys.unraisablehook = sys.__unraisablehook__
    structlog.reset_defaults()
    logging.getLogger().setLevel(logging.WARNING)
