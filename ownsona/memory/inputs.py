"""What callers hand the memory service: raw, not yet validated values.

The MCP tools build these from their argument models, the importer from JSON lines. The service
validates them with the Java server's rules and messages, so every caller gets the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Literal


class Unset(Enum):
    """Marks an update field the caller did not send (as opposed to an explicit null)."""

    UNSET = "unset"


UNSET = Unset.UNSET

DedupPolicy = Literal["insert", "skip_if_near", "ask"]


@dataclass(frozen=True, slots=True)
class RememberItem:
    text: str | None
    tags: list[str | None] | None = None
    source_provider: str | None = None
    importance: float | None = None
    capture_mode: str | None = None
    session_id: str | None = None
    dedup_policy: str | None = None
    expires_at: datetime | None = None
    last_confirmed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class UpdateItem:
    id: int | None
    text: str | None = None
    tags: list[str | None] | None = None
    importance: float | None = None
    expires_at: datetime | None | Unset = UNSET
    last_confirmed_at: datetime | None | Unset = UNSET


@dataclass(frozen=True, slots=True)
class Filters:
    """list_memories / count_memories cleanup filters, as received."""

    untagged_only: bool = False
    min_chars: int | None = None
    max_chars: int | None = None
    not_confirmed_since: datetime | None = None
