"""Who goes next on a Slack method that is out of budget.

Slack limits each method (chat.postMessage per channel) and answers 429 with `Retry-After` once
the budget is spent. Left alone, every refused call sleeps and comes back at the same moment,
and a war room for an incident just declared waits behind reminders and repair sweeps that
happened to ask first.

The gate changes nothing while a method has budget: calls go straight out. After a 429 the
method is *contended*: calls wait their turn, nothing goes out before `Retry-After`, then one
call at a time, the most urgent first (`Priority.URGENT` before `Priority.NORMAL`), in order of
arrival within a priority. A call refused again keeps its place. Once nobody waits and the
wait is over, calls go straight out again.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    turn: asyncio.Future[None] = field(compare=False)


@dataclass
class _Bucket:
    until: float = 0.0  # loop time before which nothing goes out (Slack's Retry-After)
    contended: bool = False
    busy: bool = False  # a call that waited its turn is out now
    queue: list[_Waiter] = field(default_factory=list)
    timer: asyncio.TimerHandle | None = None


class PriorityGate:
    """Turns on rate-limited Slack methods, by bucket (a method, or chat.postMessage and its
    channel)."""

    def __init__(self) -> None:
        self._buckets: dict[str, _Bucket] = {}
        self._seq = itertools.count()

    def ticket(self) -> int:
        """A call's place in arrival order; it keeps it across its retries."""
        return next(self._seq)

    def contended(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.contended

    async def acquire(self, key: str, priority: int, ticket: int) -> bool:
        """Wait for the call's turn. True when it took a turn (give it back with `release`),
        False when the method has budget and the call goes straight out."""
        bucket = self._buckets.get(key)
        if bucket is None or not bucket.contended:
            return False
        waiter = _Waiter(priority, ticket, asyncio.get_running_loop().create_future())
        heapq.heappush(bucket.queue, waiter)
        self._next(key)
        try:
            await waiter.turn
        except asyncio.CancelledError:
            if waiter.turn.done() and not waiter.turn.cancelled():
                self.release(key, True)  # granted, then cancelled: pass the turn on
            elif waiter in bucket.queue:
                bucket.queue.remove(waiter)
                heapq.heapify(bucket.queue)
            raise
        return True

    def release(self, key: str, held: bool, retry_after: float | None = None) -> None:
        """The call is done (`retry_after` set: Slack refused it for that many seconds)."""
        bucket = self._buckets.get(key)
        if retry_after is not None:
            if bucket is None:
                bucket = self._buckets[key] = _Bucket()
            bucket.contended = True
            bucket.until = max(bucket.until, asyncio.get_running_loop().time() + retry_after)
        if bucket is None:
            return
        if held:
            bucket.busy = False
        self._next(key)

    def _next(self, key: str) -> None:
        """Give the next turn, or end the contention when nobody is left."""
        bucket = self._buckets[key]
        if bucket.busy:
            return
        loop = asyncio.get_running_loop()
        wait = bucket.until - loop.time()
        if wait > 0:
            if bucket.queue and bucket.timer is None:
                bucket.timer = loop.call_later(wait, self._wake, key)
            return
        while bucket.queue:
            waiter = heapq.heappop(bucket.queue)
            if not waiter.turn.done():
                bucket.busy = True
                waiter.turn.set_result(None)
                return
        if bucket.timer is None:
            del self._buckets[key]  # budget back: calls go straight out again

    def _wake(self, key: str) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.timer = None
            self._next(key)
