"""`ownsona doctor`: run against the real HTTP stack (auth middleware + transport) with memory tools
that honour the wire contract, and through the real command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import BaseModel, Field

from ownsona.app import build_app
from ownsona.commands import doctor as doctor_command
from ownsona.config import Settings
from ownsona.doctor import DoctorError, display_url, mcp_url, run_doctor
from ownsona.mcp.registry import ToolContext, ToolError, ToolRegistry
from conftest import TEST_TOKEN, token_store_for

REPO = Path(__file__).resolve().parents[1]


class RememberArgs(BaseModel):
    text: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    dedup_policy: str = "ask"


class RecallArgs(BaseModel):
    query: str = Field(min_length=1)
    limit: int = Field(default=8, ge=1, le=50)


class ForgetArgs(BaseModel):
    id: int
    hard_delete: bool = False


def memory_registry(memories: dict[int, str], *, recall_finds: bool = True, with_forget: bool = True) -> ToolRegistry:
    """remember / recall / forget with OwnSona's payload shapes, over a dict."""
    registry = ToolRegistry()

    async def remember(ctx: ToolContext, args: RememberArgs) -> dict[str, Any]:
        memory_id = max(memories, default=0) + 1
        memories[memory_id] = args.text
        return {"ok": True, "memory_id": memory_id, "message": "Ok"}

    async def recall(ctx: ToolContext, args: RecallArgs) -> dict[str, Any]:
        hits = [i for i, text in memories.items() if recall_finds and args.query in text]
        matches = [{"id": i, "text": memories[i], "score": 0.9} for i in hits]
        return {"ok": True, "query": args.query, "matches": matches}

    async def forget(ctx: ToolContext, args: ForgetArgs) -> dict[str, Any]:
        if args.id not in memories:
            raise ToolError("NOT_FOUND", f"Memory {args.id} not found.")
        del memories[args.id]
        return {"ok": True, "memory_id": args.id, "dry_run": False, "already_deleted": False, "message": "Hard deleted"}

    registry.add(name="remember", description="Store.", args=RememberArgs, handler=remember, read_only=False)
    registry.add(name="recall", description="Search.", args=RecallArgs, handler=recall, read_only=True)
    if with_forget:
        registry.add(name="forget", description="Delete.", args=ForgetArgs, handler=forget, read_only=False,
                     destructive=True)
    return registry


async def _serve(aiohttp_server, settings: Settings, registry: ToolRegistry) -> str:
    server = await aiohttp_server(build_app(settings, token_store_for(settings), registry))
    return str(server.make_url("/mcp"))


async def test_healthy_server_passes_every_check_and_is_left_clean(aiohttp_server, settings: Settings) -> None:
    memories: dict[int, str] = {7: "an older memory"}
    url = await _serve(aiohttp_server, settings, memory_registry(memories))

    report = await run_doctor(url, TEST_TOKEN)

    assert [(r.name, r.ok) for r in report.results] == [
        ("401 without a token", True),
        ("401 with a wrong token", True),
        ("initialize", True),
        ("tools/list", True),
        ("remember", True),
        ("recall", True),
        ("forget", True),
    ], report.render()
    assert report.ok
    assert memories == {7: "an older memory"}  # its own memory was hard-deleted
    assert 'Bearer realm="ownsona"' in report.results[0].detail
    assert report.render().endswith("all 7 checks passed")


async def test_a_wrong_token_fails_with_a_hint_and_is_never_printed(aiohttp_server, settings: Settings) -> None:
    url = await _serve(aiohttp_server, settings, memory_registry({}))
    wrong = "not-the-token-" + "x1y2z3" * 6

    report = await run_doctor(url, wrong)

    assert not report.ok
    failed = {r.name: r.detail for r in report.results if not r.ok}
    assert list(failed) == ["initialize"]
    assert "HTTP 401" in failed["initialize"] and "OWNSONA_DOCTOR_TOKEN" in failed["initialize"]
    assert wrong not in report.render()


async def test_a_failed_recall_still_cleans_up(aiohttp_server, settings: Settings) -> None:
    memories: dict[int, str] = {}
    url = await _serve(aiohttp_server, settings, memory_registry(memories, recall_finds=False))

    report = await run_doctor(url, TEST_TOKEN)

    assert {r.name: r.ok for r in report.results}["recall"] is False
    assert {r.name: r.ok for r in report.results}["forget"] is True
    assert memories == {}
    assert report.render().endswith("1 of 7 checks FAILED")


