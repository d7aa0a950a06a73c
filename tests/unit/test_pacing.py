"""Pacing at the priority gate, on a clock the test moves: a burst never puts more than N calls
in any window, waiters go urgent first then in order of arrival, a cancelled waiter gives its
token back, and the product's table of Slack's limits matches the fake Slack's."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Callable

import pytest

from app.fake_slack import ratelimit as fake_limits
from app.integrations.priority_gate import MARGIN_SECONDS, MARGIN_SHARE, Pass, PriorityGate
from app.integrations.slack_limits import METHOD_TIERS, Limit, limit_for, method_of
from app.integrations.slack_web import bucket, pacing_limits
from app.services.ports import Priority

KEY = "conversations.create"


class _Handle:
    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class SteppedClock:
    """A clock that moves only when told, running the gate's timers (and the test's) in order."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, _Handle, Callable[[], None]]] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self.t

    def call_at(self, when: float, callback: Callable[[], None]) -> _Handle:
        handle = _Handle()
        heapq.heappush(self._timers, (when, next(self._seq), handle, callback))
        return handle

    async def sleep(self, seconds: float) -> None:
        done = asyncio.get_running_loop().create_future()
        self.call_at(self.t + seconds, lambda: done.done() or done.set_result(None))
        await done

    def pending(self) -> bool:
        return any(not handle.cancelled for _, _, handle, _ in self._timers)

    def fire_next(self) -> None:
        """Move to the next timer and run it, and nothing else yet."""
        while self._timers:
            when, _, handle, callback = heapq.heappop(self._timers)
            if handle.cancelled:
                continue
            self.t = max(self.t, when)
            callback()
            return

    async def step(self) -> None:
        """Move to the next timer and run it (and everything it wakes)."""
        await settle()
        self.fire_next()
        await settle()

    async def advance_to(self, t: float) -> None:
        while self._timers and self._timers[0][0] <= t:
            await self.step()
        self.t = max(self.t, t)
        await settle()


async def settle() -> None:
    """Let every task that can run, run."""
    for _ in range(20):
        await asyncio.sleep(0)


def held_for(limit: Limit) -> float:
    """How long after its answer a used token comes back."""
    return limit.seconds * (1 + MARGIN_SHARE) + MARGIN_SECONDS


def most_in_any_window(times: list[float], seconds: float) -> int:
    """The largest number of `times` inside one `seconds`-long window, as the fake counts."""
    times = sorted(times)
    most, start = 0, 0
    for end, t in enumerate(times):
        while times[start] <= t - seconds:
            start += 1
        most = max(most, end - start + 1)
    return most


async def test_a_burst_beyond_the_limit_waits_for_the_window_and_never_overshoots() -> None:
    limit = Limit(calls=20, seconds=60.0)
    clock = SteppedClock()
    gate = PriorityGate(lambda key: limit if key == KEY else None, clock=clock)
    sent: list[float] = []
    calls = 3 * limit.calls + 7
    latencies = [0.05 + (n % 7) * 0.1 for n in range(calls)]  # answers come back unevenly

    async def call(n: int) -> None:
        held = await gate.acquire(KEY, Priority.NORMAL, gate.ticket())
        sent.append(clock.now())
        await clock.sleep(latencies[n])
        gate.release(KEY, held)

    tasks = [asyncio.create_task(call(n)) for n in range(calls)]
    await settle()
    # The first window's worth goes at once; the rest wait for tokens to come back.
    assert len(sent) == limit.calls
    assert gate.waiting(KEY) == calls - limit.calls
    while clock.pending():
        await clock.step()
    await asyncio.gather(*tasks)

    assert len(sent) == calls
    # Slack counts a call when it arrives, at the earliest when it is sent: no window of the
    # limit's length ever holds more than the limit.
    assert most_in_any_window(sent, limit.seconds) == limit.calls
    # And the budget is used: each further window's worth goes out as soon as the first
    # tokens are back, the window plus the margin plus the slowest answer at most.
    slowest = max(latencies)
    rounds = calls // limit.calls
    assert max(sent) <= rounds * (held_for(limit) + slowest)
    assert gate.free(KEY) == limit.calls  # every token back in the end


async def test_a_token_comes_back_one_window_after_the_answer_not_before() -> None:
    limit = Limit(calls=2, seconds=10.0)
    clock = SteppedClock()
    gate = PriorityGate(lambda key: limit, clock=clock)
    first = [await gate.acquire(KEY, Priority.NORMAL, gate.ticket()) for _ in range(2)]
    assert all(p.token for p in first) and gate.free(KEY) == 0
    waiter = asyncio.create_task(gate.acquire(KEY, Priority.NORMAL, gate.ticket()))
    await clock.advance_to(1.0)
    for held in first:
        gate.release(KEY, held)  # both answered at t=1
    await clock.advance_to(1.0 + held_for(limit) - 0.001)
    assert not waiter.done()
    await clock.advance_to(1.0 + held_for(limit))
    assert waiter.done() and waiter.result().token
    assert gate.free(KEY) == 1


