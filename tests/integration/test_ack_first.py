"""Acknowledge first, always: a request is answered while earlier requests' work is still
running, that work runs a bounded number at a time, and a form's work goes before it."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from app.config import Settings
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from tests.support.bot import start_bot
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, bot_messages, channel, last_view
from tests.support.slackclient import eventually

STORM = 50
AT_ONCE = 4
# Each room takes this long to create: the storm's work outlasts the requests that follow it.
CREATE_SECONDS = 0.4


def storm_settings(settings: Settings) -> Settings:
    return replace(
        settings,
        policy=policy_with(limits={"declares_per_person": STORM * 2}),
        concurrent_work=AT_ONCE,
    )


def most_at_once(fake: FakeSlack, method: str) -> int:
    """The most calls of `method` the fake was answering at the same moment."""
    edges: list[tuple[float, int]] = []
    for call in fake.calls:
        if call.method == method and call.applied_at is not None:
            edges += [(call.at, 1), (call.applied_at, -1)]
    busy = peak = 0
    for _, step in sorted(edges):
        busy += step
        peak = max(peak, busy)
    return peak


def created(fake: FakeSlack) -> list[str]:
    return [
        str(c.args.get("name"))
        for c in fake.calls
        if c.method == "conversations.create" and c.applied_at is not None
    ]


async def test_an_acknowledgment_is_answered_while_fifty_declares_are_being_carried_out(
    settings: Settings, fake: FakeSlack, clock: ManualClock
) -> None:
    fake.delay("conversations.create", CREATE_SECONDS)
    async for bot in start_bot(storm_settings(settings), fake, clock):
        answered = await asyncio.gather(
            *(bot.slack.command(f"declare sev3 Storm {n}") for n in range(STORM))
        )
        assert all(status == 200 for status, _ in answered)
        assert [body for _, body in answered if body] == [], "every declare was recorded"
        # Every declare is acknowledged and its work is under way: another request now is
        # answered without waiting for any of it.
        status, _ = await bot.slack.command("list", user="UBOB")
        assert status == 200
        assert len(created(bot.fake)) < STORM, "the declares' work was already done"
        assert bot.warroom.inflight.count > 0

        await bot.settle(timeout=180)
        rooms = created(bot.fake)
        assert len(rooms) == STORM == len(set(rooms)), answers(bot.fake)
        peak = most_at_once(bot.fake, "conversations.create")
        assert 1 < peak <= AT_ONCE, f"{peak} declares' work ran at once (limit {AT_ONCE})"


async def test_a_forms_work_goes_before_work_queued_earlier(
    settings: Settings, fake: FakeSlack, clock: ManualClock
) -> None:
    fake.delay("conversations.create", CREATE_SECONDS)
    async for bot in start_bot(storm_settings(settings), fake, clock):
        answered = await asyncio.gather(
            *(bot.slack.command(f"declare sev3 Queue {n}") for n in range(20))
        )
        assert [body for _, body in answered if body] == [], "every declare was recorded"
        status, _ = await bot.slack.command("declare")  # alone: opens the declare form
        assert status == 200
        await bot.settle(timeout=180)
        opened = [c for c in bot.fake.calls if c.method == "views.open"]
        assert opened and opened[0].ok, "the declare form opened"
        assert last_view(bot.fake, "declare_incident")
        starts = sorted(c.at for c in bot.fake.calls if c.method == "conversations.create")
        assert len(starts) == 20, answers(bot.fake)
        # Taken before the queue: at most the declares already running (and those that got a
        # turn while the command was being answered) started before the form.
        assert opened[0].at < starts[AT_ONCE * 2], "the form waited for the queued declares"


async def test_work_waiting_for_slacks_budget_lets_an_update_elsewhere_go_first(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    """One turn for all work: a declare waiting for a `conversations.create` token (the window's
    20 spent) gives it to an update in an incident that is already open."""
    scale = 0.25  # conversations.create: 20 in any 15 s
    settings = replace(
        storm_settings(settings_for(fake, database_url, slack_pacing=scale)), concurrent_work=1
    )
    fake.enforce_rate_limits(scale=scale)
    async for bot in start_bot(settings, fake, clock):
        answered = await asyncio.gather(
            *(bot.slack.command(f"declare sev3 Wave {n}") for n in range(21))
        )
        assert [body for _, body in answered if body] == [], "every declare was recorded"
        gate = bot.warroom.services.slack.gate  # type: ignore[attr-defined]

        def declare_waits_for_a_token(gate: Any = gate) -> bool:
            return bool(gate.waiting("conversations.create") > 0)

        await eventually(declare_waits_for_a_token, timeout=60)
        room = channel(bot.fake, "incident-1").id
        status, _ = await bot.slack.command("update Rolled back the deploy", channel=room)
        assert status == 200

        def update_posted(fake: FakeSlack = bot.fake, room: str = room) -> bool:
            return any("Rolled back the deploy" in m.text for m in bot_messages(fake, room))

        await eventually(update_posted, timeout=10)
        assert len(created(bot.fake)) == 20, "the update went before the waiting declare"
        await bot.settle(timeout=120)
        assert len(created(bot.fake)) == 21
        assert not [c for c in bot.fake.calls if c.status == 429]
