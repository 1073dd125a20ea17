"""The log pipeline: whatever goes in, no secret and no query string comes out, and every line is JSON.

Each test logs through the real configuration into a StringIO. The secret is the literal
`SECRET`, which is never registered with the redactor (except where a test says so), so these
tests exercise the structural rules: query cutting, credential keys, name=value pairs.
`test_negative_control_*` takes the scrub processor out and shows the same checks then fail.
"""

from __future__ import annotations

import io
import json
import logging
import os
import sys
import threading
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import yarl
from aiohttp import ClientSession, web
from hypothesis import given
from hypothesis import strategies as st

from ownsona import logs
from ownsona.access_log import StructuredAccessLogger
from ownsona.auth.middleware import request_context_middleware
from ownsona.auth.principal import PRINCIPAL_KEY, Principal
from ownsona.redact import REDACTED, Redactor, register_secret


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure_logging(level="debug", stream=stream)
    yield stream
    logs.reset_logging()


def events(stream: io.StringIO) -> list[dict[str, Any]]:
    """Every line of output, parsed; a line that is not JSON fails the test here."""
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def assert_clean(stream: io.StringIO, *secrets: str) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text, "nothing was logged"
    for secret in ("SECRET", "token=", *secrets):
        assert secret not in text
    return events(stream)


def log_leaky_native_event() -> None:
    logs.get_logger("test").info(
        "incoming",
        url="https://mem.example/mcp?token=SECRET&x=1",
        path_qs="/mcp?token=SECRET",
        target=yarl.URL("https://mem.example/mcp?token=SECRET"),
        headers={"Authorization": "Bearer SECRET", "inner": {"Cookie": "sid=SECRET", "X-Api-Key": "SECRET"}},
        request_line="GET /mcp?token=SECRET HTTP/1.1",
        hops=[{"referer": "https://chat.example/c?token=SECRET"}],
    )


# --- events written by our code and by stdlib loggers ------------------------------------------


def test_native_event_loses_queries_and_credential_values(captured: io.StringIO) -> None:
    log_leaky_native_event()
    [event] = assert_clean(captured)
    assert event["event"] == "incoming"
    assert event["path_qs"] == f"/mcp?{REDACTED}"
    assert event["request_line"] == f"GET /mcp?{REDACTED} HTTP/1.1"
    assert event["target"] == f"https://mem.example/mcp?{REDACTED}"
    assert event["headers"]["Authorization"] == REDACTED
    assert event["headers"]["inner"] == {"Cookie": REDACTED, "X-Api-Key": REDACTED}
    assert event["hops"][0]["referer"] == f"https://chat.example/c?{REDACTED}"
    assert event["level"] == "info" and event["logger"] == "test" and "timestamp" in event


def test_stdlib_percent_arguments_are_scrubbed_after_interpolation(captured: io.StringIO) -> None:
    logging.getLogger("some.library").warning("fetching %s for %r", "https://api.example/v1?token=SECRET", b"/a?b=SECRET")
    [event] = assert_clean(captured)
    assert event["event"] == f"fetching https://api.example/v1?{REDACTED} for b'/a?{REDACTED}'"
    assert event["logger"] == "some.library" and event["level"] == "warning"


def test_exception_messages_and_tracebacks_are_scrubbed(captured: io.StringIO) -> None:
    try:
        raise RuntimeError("upstream refused https://mem.example/mcp?token=SECRET")
    except RuntimeError:
        logs.get_logger("test").exception("structlog saw it")
        logging.getLogger("some.library").exception("stdlib saw it at %s", "/mcp?token=SECRET")
    first, second = assert_clean(captured)
    for event in (first, second):
        [stack] = event["exception"]
        assert stack["exc_type"] == "RuntimeError"
        assert stack["exc_value"] == f"upstream refused https://mem.example/mcp?{REDACTED}"
        assert stack["frames"], "the traceback itself must survive scrubbing"
    assert second["event"] == f"stdlib saw it at /mcp?{REDACTED}"


