"""Fault injection for the fake Slack server.

Real Slack rate-limits, times out, answers 5xx and drops connections; a bot that only
ever met a perfect server would not survive an incident day. Tests script faults per
method ("the next 2 conversations.create calls answer name_taken"), optionally for one
conversation only (the call's `channel` argument), and benchmarks turn on random faults at a
fixed rate with a seed so that a run can be replayed exactly.

A hold keeps matching calls waiting, unanswered, until the test releases it: the way to show
that one conversation's calls do not wait for another's (hold the posts to one channel, watch
the others arrive meanwhile), without a timing.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ANY_METHOD = "*"
RANDOM_KINDS = frozenset({"429", "500", "503", "slow", "drop", "error"})
DEFAULT_SLOW_SECONDS = 0.5


@dataclass(frozen=True)
class Fault:
    """What to do to one call instead of (or before) answering it normally.

    kind is "error" (HTTP 200, ok false), "http" (status with a JSON error body),
    "drop" (close the connection) or "slow" (sleep, then answer normally).
    """

    kind: str
    error: str = ""
    status: int = 200
    retry_after: int | None = None
    seconds: float = 0.0
    after_processing: bool = False

    def to_json(self) -> dict[str, Any]:
        """Serialise for the control surface."""
        return {
            "kind": self.kind,
            "error": self.error,
            "status": self.status,
            "retry_after": self.retry_after,
            "seconds": self.seconds,
            "after_processing": self.after_processing,
        }


def http_fault(status: int, retry_after: int | None = None) -> Fault:
    """An HTTP-level failure; 429 carries Retry-After and Slack's `ratelimited` error."""
    if status == 429:
        wait = 1 if retry_after is None else retry_after
        return Fault("http", error="ratelimited", status=429, retry_after=wait)
    error = "service_unavailable" if status == 503 else "internal_error"
    return Fault("http", error=error, status=status, retry_after=retry_after)


@dataclass
class _Scripted:
    fault: Fault
    remaining: int
    channel: str | None = None  # only calls to this conversation; None for any

    def matches(self, channel: str | None) -> bool:
        return self.channel is None or self.channel == channel


class Hold:
    """Calls of `method` ("*" for any) to `channel` (any conversation when None) wait here,
    unanswered, from when they arrive until `release()`; later calls pass at once."""

    def __init__(self, method: str, channel: str | None) -> None:
        self.method = method
        self.channel = channel
        self.waiting = 0  # calls waiting now
        self.most = 0  # the most calls waiting at once
        self.held = 0  # calls that waited here, in all
        self._released = asyncio.Event()

    @property
    def released(self) -> bool:
        return self._released.is_set()

    def matches(self, method: str, channel: str | None) -> bool:
        if self.released or self.method not in (method, ANY_METHOD):
            return False
        return self.channel is None or self.channel == channel

    async def wait(self) -> None:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        self.held += 1
        try:
            await self._released.wait()
        finally:
            self.waiting -= 1

    def release(self) -> None:
        """Let the waiting calls go on (in the order they arrived) and stop holding."""
        self._released.set()

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "channel": self.channel,
            "waiting": self.waiting,
            "most": self.most,
            "held": self.held,
        }


def _conversation(value: object) -> str | None:
    """A call's `channel` argument, when it names one."""
    return value if isinstance(value, str) and value else None


@dataclass
class _RandomFaults:
    """Faults drawn at `rate` from a seeded generator, for reproducible chaos runs."""

    rate: float
    rng: random.Random
    kinds: tuple[str, ...]
    slow_seconds: float
    retry_after: int
    methods: frozenset[str] | None = None
    config: dict[str, Any] = field(default_factory=dict)

    def draw(self, method: str) -> Fault | None:
        """Draw for one call; the generator advances exactly twice per eligible call."""
        if self.methods is not None and method not in self.methods:
            return None
        roll = self.rng.random()
        kind = self.rng.choice(self.kinds)
        if roll >= self.rate:
            return None
        return self._fault(kind)

    def _fault(self, kind: str) -> Fault:
        if kind == "429":
            return http_fault(429, self.retry_after)
        if kind in ("500", "503"):
            return http_fault(int(kind))
        if kind == "slow":
            return Fault("slow", seconds=self.slow_seconds)
        if kind == "drop":
            return Fault("drop")
        return Fault("error", error="internal_error")


