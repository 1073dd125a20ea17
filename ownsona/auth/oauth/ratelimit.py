"""A small in-memory sliding-window counter, per key (a client address, or "*" for everyone).

In memory on purpose: one process serves everything, a restart forgetting the counters is
harmless, and no database write happens on the attacker's schedule.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable


class SlidingWindow:
    """At most `limit` events per `window` seconds for each key."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._events: dict[str, deque[float]] = {}

    def _recent(self, key: str) -> deque[float]:
        now = self._clock()
        events = self._events.get(key)
        if events is None:
            return deque()
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
        return events

    def blocked_for(self, key: str) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        events = self._recent(key)
        if len(events) < self.limit:
            return 0.0
        return max(0.0, events[0] + self.window - self._clock())

    def hit(self, key: str) -> None:
        self._recent(key)
        self._events.setdefault(key, deque()).append(self._clock())
        if len(self._events) > 10_000:  # bound memory under a spray of addresses
            oldest = min(self._events, key=lambda k: self._events[k][-1])
            del self._events[oldest]

    def clear(self, key: str) -> None:
        self._events.pop(key, None)