def test_frame_locals_are_never_rendered(captured: io.StringIO) -> None:
    def check(bearer: str) -> None:
        expected = "something else"
        if bearer != expected:
            raise PermissionError("bad credential")

    try:
        check("LOCALSECRET-value-in-a-frame")
    except PermissionError:
        logs.get_logger("test").exception("check failed")
    [event] = assert_clean(captured, "LOCALSECRET")
    assert [frame["name"] for frame in event["exception"][0]["frames"]][-1] == "check"
    assert all("locals" not in frame for frame in event["exception"][0]["frames"])


def test_secret_pairs_headers_and_bearer_in_free_text_are_redacted(captured: io.StringIO) -> None:
    logs.get_logger("test").info(
        "free text",
        body="grant_type=authorization_code&code=SECRET&code_verifier=SECRET&client_secret=SECRET",
        encoded="redirect=%2Fmcp%3Ftoken%3DSECRET and access_token%3DSECRET",
        raw="Authorization: Bearer SECRET\r\nCookie: sid=SECRET",
        repr_text="{'authorization': 'Bearer SECRET', \"refresh_token\": \"SECRET\"}",
        scheme="retrying with Basic U0VDUkVU== and bearer SECRETxyz42, missing bearer token",
        raw_headers=((b"Host", b"mem.example"), (b"Cookie", b"sid=SECRET")),
        bytes_repr="{b'Cookie': b'sid=SECRET'}",
        bare_query="?token=SECRET",
        spaced_query="query was ?x=SECRET",
    )
    [event] = assert_clean(captured, "U0VDUkVU")
    assert event["raw"] == f"Authorization: {REDACTED}\r\nCookie: {REDACTED}"
    assert event["raw_headers"] == [["Host", "mem.example"], ["Cookie", REDACTED]]
    assert event["spaced_query"] == f"query was ?{REDACTED}"
    assert event["scheme"] == f"retrying with Basic {REDACTED} and bearer {REDACTED}, missing bearer token"


def test_error_codes_are_kept_but_an_authorization_code_is_not(captured: io.StringIO) -> None:
    logs.get_logger("test").info(
        "tool failed", code="AUTH_FAILED", error={"code": -32602, "message": "bad params"}, oauth={"code": "SECRETabc123"}
    )
    [event] = assert_clean(captured)
    assert event["code"] == "AUTH_FAILED"
    assert event["error"] == {"code": -32602, "message": "bad params"}
    assert event["oauth"] == {"code": REDACTED}


def test_a_registered_secret_is_redacted_even_in_a_path_or_free_text(captured: io.StringIO) -> None:
    secret = "PATHSECRET-4f1c2b9e7a"
    register_secret(secret)
    logs.get_logger("test").info("lookup", path=f"/files/{secret}/x", note=f"the value {secret} and {secret}%21")
    logging.getLogger("some.library").info("GET /files/%s", secret)
    first, second = assert_clean(captured, secret)
    assert first["path"] == f"/files/{REDACTED}/x"
    assert second["event"] == f"GET /files/{REDACTED}"


def test_a_short_secret_cannot_be_registered() -> None:
    with pytest.raises(ValueError, match="at least 8 characters"):
        Redactor(["abc"])


@given(
    prefix=st.text(alphabet="abc /:.-_\"'", max_size=20),
    query=st.text(alphabet=st.characters(blacklist_categories=["Cs", "Zs", "Zl", "Zp", "Cc"], blacklist_characters="\"'<>\\`"), min_size=1, max_size=40),
)
def test_any_query_after_a_url_is_cut(prefix: str, query: str) -> None:
    text = f"{prefix} https://h.example/mcp?{query}QUERYMARK tail"
    scrubbed = Redactor().scrub({"msg": text})["msg"]
    assert "QUERYMARK" not in scrubbed
    assert scrubbed.endswith(f"https://h.example/mcp?{REDACTED} tail")


