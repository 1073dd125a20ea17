"""Instants: stored as integer milliseconds since the epoch, shown as ISO-8601 UTC with `Z`.

Integers make "is it expired?" a cheap comparison in SQL and keep ordering exact. The rendering
matches Java's `Instant.toString()` at millisecond precision, which the wire contract uses:
the fraction is omitted when it is zero (`2026-05-05T12:00:00Z`, `2026-05-05T12:00:00.123Z`).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

MS_PER_MINUTE = 60_000
MS_PER_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    base = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{millis:03d}Z" if millis else f"{base}Z"


def from_datetime(value: datetime) -> int:
    """An aware datetime to epoch milliseconds (naive values are refused earlier, at parsing)."""
    return (value - _EPOCH) // timedelta(milliseconds=1)
