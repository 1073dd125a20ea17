"""What each load-generator client sends: request `i` of a run is a pure function of `i`.

A scenario returns the JSON-RPC message for request number `i`. `nonce` keeps texts written by one
run distinct from another run's over the same store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.harness import corpus, wire

Scenario = Callable[[int, str], dict[str, Any]]


def echo(i: int, nonce: str) -> dict[str, Any]:
    """A trivial tool: what the transport and the registry cost with no work behind them."""
    return wire.tool_call("echo", {"text": "hello"}, i)


def recall(i: int, nonce: str) -> dict[str, Any]:
    queries = corpus.queries()
    return wire.tool_call("recall", {"query": queries[i % len(queries)]}, i)


def remember(i: int, nonce: str) -> dict[str, Any]:
    return wire.tool_call("remember", {"text": corpus.template_fact(i, nonce)}, i)


def mixed(i: int, nonce: str) -> dict[str, Any]:
    """A day of use, compressed: mostly reads, some writes, some listing and housekeeping."""
    slot = i % 20
    if slot < 9:
        return recall(i, nonce)
    if slot < 13:
        return remember(i, nonce)
    if slot < 15:
        return wire.tool_call("list_memories", {"limit": 10}, i)
    if slot == 15:
        return wire.tool_call("count_memories", {}, i)
    if slot == 16:
        queries = corpus.queries()
        return wire.tool_call("build_context_prompt", {"user_prompt": queries[i % len(queries)]}, i)
    if slot == 17:
        return wire.tool_call("text_search", {"text": corpus.template_fact(i // 20, nonce).split()[0]}, i)
    if slot == 18:
        return wire.request("tools/list", {}, i)
    return wire.request("ping", {}, i)


def reads(i: int, nonce: str) -> dict[str, Any]:
    """Read-only traffic: the store stays the same size, so RSS must settle after warm-up."""
    slot = i % 10
    if slot < 7:
        return recall(i, nonce)
    if slot < 9:
        return wire.tool_call("list_memories", {"limit": 10}, i)
    return wire.request("tools/list", {}, i)


SCENARIOS: dict[str, Scenario] = {
    "echo": echo,
    "recall": recall,
    "remember": remember,
    "mixed": mixed,
    "reads": reads,
}
