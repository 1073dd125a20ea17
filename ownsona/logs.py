"""Logging: every record the process writes leaves as one scrubbed JSON line on stdout.

One `structlog.stdlib.ProcessorFormatter` on the root handler is the single choke point. It
serves structlog events and every stdlib record alike: aiohttp's access log and its "Error
handling request" tracebacks, asyncio, other libraries, `warnings` (via `captureWarnings`) and
uncaught exceptions (via `sys.excepthook`, `threading.excepthook`, `sys.unraisablehook`).
Its processors render exceptions first (never with frame locals) and then scrub the whole
event (`ownsona.redact`), so a URL inside an exception message or a traceback is cleaned too.

Under systemd, journald reads a leading `<N>` as the line's priority and strips it, so
`journalctl -p warning` works and `journalctl -o cat` stays pure JSON. The prefix is written
only when `$JOURNAL_STREAM` names the very file stdout is, so tests and pipes get pure JSON.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.processors import ExceptionRenderer, JSONRenderer, TimeStamper
from structlog.stdlib import ExtraAdder, ProcessorFormatter
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from ownsona.redact import REDACTOR, Redactor, register_secret

__all__ = ["build_formatter", "configure_logging", "get_logger", "register_secret", "reset_logging"]

MAX_FRAMES = 20
"""journald cuts lines at 48 KiB; twenty frames without locals stay well under it."""

_SYSLOG_PRIORITY = {"critical": 2, "exception": 3, "error": 3, "warning": 4, "warn": 4, "info": 6, "debug": 7}

# Processors every record gets before the formatter's own chain: structlog events get them in
# `structlog.configure`, stdlib records in `foreign_pre_chain`.
_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    TimeStamper(fmt="iso", utc=True),
]


class _ScrubProcessor:
    """The structlog processor that hands the whole event to the redactor."""

    def __init__(self, redactor: Redactor) -> None:
        self._redactor = redactor

    def __call__(self, _logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        return self._redactor.scrub(event_dict)  # type: ignore[no-any-return]


class _JournaldPrefix:
    """Wraps the renderer to prepend sd-daemon(3)'s `<N>` priority."""

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        priority = _SYSLOG_PRIORITY.get(str(event_dict.get("level", method)).lower(), 6)
        return f"<{priority}>{self._renderer(logger, method, event_dict)}"


class _JsonLineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose failure report cannot leak the record it failed on.

    `logging.Handler.handleError` prints the record's message and arguments to stderr, raw.
    """

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - stdlib name
        try:
            self.stream.write('{"event": "log record could not be rendered", "level": "error"}\n')
            self.flush()
        except Exception:  # the stream itself is gone; nothing left to tell
            pass


def journal_stream_matches(stream: TextIO) -> bool:
    """True when `stream` is the journald socket systemd connected (systemd.exec: $JOURNAL_STREAM)."""
    value = os.environ.get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    try:
        status = os.fstat(stream.fileno())
        return (status.st_dev, status.st_ino) == (int(device), int(inode))
    except (ValueError, OSError, AttributeError):
        return False


def build_formatter(*, journald: bool = False, scrub: bool = True, redactor: Redactor = REDACTOR) -> ProcessorFormatter:
    """The formatter every record passes through.

    `scrub=False` exists for one reason: the negative-control test proves that without the
    scrub processor the secrets do reach the output, so the leak tests can fail.
    """
    renderer: Processor = JSONRenderer()
    if journald:
        renderer = _JournaldPrefix(renderer)
    processors: list[Processor] = [
        ProcessorFormatter.remove_processors_meta,
        # Exceptions become data before scrubbing: the URL sits in exc_value and the frames.
        ExceptionRenderer(ExceptionDictTransformer(show_locals=False, max_frames=MAX_FRAMES)),
    ]
    if scrub:
        processors.append(_ScrubProcessor(redactor))
    processors.append(renderer)
    return ProcessorFormatter(foreign_pre_chain=[*_SHARED, ExtraAdder()], processors=processors)


def configure_logging(level: str = "info", stream: TextIO | None = None, secrets: Iterable[str] = ()) -> None:
    """Send every log record of the process, scrubbed, as JSON lines to `stream` (stdout).

    Safe to call again: the root handler is replaced, never added to. `secrets` are registered
    with the redactor (see `register_secret`) and stay registered.
    """
    for secret in secrets:
        register_secret(secret)
    target = stream if stream is not None else sys.stdout
    handler = _JsonLineHandler(target)
    handler.setFormatter(build_formatter(journald=journal_stream_matches(target)))

    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    lockdown()
    logging.captureWarnings(True)

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # No caching: a cached logger would keep an old chain after a reconfiguration (tests,
        # structlog.testing.capture_logs); binding per call costs microseconds next to rendering.
        cache_logger_on_first_use=False,
    )
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread
    sys.unraisablehook = _log_unraisable


def reset_logging() -> None:
    """Undo `configure_logging`: no root handler, stock hooks, structlog's defaults.

    For code that hosts OwnSona's pieces in a process of its own, such as the test suite.
    """
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.setLevel(logging.WARNING)
    logging.captureWarnings(False)
    sys.excepthook = sys.__excepthook__
    threading.excepthook = threading.__excepthook__
    sys.unraisablehook = sys.__unraisablehook__
    structlog.reset_defaults()


def lockdown() -> None:
    """Make every logger that exists so far write through the root handler only.

    Libraries (and `logging.basicConfig` in an SDK) attach their own stderr handlers or turn
    `propagate` off; either would let a record bypass the scrubber.
    """
    for logger in logging.root.manager.loggerDict.values():
        if isinstance(logger, logging.Logger):
            for old in list(logger.handlers):
                logger.removeHandler(old)
            logger.propagate = True


def get_logger(name: str) -> Any:
    """A structlog logger named `name` (the `logger` field of its events)."""
    return structlog.stdlib.get_logger(name)


def _log_uncaught(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
    get_logger("ownsona").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else None
    exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
    get_logger("ownsona").critical("uncaught exception in thread", thread=thread, exc_info=exc_info)


def _log_unraisable(unraisable: Any) -> None:
    # `unraisable.object` is often a repr holding arguments: it goes through the scrubber too.
    exc_info = (unraisable.exc_type, unraisable.exc_value, unraisable.exc_traceback)
    get_logger("ownsona").warning(
        "unraisable exception", context=unraisable.err_msg, object=unraisable.object, exc_info=exc_info
    )
