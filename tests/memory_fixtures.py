"""Helpers shared by the memory tests: a real store in a temp dir and the real builtin embedder."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ownsona.embeddings.base import EmbeddingError
from ownsona.embeddings.builtin import BuiltinEmbedder
from ownsona.memory.timestamps import now_ms

_BUILTIN: BuiltinEmbedder | None = None


def builtin() -> BuiltinEmbedder:
    """The real builtin model, loaded once per test session (about 0.1 s)."""
    global _BUILTIN
    if _BUILTIN is None:
        _BUILTIN = BuiltinEmbedder.load()
    return _BUILTIN


@dataclass
class CountingEmbedder:
    """The builtin model, counting calls; `fail` makes the next calls raise EmbeddingError."""

    inner: BuiltinEmbedder = field(default_factory=builtin)
    calls: list[list[str]] = field(default_factory=list)
    fail: bool = False
    model: str = ""
    provider: str = ""

    def __post_init__(self) -> None:
        self.model = self.model or self.inner.model
        self.provider = self.provider or self.inner.provider

    @property
    def dimensions(self) -> int:
        return self.inner.dimensions

    async def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls.append(list(texts))
        if self.fail:
            raise EmbeddingError("provider unavailable (test)")
        return await self.inner.embed(texts)


@dataclass
class Clock:
    """A settable clock in epoch milliseconds, for expiry tests."""

    now: int = field(default_factory=now_ms)

    def __call__(self) -> int:
        return self.now

    def advance(self, ms: int) -> None:
        self.now += ms