# --- everything else that writes logs -----------------------------------------------------------


def test_warnings_go_through_the_pipeline(captured: io.StringIO) -> None:
    warnings.warn("deprecated call to /old?token=SECRET", DeprecationWarning, stacklevel=1)
    [event] = assert_clean(captured)
    assert event["logger"] == "py.warnings" and event["level"] == "warning"


def test_uncaught_exceptions_in_main_and_threads_are_logged_as_json(captured: io.StringIO) -> None:
    try:
        raise ValueError("bad input at /mcp?token=SECRET")
    except ValueError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)

    def crash() -> None:
        raise OSError("cannot reach https://x.example/?token=SECRET")

    thread = threading.Thread(target=crash, name="writer")
    thread.start()
    thread.join()
    main, in_thread = assert_clean(captured)
    assert main["event"] == "uncaught exception" and main["level"] == "critical"
    assert in_thread["thread"] == "writer" and in_thread["exception"][0]["exc_type"] == "OSError"


def test_configuring_twice_keeps_one_handler_and_locks_down_library_handlers(captured: io.StringIO) -> None:
    own_stream = io.StringIO()
    library = logging.getLogger("chatty.library")
    library.addHandler(logging.StreamHandler(own_stream))
    library.propagate = False

    logs.configure_logging(level="info", stream=captured)
    logs.configure_logging(level="info", stream=captured)
    library.info("hello from /lib?token=SECRET")
    logs.get_logger("test").debug("below the level")

    assert len(logging.getLogger().handlers) == 1
    assert own_stream.getvalue() == ""
    [event] = assert_clean(captured)
    assert event["logger"] == "chatty.library"