async def test_waiters_go_urgent_first_then_in_order_of_arrival() -> None:
    limit = Limit(calls=1, seconds=5.0)
    clock = SteppedClock()
    gate = PriorityGate(lambda key: limit, clock=clock)
    order: list[str] = []
    first = await gate.acquire(KEY, Priority.NORMAL, gate.ticket())

    async def call(name: str, rank: Priority) -> None:
        held = await gate.acquire(KEY, rank, gate.ticket())
        order.append(name)
        gate.release(KEY, held)

    names = [
        ("reminder-1", Priority.NORMAL),
        ("sweep", Priority.NORMAL),
        ("declare-1", Priority.URGENT),
        ("reminder-2", Priority.NORMAL),
        ("declare-2", Priority.URGENT),
    ]
    tasks = []
    for name, rank in names:
        tasks.append(asyncio.create_task(call(name, rank)))
        await settle()
    assert gate.waiting(KEY) == len(names)
    gate.release(KEY, first)
    while clock.pending():
        await clock.step()
    await asyncio.gather(*tasks)
    assert order == ["declare-1", "declare-2", "reminder-1", "sweep", "reminder-2"]


async def test_a_cancelled_waiter_does_not_leak_a_token() -> None:
    limit = Limit(calls=1, seconds=5.0)
    clock = SteppedClock()
    gate = PriorityGate(lambda key: limit, clock=clock)
    first = await gate.acquire(KEY, Priority.NORMAL, gate.ticket())
    # Cancelled while waiting: it leaves the queue and takes nothing.
    gone = asyncio.create_task(gate.acquire(KEY, Priority.URGENT, gate.ticket()))
    later = asyncio.create_task(gate.acquire(KEY, Priority.NORMAL, gate.ticket()))
    await settle()
    gone.cancel()
    await settle()
    assert gate.waiting(KEY) == 1
    gate.release(KEY, first)
    while clock.pending() and not later.done():
        await clock.step()
    assert later.result().token
    # Granted, then cancelled before it could go out: the token comes back at once, unspent.
    lucky = asyncio.create_task(gate.acquire(KEY, Priority.NORMAL, gate.ticket()))
    await settle()
    gate.release(KEY, later.result())
    clock.fire_next()  # the token is back: `lucky` is granted it but has not run yet
    lucky.cancel()
    await settle()
    assert lucky.cancelled()
    assert gate.free(KEY) == 1
    again = await gate.acquire(KEY, Priority.NORMAL, gate.ticket())
    assert again.token


async def test_a_429_holds_even_a_bucket_with_tokens_until_retry_after() -> None:
    limit = Limit(calls=10, seconds=60.0)
    clock = SteppedClock()
    gate = PriorityGate(lambda key: limit, clock=clock)
    held = await gate.acquire(KEY, Priority.NORMAL, gate.ticket())
    gate.release(KEY, held, retry_after=3.0)  # another replica spent the budget
    assert gate.contended(KEY) and gate.free(KEY) == 9
    waiter = asyncio.create_task(gate.acquire(KEY, Priority.NORMAL, gate.ticket()))
    await clock.advance_to(2.9)
    assert not waiter.done()
    await clock.advance_to(3.0)
    assert waiter.result() == Pass(token=True, turn=True)
    gate.release(KEY, waiter.result())
    await settle()
    assert not gate.contended(KEY)


async def test_pacing_off_lets_every_call_straight_out() -> None:
    gate = PriorityGate(pacing_limits(0.0))
    passes = [await gate.acquire(KEY, Priority.NORMAL, gate.ticket()) for _ in range(100)]
    assert all(p == Pass() for p in passes)
    assert gate.free(KEY) is None


def test_pacing_scales_every_window_of_slacks_published_limits() -> None:
    assert limit_for("conversations.create") == Limit(20, 60.0)
    assert limit_for("conversations.create", 0.1) == Limit(20, pytest.approx(6.0))
    assert limit_for("chat.postMessage", 1.0) == Limit(5, 5.0)
    assert limit_for("auth.test") is None
    assert limit_for("conversations.create", 0.0) is None
    key = bucket("chat.postMessage", {"channel": "C1"})
    assert method_of(key) == "chat.postMessage"
    assert pacing_limits(2.0)(key) == Limit(5, 10.0)


@pytest.mark.parametrize("scale", [1.0, 0.1])
def test_the_products_limits_match_the_fake_slacks(scale: float) -> None:
    """The fake Slack enforces Slack's limits as the tests know them; the product paces to its
    own table. A change to one without the other shows here."""
    methods = set(METHOD_TIERS) | set(fake_limits.METHOD_TIERS) | {"chat.postMessage"}
    for method in sorted(methods):
        fake = fake_limits.window_for(method, scale)
        ours = limit_for(method, scale)
        theirs = (fake.limit, fake.seconds) if fake else None
        assert ((ours.calls, ours.seconds) if ours else None) == theirs, method
