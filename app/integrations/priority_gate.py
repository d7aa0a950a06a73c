"""Who goes next on a Slack method, and when: pacing to Slack's limits, and 429s waited out.

Slack limits each method (chat.postMessage per channel): at most N calls in any W-second
window, and a 429 with `Retry-After` past that. Left alone, a burst (a declare storm) goes out
at once, collects 429s, and every refused call sleeps and comes back at the same moment, while
a war room for an incident just declared waits behind reminders and repair sweeps that happened
to ask first.

So the gate keeps, per bucket (a method, or chat.postMessage and its channel):

- **Tokens** (when the bucket has a limit): N of them. A call takes one before it goes out; the
  token comes back one window after the call's answer (plus a small margin), never sooner. A
  call is counted by Slack when it arrives, which is before its answer, so no W-second window
  can hold more than N calls of this process: "N per window" exactly, and no 429 from our own
  bursts. (A bucket that refills at N/W per second from full would let 2N through in the first
  window.) A call that never went out (cancelled while waiting) gives its token straight back.
- **Contention** (after a 429: another replica or another app spends the same budget): nothing
  goes out before `Retry-After`, then one call at a time until nobody waits.

Calls that cannot go at once wait their turn: the most urgent first (`Priority.URGENT` before
`Priority.NORMAL`), in order of arrival within a priority. A call refused again keeps its place
(it keeps its ticket). A bucket with tokens to spare and nobody waiting lets calls straight out.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from app.integrations.slack_limits import Limit

# A token comes back this long after the window: clock granularity and Slack's own bookkeeping.
MARGIN_SHARE = 0.01
MARGIN_SECONDS = 0.02


class Timer(Protocol):
    def cancel(self) -> None: ...


class GateClock(Protocol):
    """Time as the gate sees it: now, and a callback at a later time (injectable for tests)."""

    def now(self) -> float: ...

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer: ...


class LoopClock:
    """The running event loop's clock (monotonic)."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_at(self, when: float, callback: Callable[[], None]) -> Timer:
        return asyncio.get_running_loop().call_at(when, callback)


@dataclass(frozen=True)
class Pass:
    """What a call took at the gate, to give back with `release`: a token of the bucket's
    limit, and/or the one turn of a contended bucket."""

    token: bool = False
    turn: bool = False


STRAIGHT = Pass()
"""Nothing taken: the bucket has no limit and no contention."""


@dataclass(order=True)
class _Waiter:
    priority: int
    seq: int
    turn: asyncio.Future[Pass] = field(compare=False)


@dataclass
class _Bucket:
    limit: Limit | None
    out: int = 0  # tokens taken by calls not answered yet
    back: deque[float] = field(default_factory=deque)  # when used tokens return, earliest first
    until: float = 0.0  # clock time before which nothing goes out (Slack's Retry-After)
    contended: bool = False
    busy: bool = False  # the turn of a contended bucket is taken
    queue: list[_Waiter] = field(default_factory=list)
    timer: Timer | None = None
    timer_at: float = 0.0

    def free(self, now: float) -> int:
        """Tokens available now (a large number when the bucket has no limit)."""
        if self.limit is None:
            return 1 << 30
        while self.back and self.back[0] <= now:
            self.back.popleft()
        return self.limit.calls - self.out - len(self.back)

    def may_go(self, now: float) -> bool:
        if now < self.until or (self.contended and self.busy):
            return False
        return self.free(now) > 0

    def take(self) -> Pass:
        grant = Pass(token=self.limit is not None, turn=self.contended)
        if grant.token:
            self.out += 1
        if grant.turn:
            self.busy = True
        return grant

    def idle(self, now: float) -> bool:
        """Nothing to remember: the bucket can be forgotten (a later call starts it afresh)."""
        self.free(now)  # forget the tokens already back
        busy = self.queue or self.busy or self.contended or self.out or self.back
        return not busy and self.timer is None


