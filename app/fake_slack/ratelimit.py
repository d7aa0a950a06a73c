"""Slack-like per-method rate limiting for the fake server (off unless enabled).

Slack groups methods into tiers (Tier 2 ~20/min, Tier 3 ~50/min, Tier 4 ~100/min) and
limits chat.postMessage to about one message per second per channel with short bursts.
Enforcing the same shape lets tests prove that the bot backs off on 429s, and `scale`
shrinks every window so such tests stay fast.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WINDOW_SECONDS = 60.0
TIER_LIMITS: dict[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIERS: dict[str, int] = {
    "conversations.create": 2,
    "conversations.setTopic": 2,
    "conversations.list": 2,
    "pins.add": 2,
    "bookmarks.add": 2,
    "pins.list": 2,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
    "users.list": 2,
    "conversations.invite": 3,
    "conversations.archive": 3,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.join": 3,
    "conversations.open": 3,
    "chat.update": 3,
    "reactions.add": 3,
    "users.lookupByEmail": 3,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
    "views.publish": 4,
    "users.info": 4,
    "conversations.members": 4,
    "chat.postEphemeral": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
}
POST_MESSAGE_BURST = 5
"""chat.postMessage: this many messages per this many seconds per channel (1/s sustained)."""


@dataclass(frozen=True)
class Window:
    """At most `limit` calls in any `seconds`-long sliding window."""

    limit: int
    seconds: float


def window_for(method: str, scale: float) -> Window | None:
    """The (scaled) window limiting `method`, or None when Slack does not limit it here."""
    if method == "chat.postMessage":
        return Window(POST_MESSAGE_BURST, POST_MESSAGE_BURST * scale)
    tier = METHOD_TIERS.get(method)
    if tier is None:
        return None
    return Window(TIER_LIMITS[tier], WINDOW_SECONDS * scale)


def bucket_key(method: str, args: dict[str, Any]) -> str:
    """chat.postMessage is limited per channel; everything else per method."""
    if method == "chat.postMessage":
        return f"{method}:{args.get('channel', '')}"
    return method


class RateLimiter:
    """Sliding-window counters per method (per channel for chat.postMessage)."""

    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        if scale <= 0:
            raise ValueError("scale must be positive")
        self.scale = scale
        self._clock = clock
        self._log: dict[str, deque[float]] = {}

    def admit(self, method: str, args: dict[str, Any]) -> int | None:
        """Count the call and return None, or return the Retry-After seconds when over."""
        window = window_for(method, self.scale)
        if window is None:
            return None
        now = self._clock()
        log = self._log.setdefault(bucket_key(method, args), deque())
        while log and log[0] <= now - window.seconds:
            log.popleft()
        if len(log) >= window.limit:
            wait = log[0] + window.seconds - now
            return max(1, math.ceil(wait))
        log.append(now)
        return None
