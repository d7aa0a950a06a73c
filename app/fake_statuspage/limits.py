"""Statuspage's rate limit: each API key gets 1 request a second, measured over a 60-second
rolling window (60 requests in any 60 seconds). Over it the API answers 420 (the historical
code, kept for integrations built around it) or 429, with a `Retry-After` header.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable

WINDOW_SECONDS = 60.0
PER_MINUTE = 60


class RollingWindow:
    """At most `per_minute` requests per key in any 60 seconds (None: no limit)."""

    def __init__(self, per_minute: int | None, clock: Callable[[], float]) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError("per_minute must be at least 1 (or None for no limit)")
        self.per_minute = per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}

    def wait(self, key: str) -> int:
        """Count a request for `key`: 0 when admitted, else the whole seconds until the window
        has room (a refused request is not counted)."""
        if self.per_minute is None:
            return 0
        now = self._clock()
        seen = self._seen.setdefault(key, deque())
        while seen and seen[0] <= now - WINDOW_SECONDS:
            seen.popleft()
        if len(seen) >= self.per_minute:
            return max(1, math.ceil(seen[0] + WINDOW_SECONDS - now))
        seen.append(now)
        return 0

    def reset(self) -> None:
        self._seen.clear()