class PriorityGate:
    """Turns and tokens on Slack's rate-limited buckets (a method, or chat.postMessage and its
    channel). `limits` gives a bucket's limit (None: not paced, only 429s are waited out)."""

    def __init__(
        self,
        limits: Callable[[str], Limit | None] | None = None,
        clock: GateClock | None = None,
        margin_share: float = MARGIN_SHARE,
        margin_seconds: float = MARGIN_SECONDS,
    ) -> None:
        self._limits = limits or (lambda key: None)
        self._clock = clock or LoopClock()
        self._margin = (margin_share, margin_seconds)
        self._buckets: dict[str, _Bucket] = {}
        self._seq = itertools.count()

    def ticket(self) -> int:
        """A call's place in arrival order; it keeps it across its retries."""
        return next(self._seq)

    def contended(self, key: str) -> bool:
        bucket = self._buckets.get(key)
        return bucket is not None and bucket.contended

    def must_wait(self, key: str) -> bool:
        """Whether a call on `key` asked now would wait (out of tokens, or others waiting)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return False
        return bool(bucket.queue) or not bucket.may_go(self._clock.now())

    def waiting(self, key: str) -> int:
        """Calls waiting for their turn on a bucket."""
        bucket = self._buckets.get(key)
        return sum(1 for w in bucket.queue if not w.turn.done()) if bucket else 0

    def free(self, key: str) -> int | None:
        """Tokens a bucket has now (None: not paced)."""
        limit = self._limits(key)
        if limit is None:
            return None
        bucket = self._buckets.get(key)
        return bucket.free(self._clock.now()) if bucket else limit.calls

    async def acquire(self, key: str, priority: int, ticket: int) -> Pass:
        """Wait until the call may go out; what it took must go back through `release`."""
        bucket = self._buckets.get(key)
        if bucket is None:
            limit = self._limits(key)
            if limit is None:
                return STRAIGHT
            bucket = self._buckets[key] = _Bucket(limit)
        if not bucket.queue and bucket.may_go(self._clock.now()):
            return bucket.take()
        waiter = _Waiter(priority, ticket, asyncio.get_running_loop().create_future())
        heapq.heappush(bucket.queue, waiter)
        self._next(key)
        try:
            return await waiter.turn
        except asyncio.CancelledError:
            if waiter.turn.done() and not waiter.turn.cancelled():
                # Granted, then cancelled before going out: nothing was sent.
                self.release(key, waiter.turn.result(), sent=False)
            elif waiter in bucket.queue:
                bucket.queue.remove(waiter)
                heapq.heapify(bucket.queue)
                self._next(key)
            raise

    def release(
        self, key: str, held: Pass, retry_after: float | None = None, *, sent: bool = True
    ) -> None:
        """The call is done: `retry_after` set when Slack refused it for that many seconds;
        `sent` False when it never went out (its token comes back at once)."""
        bucket = self._buckets.get(key)
        now = self._clock.now()
        if retry_after is not None:
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(self._limits(key))
            bucket.contended = True
            bucket.until = max(bucket.until, now + retry_after)
        if bucket is None:
            return
        if held.token:
            bucket.out -= 1
            if sent and bucket.limit is not None:
                share, seconds = self._margin
                bucket.back.append(now + bucket.limit.seconds * (1 + share) + seconds)
        if held.turn:
            bucket.busy = False
        self._next(key)

    def _next(self, key: str) -> None:
        """Let out whoever may go now, in order; set a timer for when the next one may."""
        bucket = self._buckets[key]
        now = self._clock.now()
        while bucket.queue:
            first = bucket.queue[0]
            if first.turn.done():  # cancelled while waiting
                heapq.heappop(bucket.queue)
                continue
            if not bucket.may_go(now):
                break
            heapq.heappop(bucket.queue)
            first.turn.set_result(bucket.take())
        if bucket.queue:
            self._wake_later(key, bucket, now)
            return
        if not bucket.busy and now >= bucket.until:
            bucket.contended = False  # nobody waits and the wait is over: straight out again
        if bucket.idle(now):
            del self._buckets[key]
        elif not bucket.contended and not bucket.out and bucket.back:
            # Only spent tokens left: forget the bucket once they are back (one per channel
            # posted to would otherwise stay for good).
            self._set_timer(key, bucket, bucket.back[-1])

    def _wake_later(self, key: str, bucket: _Bucket, now: float) -> None:
        """A timer for the moment time alone lets the next call go (Retry-After over, a token
        back); none when it waits for a call to be answered."""
        if now < bucket.until:
            self._set_timer(key, bucket, bucket.until)
        elif bucket.free(now) <= 0 and bucket.back:
            self._set_timer(key, bucket, bucket.back[0])

    def _set_timer(self, key: str, bucket: _Bucket, when: float) -> None:
        """Wake the bucket at `when`, or sooner if a timer is already set for sooner."""
        if bucket.timer is not None:
            if bucket.timer_at <= when:
                return
            bucket.timer.cancel()
        bucket.timer_at = when
        bucket.timer = self._clock.call_at(when, lambda: self._wake(key))

    def _wake(self, key: str) -> None:
        bucket = self._buckets.get(key)
        if bucket is not None:
            bucket.timer = None
            self._next(key)