def test_journald_priority_prefix_only_when_stdout_is_the_journal_stream(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, captured: io.StringIO
) -> None:
    with open(tmp_path / "journal", "w+", encoding="utf-8") as journal:
        status = os.fstat(journal.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")
        logs.configure_logging(stream=journal)
        logs.get_logger("test").info("started")
        logs.get_logger("test").error("failed at /mcp?token=SECRET")
        journal.flush()
        lines = (tmp_path / "journal").read_text().splitlines()
    assert [line[:3] for line in lines] == ["<6>", "<3>"]
    assert json.loads(lines[1][3:])["event"] == f"failed at /mcp?{REDACTED}"

    logs.configure_logging(stream=captured)  # JOURNAL_STREAM still set, but names another file
    logs.get_logger("test").info("started")
    assert captured.getvalue().startswith("{")


# --- aiohttp: its access log, its error log, and our structured access log ---------------------


async def boom(request: web.Request) -> web.Response:
    raise RuntimeError(f"cannot serve {request.url} (raw {request.raw_path})")


async def ok(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def send_leaky_requests(base: yarl.URL) -> None:
    headers = {
        "Referer": "https://chat.example/c/1?token=SECRET",
        "Authorization": "Bearer SECRET",
        "Cookie": "sid=SECRET",
    }
    async with ClientSession() as session:
        async with session.get(base / "mcp", params={"token": "SECRET", "x": "1"}, headers=headers) as response:
            assert response.status == 200
        async with session.get(base / "boom", params={"token": "SECRET"}) as response:
            assert response.status == 500
            assert "SECRET" not in await response.text()


def leaky_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/mcp", ok)
    app.router.add_get("/boom", boom)
    return app


async def test_aiohttp_default_access_log_and_error_traceback_are_scrubbed(
    captured: io.StringIO, aiohttp_server: Any
) -> None:
    server = await aiohttp_server(leaky_app())
    await send_leaky_requests(server.make_url("/"))
    lines = assert_clean(captured)
    by_logger = {(e["logger"], e["event"].split(" ")[0]) for e in lines}
    assert ("aiohttp.server", "Error") in by_logger
    [error] = [e for e in lines if e["logger"] == "aiohttp.server"]
    assert error["event"].startswith("Error handling request from 127.0.0.1")
    assert f"/boom?{REDACTED}" in error["exception"][0]["exc_value"]
    access = [e for e in lines if e["logger"] == "aiohttp.access"]
    assert len(access) == 2
    assert f'"GET /mcp?{REDACTED} HTTP/1.1" 200' in access[0]["event"]
    assert access[0]["first_request_line"] == f"GET /mcp?{REDACTED} HTTP/1.1"


async def test_structured_access_log_names_the_credential_and_never_the_query(
    captured: io.StringIO, aiohttp_server: Any
) -> None:
    @web.middleware
    async def fake_auth(request: web.Request, handler: Any) -> web.StreamResponse:
        request[PRINCIPAL_KEY] = Principal(user_id="me", credential_name="laptop")
        return await handler(request)

    app = leaky_app()
    app.middlewares.extend([request_context_middleware(["127.0.0.1"]), fake_auth])
    server = await aiohttp_server(app, access_log_class=StructuredAccessLogger)
    await send_leaky_requests(server.make_url("/"))
    lines = assert_clean(captured)
    [mcp, failed] = [e for e in lines if e["logger"] == "aiohttp.access"]
    assert mcp["event"] == "request"
    assert {k: mcp[k] for k in ("method", "path", "status", "remote", "credential", "referer")} == {
        "method": "GET",
        "path": "/mcp",
        "status": 200,
        "remote": "127.0.0.1",
        "credential": "laptop",
        "referer": "https://chat.example/c/1",
    }
    assert mcp["bytes"] > 0 and mcp["duration_ms"] >= 0 and len(mcp["request_id"]) == 16
    assert failed["path"] == "/boom" and failed["status"] == 500


# --- negative control: the checks above can fail ----------------------------------------------


async def test_negative_control_without_the_scrub_processor_secrets_leak(
    captured: io.StringIO, aiohttp_server: Any
) -> None:
    logs.configure_logging(stream=captured)  # inside the test, so the root handler is ours alone
    [handler] = logging.getLogger().handlers
    handler.setFormatter(logs.build_formatter(scrub=False))
    log_leaky_native_event()
    server = await aiohttp_server(leaky_app())
    await send_leaky_requests(server.make_url("/"))
    with pytest.raises(AssertionError):
        assert_clean(captured)
    lines = events(captured)
    [native] = [e for e in lines if e["event"] == "incoming"]
    assert "token=SECRET" in native["url"] and native["headers"]["Authorization"] == "Bearer SECRET"
    assert any("?token=SECRET" in e["event"] for e in lines if e["logger"] == "aiohttp.access")
    assert any("token=SECRET" in e["exception"][0]["exc_value"] for e in lines if e["logger"] == "aiohttp.server")


def test_reset_logging_undoes_configuration() -> None:
    logs.configure_logging(stream=io.StringIO())
    logs.reset_logging()
    assert logging.getLogger().handlers == []
    assert sys.excepthook is sys.__excepthook__ and threading.excepthook is threading.__excepthook__
    assert logging.getLogger().level == logging.WARNING


class FlakyStream(io.StringIO):
    """Refuses the first write, as a full disk or a closed pipe would."""

    def __init__(self) -> None:
        super().__init__()
        self.refused = False

    def write(self, text: str) -> int:
        if not self.refused:
            self.refused = True
            raise OSError("no space left on device")
        return super().write(text)


def test_a_failed_write_is_reported_without_the_record(capsys: pytest.CaptureFixture[str]) -> None:
    stream = FlakyStream()
    logs.configure_logging(stream=stream)
    try:
        logging.getLogger("some.library").error("could not fetch %s", "https://x.example/?token=SECRET")
    finally:
        logs.reset_logging()
    # The stock handler would print "--- Logging error ---", the traceback and the raw message to stderr.
    assert capsys.readouterr().err == ""
    assert [json.loads(line)["event"] for line in stream.getvalue().splitlines()] == ["log record could not be rendered"]