async def test_missing_tools_and_an_open_server_are_reported(aiohttp_server, settings: Settings) -> None:
    url = await _serve(aiohttp_server, settings, memory_registry({}, with_forget=False))
    report = await run_doctor(url, TEST_TOKEN)
    assert "missing tools: forget" in {r.name: r.detail for r in report.results}["tools/list"]

    async def anything(request: web.Request) -> web.Response:
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {}})

    open_app = web.Application()
    open_app.router.add_post("/mcp", anything)
    open_server = await aiohttp_server(open_app)
    report = await run_doctor(str(open_server.make_url("/")), TEST_TOKEN)
    assert "open to anyone" in report.results[0].detail
    assert not report.ok


async def test_unreachable_server_is_a_failed_check_not_a_crash(unused_tcp_port: int) -> None:
    report = await run_doctor(f"http://127.0.0.1:{unused_tcp_port}/mcp", TEST_TOKEN, timeout_seconds=5)
    assert not report.ok
    assert "connection failed" in report.results[0].detail


def test_urls_default_to_mcp_and_refuse_a_query() -> None:
    assert mcp_url("https://memory.example.com") == "https://memory.example.com/mcp"
    assert mcp_url("https://memory.example.com/custom/mcp") == "https://memory.example.com/custom/mcp"
    assert display_url("https://h/mcp?token=abc") == "https://h/mcp"
    with pytest.raises(DoctorError, match="without a query") as refused:
        mcp_url("https://h/mcp?token=abc")
    assert "abc" not in str(refused.value)
    with pytest.raises(DoctorError, match="not an http"):
        mcp_url("ftp://h/mcp")


async def test_query_token_mode_checks_the_no_auth_url(aiohttp_server, settings: Settings) -> None:
    memories: dict[int, str] = {}
    url = await _serve(aiohttp_server, settings, memory_registry(memories))

    report = await run_doctor(url, TEST_TOKEN, token_in_query=True)

    assert report.ok, report.render()
    assert report.url.endswith("/mcp (token as ?token=)")
    assert TEST_TOKEN not in report.render() and memories == {}
    wrong = await run_doctor(url, "wrong-" + TEST_TOKEN, token_in_query=True)
    assert [r.name for r in wrong.results if not r.ok] == ["initialize"]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    doctor_command.add_arguments(parser)
    return parser.parse_args(argv)


def test_the_token_comes_from_a_file_or_the_environment_never_argv(tmp_path: Path, capsys) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-the-file\n")
    assert doctor_command.read_token(token_file, {"OWNSONA_DOCTOR_TOKEN": "env"}) == "from-the-file"
    assert doctor_command.read_token(None, {"OWNSONA_DOCTOR_TOKEN": "d", "OWNSONA_API_TOKEN": "a"}) == "d"
    assert doctor_command.read_token(None, {"OWNSONA_API_TOKEN": "a"}) == "a"
    with pytest.raises(ValueError, match="no token"):
        doctor_command.read_token(None, {})
    with pytest.raises(SystemExit):
        _parse(["https://h/mcp", "--token", "abc"])
    assert "unrecognized arguments" in capsys.readouterr().err


async def test_command_line_exit_status_and_report(aiohttp_server, settings: Settings, tmp_path: Path) -> None:
    url = await _serve(aiohttp_server, settings, memory_registry({}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OWNSONA_")}
    env["PYTHONPATH"] = str(REPO)

    async def doctor(extra_env: dict[str, str], *args: str, stdin: str | None = None) -> tuple[int, str, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ownsona", "doctor", url, *args,
            env={**env, **extra_env}, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate(stdin.encode() if stdin else b"")
        return process.returncode or 0, out.decode(), err.decode()

    code, out, _ = await doctor({"OWNSONA_DOCTOR_TOKEN": TEST_TOKEN})
    assert code == 0, out
    assert "PASS  forget: hard-deleted memory 1" in out
    assert TEST_TOKEN not in out

    code, out, _ = await doctor({"OWNSONA_DOCTOR_TOKEN": "wrong-" + TEST_TOKEN})
    assert code == 1 and "FAIL  initialize: initialize: HTTP 401" in out

    code, _, err = await doctor({})
    assert code == 2 and "no token" in err

    code, out, _ = await doctor({}, "--token-file", "-", stdin=TEST_TOKEN + "\n")  # `ownsona token show |`
    assert code == 0, out


def test_an_exported_doctor_token_is_not_mistaken_for_a_server_setting(tmp_path: Path) -> None:
    """Operators export OWNSONA_DOCTOR_TOKEN and then run check-logs or backup in the same shell."""
    from ownsona.config import settings_from_environ

    settings = settings_from_environ({"OWNSONA_HOME": str(tmp_path), "OWNSONA_DOCTOR_TOKEN": TEST_TOKEN})
    assert settings.home == tmp_path
