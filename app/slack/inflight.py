"""The work requests leave behind after their acknowledgment, and how much of it runs at once.

Bolt is run with `process_before_response=True`: it answers Slack the moment a listener returns,
with no polling. Listeners therefore only check, record and acknowledge; what the request asks
for (declaring, posting an update, opening a form) is handed to `InFlight.later`, which runs it
in its own task with at most `limit` such tasks working at a time. However many requests arrive
at once, their work never takes the event loop (or SQLite's single writer) away from the next
acknowledgment for long, and an acknowledgment never waits for anyone's work.

Work that waits for Slack's budget (a rate-limited method paced by the gateway) gives its turn
back while it waits (`app.services.ports.waiting_for_slack`): a declare storm queued behind
`conversations.create`'s 20 a minute must not keep an update for another incident from running.

Forms go first: Slack opens a form only within 3 seconds of the click or command that asked
for it, so work that opens one is taken before work queued earlier. Work taking its turn back
after a wait goes before new work, so what was started finishes first.

Shutdown (and the tests) wait for both the listeners and the work they left (`wait_idle`).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from app.services.ports import on_slack_wait

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])

DEFAULT_LIMIT = 8

# Turn order, lowest first.
RESUMING = 0  # work that gave its turn back while waiting for Slack's budget
FORM = 1  # work that opens a form (its trigger expires 3 s after the request)
NEW = 2


class Turns:
    """At most `limit` holders at a time; waiters served by rank, then by arrival."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self.busy = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    async def take(self, rank: int) -> None:
        if self.busy < self.limit and not self._waiting:
            self.busy += 1
            return
        turn = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (rank, next(self._seq), turn))
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.give_back()  # granted, then cancelled: pass it on
            raise

    def give_back(self) -> None:
        while self._waiting:
            _, _, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # the turn passes on: `busy` stays
                return
        self.busy -= 1


class _Turn:
    """One piece of work's turn, given back while it waits for Slack (by its own task only:
    tasks it started share its context but not its turn)."""

    def __init__(self, turns: Turns, owner: asyncio.Task[Any] | None) -> None:
        self.turns = turns
        self.owner = owner
        self.held = True

    @asynccontextmanager
    async def paused(self) -> AsyncIterator[None]:
        if not self.held or asyncio.current_task() is not self.owner:
            yield
            return
        self.held = False
        self.turns.give_back()
        try:
            yield
        finally:
            await self.turns.take(RESUMING)
            self.held = True

    def end(self) -> None:
        if self.held:
            self.held = False
            self.turns.give_back()


class InFlight:
    def __init__(self, limit: int = DEFAULT_LIMIT) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.turns = Turns(limit)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def count(self) -> int:
        return self._count

    def _start(self) -> None:
        self._count += 1
        self._idle.clear()

    def _end(self) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    def track(self, listener: F) -> F:
        """Wrap a listener so its run is counted."""

        @functools.wraps(listener)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._start()
            try:
                return await listener(*args, **kwargs)
            finally:
                self._end()

        return wrapper  # type: ignore[return-value]

    def later(self, work: Callable[[], Awaitable[None]], opens_form: bool = False) -> None:
        """Run `work` after the acknowledgment, when a turn is free (see the module docstring).
        Its failure is logged: the work itself tells the person what went wrong."""
        self._start()
        task = asyncio.create_task(self._run(work, FORM if opens_form else NEW))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Callable[[], Awaitable[None]], rank: int) -> None:
        try:
            await self.turns.take(rank)
            turn = _Turn(self.turns, asyncio.current_task())
            try:
                with on_slack_wait(turn.paused):
                    await work()
            finally:
                turn.end()
        except Exception:
            log.exception("work after an acknowledgment failed")
        finally:
            self._end()

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """True when nothing is running (within `timeout` seconds)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
