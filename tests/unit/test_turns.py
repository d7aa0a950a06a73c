"""Taking turns: the work after acknowledgments (app.slack.inflight) and SQLite's sessions
(app.store.db)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from app.services.ports import waiting_for_slack
from app.slack.inflight import InFlight
from app.store.db import Turns


async def test_work_runs_a_bounded_number_at_a_time_forms_first() -> None:
    inflight = InFlight(limit=2)
    release = asyncio.Event()
    order: list[str] = []
    running = 0
    peak = 0

    def work(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            order.append(name)
            await release.wait()
            running -= 1

        return run

    for n in range(4):
        inflight.later(work(f"declare {n}"))
    inflight.later(work("form"), opens_form=True)
    await asyncio.sleep(0.01)
    assert order == ["declare 0", "declare 1"]
    assert inflight.count == 5
    release.set()
    assert await inflight.wait_idle(5)
    assert order == ["declare 0", "declare 1", "form", "declare 2", "declare 3"]
    assert peak == 2


async def test_work_waiting_for_slack_lets_other_work_run_and_resumes_first() -> None:
    inflight = InFlight(limit=1)
    budget = asyncio.Event()
    done = asyncio.Event()
    order: list[str] = []

    async def paced() -> None:
        order.append("paced starts")
        async with waiting_for_slack():
            await budget.wait()
        order.append("paced resumes")

    async def update() -> None:
        order.append("update")
        await done.wait()

    async def later() -> None:
        order.append("later")

    inflight.later(paced)
    await asyncio.sleep(0.01)
    inflight.later(update)  # runs while `paced` waits for Slack
    inflight.later(later)  # queued: the one turn is taken
    await asyncio.sleep(0.01)
    assert order == ["paced starts", "update"]
    budget.set()
    await asyncio.sleep(0.01)
    done.set()
    assert await inflight.wait_idle(5)
    assert order == ["paced starts", "update", "paced resumes", "later"]


async def test_a_task_started_by_the_work_does_not_give_its_turn_away() -> None:
    inflight = InFlight(limit=1)
    gate = asyncio.Event()
    order: list[str] = []

    async def parent() -> None:
        async def child() -> None:
            async with waiting_for_slack():
                await gate.wait()

        waiter = asyncio.create_task(child())
        await asyncio.sleep(0.01)
        order.append("parent still holds")
        gate.set()
        await waiter

    async def after() -> None:
        order.append("next")

    inflight.later(parent)
    await asyncio.sleep(0)
    inflight.later(after)
    assert await inflight.wait_idle(5)
    assert order == ["parent still holds", "next"]


async def test_sessions_take_turns_first_ones_first_and_nest_in_their_own_task() -> None:
    turns = Turns()
    order: list[str] = []
    hold = asyncio.Event()

    async def session(name: str, rank: int) -> None:
        async with turns.turn(rank):
            order.append(name)
            if name == "holder":
                await hold.wait()
                async with turns.turn(1):  # nested in the same task: no wait
                    order.append("nested")

    tasks = [asyncio.create_task(session("holder", 1))]
    await asyncio.sleep(0)
    tasks += [asyncio.create_task(session("work", 1)), asyncio.create_task(session("inbox", 0))]
    await asyncio.sleep(0.01)
    assert order == ["holder"]
    hold.set()
    await asyncio.gather(*tasks)
    assert order == ["holder", "nested", "inbox", "work"]


async def test_a_cancelled_waiter_does_not_keep_the_turn() -> None:
    turns = Turns()
    hold = asyncio.Event()

    async def holder() -> None:
        async with turns.turn(1):
            await hold.wait()

    async def waiter() -> None:
        async with turns.turn(1):
            pass

    first = asyncio.create_task(holder())
    await asyncio.sleep(0)
    second = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    second.cancel()
    hold.set()
    await first
    async with asyncio.timeout(1):
        async with turns.turn(1):
            pass
