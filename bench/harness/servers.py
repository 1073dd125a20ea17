"""The two small servers the benchmarks compare against, each run as its own process.

    python -m bench.harness.servers echo-baseline --port N   # bare aiohttp: parse JSON, answer JSON (the ceiling)
    python -m bench.harness.servers echo-stack --port N      # OwnSona's whole HTTP stack serving one trivial tool

`echo-stack` is `ownsona serve` minus the store and the embedder: the same settings, token store,
logging, access log, middlewares and `/mcp` transport, so the gap to `echo-baseline` is exactly
what our HTTP and MCP layers cost per request (issue 2's measurement).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from aiohttp import web
from pydantic import BaseModel, Field

ECHO_PATH = "/echo"


async def bare_echo(request: web.Request) -> web.Response:
    """Parse the body and answer with a JSON-RPC result around it: the least a JSON server can do."""
    message = json.loads(await request.read())
    return web.json_response({"jsonrpc": "2.0", "id": message.get("id"), "result": {"echo": message.get("params")}})


def run_echo_baseline(port: int) -> None:
    app = web.Application()
    app.router.add_post(ECHO_PATH, bare_echo)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


class EchoArgs(BaseModel):
    text: str = Field(description="What to echo back.", min_length=1, max_length=1000)


class EchoOutput(BaseModel):
    ok: bool
    echo: str


def run_echo_stack(port: int) -> None:
    from ownsona.access_log import StructuredAccessLogger
    from ownsona.app import build_app
    from ownsona.auth.tokens import TokenStore
    from ownsona.config import settings_from_environ
    from ownsona.logs import configure_logging, register_secret
    from ownsona.mcp.registry import ToolContext, ToolRegistry

    settings = settings_from_environ(overrides={"port": port})
    configure_logging(settings.log_level)
    env_token = settings.api_token.get_secret_value() if settings.api_token else None
    tokens = TokenStore(settings.tokens_path, env_token=env_token, default_user_id=settings.user_id)
    tokens.ensure_default()
    for token in tokens.tokens():
        register_secret(token.value)

    async def echo(ctx: ToolContext, args: EchoArgs) -> dict[str, Any]:
        return {"ok": True, "echo": args.text}

    registry = ToolRegistry()
    registry.add(name="echo", description="Echo text back.", args=EchoArgs, handler=echo, read_only=True,
                 idempotent=True, output=EchoOutput, title="Echo")
    web.run_app(build_app(settings, tokens, registry), host=settings.host, port=settings.port, print=None,
                access_log_class=StructuredAccessLogger, handler_cancellation=False)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.harness.servers")
    parser.add_argument("kind", choices=["echo-baseline", "echo-stack"])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    if args.kind == "echo-baseline":
        run_echo_baseline(args.port)
    else:
        run_echo_stack(args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
