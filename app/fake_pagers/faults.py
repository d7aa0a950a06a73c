"""Fault injection shared by the fake paging providers.

A pager that only ever met a perfect provider would lose pages on the first bad day: real
providers answer 5xx and 429, time out, and drop connections, sometimes after they have
already acted on the request ("accepted, but the answer was lost"). Tests script the next few
requests ("the next 2 answer 503") or turn on random faults at a fixed rate with a seed, so a
run that lost a page can be replayed exactly.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# "drop" closes the connection before the request is applied; "drop_after" applies it first.
RANDOM_KINDS = frozenset({"500", "502", "503", "504", "429", "drop", "drop_after", "slow"})
DEFAULT_SLOW_SECONDS = 0.05


@dataclass(frozen=True)
class Fault:
    """What to do to one request instead of (or before) answering it normally.

    kind is "http" (answer `status` with the provider's error body, nothing applied),
    "drop" (close the connection; with `after_processing` the request is applied first) or
    "slow" (wait `seconds`, then answer normally).
    """

    kind: str
    status: int = 0
    retry_after: int | None = None
    seconds: float = 0.0
    after_processing: bool = False

    @property
    def label(self) -> str:
        """A short name for the call log: "503", "drop", "drop_after", "slow"."""
        if self.kind == "http":
            return str(self.status)
        if self.kind == "drop":
            return "drop_after" if self.after_processing else "drop"
        return self.kind


@dataclass
class _Scripted:
    fault: Fault
    remaining: int
    route: str | None  # only requests to this route; None for any


@dataclass
class _RandomFaults:
    """Faults drawn at `rate` from a seeded generator, for reproducible chaos runs."""

    rate: float
    rng: random.Random
    kinds: tuple[str, ...]
    retry_after: int | None
    slow_seconds: float
    routes: frozenset[str] | None
    config: dict[str, Any] = field(default_factory=dict)

    def draw(self, route: str) -> Fault | None:
        """Draw for one request; the generator advances exactly twice per eligible request,
        so the same seed gives the same plan whatever the faults drawn."""
        if self.routes is not None and route not in self.routes:
            return None
        roll = self.rng.random()
        kind = self.rng.choice(self.kinds)
        if roll >= self.rate:
            return None
        if kind == "drop":
            return Fault("drop")
        if kind == "drop_after":
            return Fault("drop", after_processing=True)
        if kind == "slow":
            return Fault("slow", seconds=self.slow_seconds)
        status = int(kind)
        return Fault("http", status=status, retry_after=self.retry_after if status == 429 else None)


class FaultPlan:
    """The scripted and random faults of one fake server."""

    def __init__(self) -> None:
        self._scripted: list[_Scripted] = []
        self._random: _RandomFaults | None = None

    def reset(self) -> None:
        """Back to a perfect server."""
        self._scripted.clear()
        self._random = None

    def add(self, fault: Fault, times: int, route: str | None = None) -> None:
        """Queue `fault` for the next `times` requests (to `route` only, when given)."""
        if times < 1:
            raise ValueError("the number of requests must be at least 1")
        self._scripted.append(_Scripted(fault, times, route))

    def set_random(
        self,
        rate: float,
        seed: int,
        kinds: Iterable[str],
        *,
        retry_after: int | None = None,
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        routes: Iterable[str] | None = None,
    ) -> None:
        """Random faults at `rate` (0 turns them off), reproducible by `seed`."""
        chosen = tuple(kinds)
        unknown = set(chosen) - RANDOM_KINDS
        if unknown or not chosen:
            raise ValueError(f"kinds must be among {sorted(RANDOM_KINDS)}, got {chosen}")
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be between 0 and 1")
        if rate == 0:
            self._random = None
            return
        self._random = _RandomFaults(
            rate=rate,
            rng=random.Random(seed),
            kinds=chosen,
            retry_after=retry_after,
            slow_seconds=slow_seconds,
            routes=frozenset(routes) if routes is not None else None,
            config={"rate": rate, "seed": seed, "kinds": list(chosen)},
        )

    def take(self, route: str) -> Fault | None:
        """The fault for the next request to `route`: scripted ones first (in the order they
        were added), then a random draw."""
        for index, entry in enumerate(self._scripted):
            if entry.route is None or entry.route == route:
                entry.remaining -= 1
                if entry.remaining <= 0:
                    del self._scripted[index]
                return entry.fault
        return self._random.draw(route) if self._random else None

    @property
    def pending(self) -> int:
        """Scripted faults still to come."""
        return sum(entry.remaining for entry in self._scripted)

    def describe(self) -> dict[str, Any]:
        """What is configured, for people reading a failed test."""
        return {
            "scripted": [
                {"fault": e.fault.label, "remaining": e.remaining, "route": e.route}
                for e in self._scripted
            ],
            "random": self._random.config if self._random else None,
        }
