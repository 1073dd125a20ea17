"""One structured access event per HTTP request, never a raw request line.

aiohttp's default `AccessLogger` formats `%r`, the request line with its query string, where a
`?token=` sits. This logger builds the event from parts instead: the path without its query,
the status, the sizes, and the caller's credential *name* as the auth middleware recorded it.
The scrubber in `ownsona.logs` would clean the default logger's line too; this one gives it
nothing to clean.
"""

from __future__ import annotations

import logging

import structlog
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from ownsona.auth.middleware import CLIENT_ADDRESS_KEY, REQUEST_ID_KEY
from ownsona.auth.principal import PRINCIPAL_KEY


class StructuredAccessLogger(AbstractAccessLogger):
    """Pass as `access_log_class=` to `web.run_app` or `web.AppRunner`."""

    __slots__ = ("_events",)

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._events = structlog.stdlib.get_logger(logger.name)

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        principal = request.get(PRINCIPAL_KEY)
        referer = request.headers.get("Referer")
        self._events.info(
            "request",
            method=request.method,
            path=request.rel_url.path,
            status=response.status,
            bytes=response.body_length,
            duration_ms=round(time * 1000, 1),
            remote=request.get(CLIENT_ADDRESS_KEY) or request.remote,
            request_id=request.get(REQUEST_ID_KEY),
            credential=principal.credential_name if principal is not None else None,
            referer=referer.split("?", 1)[0] if referer else None,
            user_agent=request.headers.get("User-Agent"),
        )
