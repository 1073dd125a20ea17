"""The real server: the HTTP app of `app.py` plus the store, the embedder, the memory tools and OAuth.

`build_server_app` composes; `serve` adds logging, tokens and the listening socket. Everything
that can fail on bad configuration fails here, before the port opens, with a message that names
the setting and never its value.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import structlog
from aiohttp import web

from ownsona import __version__
from ownsona.app import AUTHENTICATOR_KEY, build_app
from ownsona.auth.tokens import TokenStore
from ownsona.config import Settings
from ownsona.db import Database
from ownsona.embeddings import Embedder, close_embedder, create_embedder
from ownsona.mcp.registry import ToolRegistry
from ownsona.schemas import store_database
from ownsona.memory.service import MemoryService
from ownsona.tools import register_memory_tools

if TYPE_CHECKING:
    from ownsona.auth.oauth import AccessTokenVerifier

log = structlog.get_logger("ownsona.server")

DATABASE_KEY = web.AppKey("ownsona_database", Database)
SERVICE_KEY = web.AppKey("ownsona_memory_service", MemoryService)


def build_server_app(settings: Settings, tokens: TokenStore, *, embedder: Embedder | None = None) -> web.Application:
    """The full OwnSona app. The database opens (and migrates) when the app starts."""
    database = store_database(settings.database_path)
    embedder = embedder or create_embedder(settings)
    service = MemoryService(database, embedder, settings)
    registry = ToolRegistry()
    register_memory_tools(registry, service)

    app = build_app(settings, tokens, registry)
    app[DATABASE_KEY] = database
    app[SERVICE_KEY] = service
    verifier = _setup_oauth(app, settings, database)
    app.cleanup_ctx.append(_lifecycle(settings, database, service, embedder, oauth_on=verifier is not None))
    return app


def _setup_oauth(app: web.Application, settings: Settings, database: Database) -> AccessTokenVerifier | None:
    """With OAUTH on, mount the authorization server and let /mcp accept its access tokens."""
    if not settings.oauth:
        return None
    from ownsona.auth.oauth import challenge_params, setup_oauth

    verifier = setup_oauth(app, settings, database)
    app[AUTHENTICATOR_KEY].set_verifier(verifier, challenge_params(settings))
    return verifier


def _lifecycle(settings: Settings, database: Database, service: MemoryService, embedder: Embedder, *, oauth_on: bool):
    async def lifecycle(app: web.Application) -> AsyncIterator[None]:
        await database.open()
        try:
            if oauth_on:
                from ownsona.auth.oauth import check_oauth_ready

                await check_oauth_ready(settings, database)
            await service.start()
            yield
        finally:
            await service.stop()
            await close_embedder(embedder)
            await database.close()

    return lifecycle


def serve(settings: Settings) -> None:
    """Run until SIGTERM or SIGINT, then drain requests and close the store cleanly."""
    from ownsona.access_log import StructuredAccessLogger
    from ownsona.logs import configure_logging
    from ownsona.redact import register_secret

    configure_logging(settings.log_level)
    env_token = settings.api_token.get_secret_value() if settings.api_token else None
    tokens = TokenStore(settings.tokens_path, env_token=env_token, default_user_id=settings.user_id)
    generated = tokens.ensure_default()  # loading registers every token value with the redactor
    if settings.embedding_api_key is not None:
        register_secret(settings.embedding_api_key.get_secret_value())

    app = build_server_app(settings, tokens)
    log.info(
        "ownsona_starting",
        version=__version__,
        listen=f"http://{_host_for_url(settings.host)}:{settings.port}/mcp",
        store=f"sqlite:{settings.database_path}",
        embeddings=f"{settings.embedding_provider}:{app[SERVICE_KEY].embedder.model}",
        oauth=settings.oauth,
        credentials=[t.name for t in tokens.tokens()],
    )
    if generated:
        log.info("token_generated", name="default", file=str(tokens.path), print_it_with="ownsona token show")
    web.run_app(
        app,
        host=settings.host,
        port=settings.port,
        print=None,
        access_log_class=StructuredAccessLogger,
        shutdown_timeout=10.0,
        handler_cancellation=False,
    )
    log.info("ownsona_stopped")


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
