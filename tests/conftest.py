"""Shared fixtures: settings in a temp home, a token store, and an app serving a small test registry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from ownsona.auth.tokens import TokenStore
from ownsona.config import Settings, settings_from_environ
from ownsona.mcp.registry import ToolContext, ToolError, ToolRegistry

# Looks random, is long enough, and is grepped for in captured output by the log tests.
TEST_TOKEN = "tEsT-SECRET-0wns0na-Zq8xV3kLm9Pd2Rf7Hy4Jc6Nb1Wt5"


class EchoArgs(BaseModel):
    text: str = Field(description="What to echo back.", min_length=1, max_length=100)
    times: int = Field(default=1, ge=1, le=5, description="How many times.")


class EchoOutput(BaseModel):
    ok: bool
    echo: str
    user_id: str


def make_test_registry() -> ToolRegistry:
    """A registry with one well-behaved tool, one that fails deliberately and one that crashes."""
    registry = ToolRegistry()

    async def echo(ctx: ToolContext, args: EchoArgs) -> dict[str, Any]:
        return {"ok": True, "echo": " ".join([args.text] * args.times), "user_id": ctx.user_id}

    async def refuse(ctx: ToolContext, args: EchoArgs) -> dict[str, Any]:
        raise ToolError("NOT_FOUND", "Memory 42 not found.")

    async def crash(ctx: ToolContext, args: EchoArgs) -> dict[str, Any]:
        raise RuntimeError(f"boom with internal detail {args.text}")

    registry.add(name="echo", description="Echo text.", args=EchoArgs, handler=echo, read_only=True,
                 idempotent=True, output=EchoOutput, title="Echo")
    registry.add(name="refuse", description="Always fails.", args=EchoArgs, handler=refuse, read_only=True)
    registry.add(name="crash", description="Always crashes.", args=EchoArgs, handler=crash, read_only=False,
                 destructive=True)
    return registry


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir(mode=0o700)
    return path


@pytest.fixture
def make_settings(home: Path) -> Callable[..., Settings]:
    def factory(**env: str) -> Settings:
        environ = {"OWNSONA_HOME": str(home), "OWNSONA_API_TOKEN": TEST_TOKEN, "HOME": str(home)}
        environ.update({f"OWNSONA_{k.upper()}": v for k, v in env.items()})
        return settings_from_environ(environ)

    return factory


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def token_store_for(settings: Settings) -> TokenStore:
    env_token = settings.api_token.get_secret_value() if settings.api_token else None
    store = TokenStore(settings.tokens_path, env_token=env_token, default_user_id=settings.user_id)
    store.load()
    return store
