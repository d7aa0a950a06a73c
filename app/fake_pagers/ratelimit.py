"""A per-key sliding window of requests per minute, as both providers describe their limits.

PagerDuty documents about 120 events a minute per integration key, counted over the 60 seconds
before each request; Opsgenie limits each domain per minute (and per second) without a
published number. One window type serves both, with the limit chosen per fake.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class SlidingWindow:
    """Admits at most `per_minute` requests per key in any 60 seconds (None: no limit)."""

    def __init__(self, per_minute: int | None, clock: Callable[[], float]) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("per_minute must be at least 1 (or None for no limit)")
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def admit(self, key: str, limit: int | None = None) -> bool:
        """Count a request for `key` and say whether it is within the limit. A refused request
        is not counted: a client that waits gets through as the window slides."""
        most = limit if limit is not None else self.per_minute
        if most is None:
            return True
        now = self._clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= most:
            return False
        seen.append(now)
        return True

    def reset(self) -> None:
        """Forget every request counted so far."""
        self._seen.clear()