class FaultPlan:
    """Holds the scripted faults, delays and random-fault settings of one fake server."""

    def __init__(self) -> None:
        self._scripted: dict[str, list[_Scripted]] = {}
        self._delays: dict[str, float] = {}
        self._random: _RandomFaults | None = None
        self._holds: list[Hold] = []

    def reset(self) -> None:
        """Back to a perfect server (held calls go on)."""
        self._scripted.clear()
        self._delays.clear()
        self._random = None
        self.release()

    def add(self, method: str, fault: Fault, times: int, channel: str | None = None) -> None:
        """Queue `fault` for the next `times` calls of `method` ("*" for any method), to
        `channel` only when given."""
        if times < 1:
            raise ValueError("times must be at least 1")
        if channel is not None and not _conversation(channel):
            raise ValueError("channel must be a conversation ID or None")
        self._scripted.setdefault(method, []).append(_Scripted(fault, times, channel))

    def hold(self, method: str, channel: str | None = None) -> Hold:
        """Hold the calls of `method` ("*" for any) to `channel` (any when None) until the
        returned hold is released."""
        if not method:
            raise ValueError("method must be a Web API method or '*'")
        if channel is not None and not _conversation(channel):
            raise ValueError("channel must be a conversation ID or None")
        hold = Hold(method, channel)
        self._holds.append(hold)
        return hold

    def release(self, method: str | None = None, channel: str | None = None) -> int:
        """Release the holds on `method` and `channel` (every hold when both are None);
        returns how many."""
        chosen = [
            h
            for h in self._holds
            if (method is None or h.method == method) and (channel is None or h.channel == channel)
        ]
        for hold in chosen:
            hold.release()
        self._holds = [h for h in self._holds if not h.released]
        return len(chosen)

    async def wait_if_held(self, method: str, args: dict[str, Any]) -> None:
        """Keep the call waiting while a hold matches it (one after another, if several)."""
        channel = _conversation(args.get("channel"))
        for hold in list(self._holds):
            if hold.matches(method, channel):
                await hold.wait()
        self._holds = [h for h in self._holds if not h.released]

    def set_delay(self, method: str, seconds: float) -> None:
        """Make every call of `method` ("*" for all) wait first; 0 removes the delay."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        if seconds == 0:
            self._delays.pop(method, None)
        else:
            self._delays[method] = seconds

    def set_random(
        self,
        rate: float,
        seed: int,
        kinds: Iterable[str],
        *,
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Enable random faults; rate 0 disables them."""
        chosen = tuple(kinds)
        unknown = set(chosen) - RANDOM_KINDS
        if unknown or not chosen:
            raise ValueError(f"kinds must be among {sorted(RANDOM_KINDS)}, got {chosen}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate == 0:
            self._random = None
            return
        config = {"rate": rate, "seed": seed, "kinds": list(chosen), "slow_seconds": slow_seconds}
        self._random = _RandomFaults(
            rate=rate,
            rng=random.Random(seed),
            kinds=chosen,
            slow_seconds=slow_seconds,
            retry_after=retry_after,
            methods=frozenset(methods) if methods is not None else None,
            config=config,
        )

    def take(self, method: str, args: dict[str, Any] | None = None) -> Fault | None:
        """The fault for this call, if any: scripted for the method, then "*", then random.
        A fault scripted for one conversation applies only to calls naming it (`channel`)."""
        channel = _conversation((args or {}).get("channel"))
        for key in (method, ANY_METHOD):
            fault = self._take_scripted(key, channel)
            if fault is not None:
                return fault
        return self._random.draw(method) if self._random else None

    def _take_scripted(self, key: str, channel: str | None) -> Fault | None:
        queue = self._scripted.get(key)
        if not queue:
            return None
        for index, entry in enumerate(queue):
            if entry.matches(channel):
                entry.remaining -= 1
                if entry.remaining <= 0:
                    del queue[index]
                return entry.fault
        return None

    def delay_for(self, method: str) -> float:
        """Seconds to wait before handling: the method's delay plus the "*" delay."""
        return self._delays.get(method, 0.0) + self._delays.get(ANY_METHOD, 0.0)

    def describe(self) -> dict[str, Any]:
        """What is configured, for the control surface."""
        return {
            "scripted": {
                method: [
                    {"fault": e.fault.to_json(), "remaining": e.remaining, "channel": e.channel}
                    for e in queue
                ]
                for method, queue in self._scripted.items()
                if queue
            },
            "delays": dict(self._delays),
            "random": self._random.config if self._random else None,
            "holds": [h.to_json() for h in self._holds if not h.released],
        }
