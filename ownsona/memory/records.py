"""Plain values that travel between the service and the store."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, slots=True)
class MemoryRecord:
    """One row of `memories`, without its vector."""

    id: int
    user_id: str
    text: str
    tags: tuple[str, ...]
    importance: float
    source_provider: str | None
    capture_mode: str | None
    session_id: str | None
    created_at: int
    updated_at: int
    deleted_at: int | None
    expires_at: int | None
    last_confirmed_at: int | None
    forget_reason: str | None
    replaced_by_id: int | None
    record_version: int
    embedding_provider: str | None
    embedding_model: str | None

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def is_expired(self, now: int) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def is_active(self, now: int) -> bool:
        return not self.is_deleted and not self.is_expired(now)


@dataclass(frozen=True, slots=True)
class Embedding:
    """A vector and the model that made it; stored together so stale rows can be found."""

    vector: np.ndarray
    provider: str
    model: str

    @property
    def dimensions(self) -> int:
        return int(self.vector.shape[0])

    def blob(self) -> bytes:
        return np.ascontiguousarray(self.vector, dtype="<f4").tobytes()


@dataclass(frozen=True, slots=True)
class NewMemory:
    """A validated memory ready to insert."""

    text: str
    key: str
    tags: tuple[str, ...] = ()
    importance: float = 0.5
    source_provider: str | None = None
    capture_mode: str | None = None
    session_id: str | None = None
    expires_at: int | None = None
    last_confirmed_at: int | None = None
    # Import only: keep the original times and state instead of "now" and "live".
    created_at: int | None = None
    updated_at: int | None = None
    deleted_at: int | None = None
    forget_reason: str | None = None


_UNSET = object()


@dataclass(frozen=True, slots=True)
class MemoryPatch:
    """Fields an update sets. `None` in `text`/`tags`/`importance` means "leave as is";
    `expires_at`/`last_confirmed_at` distinguish "leave" (UNCHANGED) from "clear" (None)."""

    text: str | None = None
    key: str | None = None
    tags: tuple[str, ...] | None = None
    importance: float | None = None
    expires_at: int | None | object = _UNSET
    last_confirmed_at: int | None | object = _UNSET
    embedding: Embedding | None = field(default=None, compare=False)

    UNCHANGED = _UNSET

    def sets(self, name: str) -> bool:
        value = getattr(self, name)
        if name in ("expires_at", "last_confirmed_at"):
            return value is not _UNSET
        return value is not None


@dataclass(frozen=True, slots=True)
class CleanupFilter:
    """The list/count filters used to find memories worth tidying up."""

    untagged_only: bool = False
    min_chars: int | None = None
    max_chars: int | None = None
    not_confirmed_since: int | None = None
