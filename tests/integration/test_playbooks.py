"""Playbooks against the real bot, the fake Slack and a real database: each step once (also
after a restart in the middle and with two replicas), checklists ticked in place, overdue tasks
nudged once, a severity change to Sev1 adding the Sev1 playbook once, a failed step leaving
the others to run."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import select

from app.config import Settings
from app.fake_slack import FakeSlack
from app.fake_slack.state import Message
from app.services.clock import ManualClock
from app.services.incidents import DeclareRequest
from app.store.models import EscalationRow, TimelineEvent
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, DAVE, ERIN, SPECIALIST
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, bot_messages, channel, dms
from tests.support.servers import serving

SECRET = "hook-secret-0123456789abcdef"
RUNBOOK = "https://runbooks.example.com/database"


@dataclass
class Receiver:
    """A paging system's webhook endpoint: keeps what it is sent."""

    taken: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.taken.append(json.loads(await request.read()))
        return web.json_response({"ok": True})


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serving("/page", found.handle) as url:
        found.url = url
        yield found


def playbook_settings(fake: FakeSlack, database_url: str, hook_url: str) -> Settings:
    policy = policy_with(
        paging={
            "targets": {
                "dba-hook": {
                    "provider": "webhook",
                    "label": "DBA hook",
                    "url": hook_url,
                    "secret_env": "DBA_HOOK_SECRET",
                }
            }
        },
        playbooks=[
            {
                "name": "database-outage",
                "when": {
                    "event": ["declared", "severity_changed"],
                    "severity": [1],
                    "service": ["database"],
                },
                "steps": [
                    {"invite": {"users": [ERIN], "functions": ["specialists"]}},
                    {"post": "playbook_database.md.j2"},
                    {
                        "checklist": [
                            {"text": "Check replication lag", "role": "tech_lead"},
                            {"text": "Freeze migrations", "role": "commander", "due_minutes": 10},
                        ]
                    },
                    {"bookmark": {"title": "Database runbook", "url": RUNBOOK}},
                    {"page": ["dba-hook"]},
                ],
            },
            {
                "name": "sev1-bridge",
                "when": {"event": ["declared", "severity_changed"], "severity": 1},
                "steps": [
                    {"bookmark": {"title": "Sev1 bridge", "url": "https://meet.example.com/sev1"}}
                ],
            },
        ],
    )
    return replace(
        settings_for(fake, database_url),
        policy=policy,
        pager_secrets={"DBA_HOOK_SECRET": SECRET},
    )


@pytest.fixture
def configured(fake: FakeSlack, database_url: str, receiver: Receiver) -> Settings:
    return playbook_settings(fake, database_url, receiver.url)


@pytest.fixture
async def bot(configured: Settings, fake: FakeSlack, clock: ManualClock) -> AsyncIterator[Bot]:
    async for running in start_bot(configured, fake, clock):
        yield running


DATABASE_DOWN = DeclareRequest(
    title="Primary database down", severity=1, declared_by=ALICE, service="database"
)


async def declare_database(bot: Bot) -> str:
    await bot.warroom.bot.flows.declare(DATABASE_DOWN)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def tick(bot: Bot, minutes: float) -> None:
    bot.clock.set(bot.clock.now() + timedelta(minutes=minutes))
    await bot.warroom.engine.tick()
    await bot.settle()


async def events(bot: Bot, kind: str) -> list[TimelineEvent]:
    async with bot.warroom.db.session() as session:
        rows = await session.exec(select(TimelineEvent).where(TimelineEvent.kind == kind))
        return list(rows.all())


def checklists(fake: FakeSlack, room: str) -> list[Message]:
    return [m for m in bot_messages(fake, room) if "*Checklist · Playbook" in m.text]


def done_buttons(message: Message) -> list[str]:
    return [
        block["accessory"]["value"]
        for block in message.blocks or []
        if block.get("accessory", {}).get("action_id") == "checklist_done"
    ]


def titles(fake: FakeSlack, room: str) -> list[str]:
    return [b["title"] for b in fake.bookmarks(room)]


def database_posts(fake: FakeSlack, room: str) -> list[Message]:
    return [m for m in bot_messages(fake, room) if "*Database playbook*" in m.text]


async def playbook_rows(bot: Bot) -> list[EscalationRow]:
    return [r for r in await bot.warroom.escalations.rows(1) if r.kind == "playbook"]


async def assert_ran_once(bot: Bot, receiver: Receiver, room: str) -> None:
    members = set(channel(bot.fake, "incident-1").members)
    assert {ERIN, SPECIALIST} <= members
    assert len(database_posts(bot.fake, room)) == 1
    assert len(checklists(bot.fake, room)) == 1
    assert sorted(titles(bot.fake, room)) == ["Database runbook", "Sev1 bridge"]
    triggers = [t for t in receiver.taken if t.get("event") == "trigger"]
    assert len(triggers) == 1, receiver.taken
    steps = [e.text for e in await events(bot, "playbook_step")]
    assert sorted(steps) == sorted(
        [
            f"Playbook database-outage: invite {ERIN}, specialists",
            "Playbook database-outage: post playbook_database.md.j2",
            "Playbook database-outage: checklist of 2 tasks",
            "Playbook database-outage: bookmark Database runbook",
            "Playbook database-outage: page dba-hook",
            "Playbook sev1-bridge: bookmark Sev1 bridge",
        ]
    )
    assert {r.state for r in await playbook_rows(bot)} == {"fired"}


async def test_a_sev1_database_incident_runs_its_playbook_once(
    bot: Bot, receiver: Receiver
) -> None:
    room = await declare_database(bot)
    await assert_ran_once(bot, receiver, room)
    # In the playbook's order: the people first, then the post, then the checklist.
    texts = [m.text for m in bot_messages(bot.fake, room)]
    post_at = next(n for n, t in enumerate(texts) if "*Database playbook*" in t)
    list_at = next(n for n, t in enumerate(texts) if "*Checklist · Playbook" in t)
    assert post_at < list_at
    [message] = checklists(bot.fake, room)
    assert len(done_buttons(message)) == 2
    assert "Check replication lag · tech_lead" in message.text

    # Later ticks, and the planning run again (a second replica, a repair), add nothing.
    await tick(bot, 1)
    await bot.warroom.escalations.plan_playbooks(1, ("declared", "severity_changed"))
    await tick(bot, 1)
    await assert_ran_once(bot, receiver, room)


async def test_ticking_a_task_edits_the_checklist_in_place(bot: Bot, receiver: Receiver) -> None:
    room = await declare_database(bot)
    [message] = checklists(bot.fake, room)
    first, second = done_buttons(message)
    await bot.slack.click("checklist_done", first, user=BOB, channel=room, message_ts=message.ts)
    await bot.settle()
    [edited] = checklists(bot.fake, room)
    assert edited.ts == message.ts and len(edited.edits) == 1
    assert done_buttons(edited) == [second]
    assert f"~Check replication lag~ · done by <@{BOB}>" in edited.text
    assert answers(bot.fake)[-1] == ":white_check_mark: Done: Check replication lag"
    # Again: nothing changes, and who did it is said.
    await bot.slack.click("checklist_done", first, user=DAVE, channel=room, message_ts=message.ts)
    await bot.settle()
    assert answers(bot.fake)[-1] == f"Already done by <@{BOB}>: Check replication lag"
    assert len(checklists(bot.fake, room)[0].edits) == 1
    done = await events(bot, "checklist_done")
    assert [(e.text, e.actor) for e in done] == [
        ("Checklist (database-outage): Check replication lag: done", BOB)
    ]

    await bot.slack.command("checklist", channel=room, user=DAVE)
    await bot.settle()
    progress = answers(bot.fake)[-1]
    assert "*Checklist for Incident #1*: 1 of 2 done" in progress
    assert f"Check replication lag · done by <@{BOB}>" in progress
    assert ":white_square: Freeze migrations · commander" in progress

    document = await bot.warroom.bot.postmortems.document(1)
    assert "## Checklist" in document
    assert "| Check replication lag | database-outage | tech_lead | by @" in document
    assert "| Freeze migrations | database-outage | commander | not done |" in document


async def test_an_overdue_task_nudges_its_role_holder_once(bot: Bot, receiver: Receiver) -> None:
    await declare_database(bot)

    def nudges() -> list[Message]:
        return [m for m in dms(bot.fake, ALICE) if "is overdue" in m.text]

    await tick(bot, 9)
    assert nudges() == []
    await tick(bot, 2)
    [nudge] = nudges()
    assert "Freeze migrations" in nudge.text and "as Incident Commander" in nudge.text
    assert "checklist_done" in json.dumps(nudge.blocks)
    await tick(bot, 10)
    await tick(bot, 60)
    assert len(nudges()) == 1
    # A task done in time is not nudged: its nudge is cancelled.
    rows = {r.key: r for r in await bot.warroom.escalations.rows(1)}
    nudge_rows = [r for k, r in rows.items() if k.startswith("checklist:")]
    assert [r.state for r in nudge_rows] == ["fired"]


async def test_a_severity_change_to_sev1_runs_the_sev1_playbook_once(
    bot: Bot, receiver: Receiver
) -> None:
    await bot.slack.command("declare sev2 Checkout API returning 500s")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    assert titles(bot.fake, room) == []
    await bot.slack.command("severity sev1", channel=room)
    await bot.settle()
    assert titles(bot.fake, room) == ["Sev1 bridge"]
    # The database playbook needs the database service: not this one.
    assert database_posts(bot.fake, room) == []
    for level in ("sev2", "sev1", "sev2", "sev1"):
        await bot.slack.command(f"severity {level}", channel=room)
        await bot.settle()
    await tick(bot, 1)
    assert titles(bot.fake, room) == ["Sev1 bridge"]
    assert [r.key for r in await playbook_rows(bot)] == ["playbook:sev1-bridge:1"]
    assert [e.text for e in await events(bot, "playbook_step")] == [
        "Playbook sev1-bridge: bookmark Sev1 bridge"
    ]


async def test_a_failed_step_does_not_stop_the_others(bot: Bot, receiver: Receiver) -> None:
    bot.fake.fail("bookmarks.add", "invalid_link", times=1)
    room = await declare_database(bot)
    # The first bookmark (the runbook's, in order) was refused; the page after it still went.
    assert titles(bot.fake, room) == ["Sev1 bridge"]
    assert len([t for t in receiver.taken if t.get("event") == "trigger"]) == 1
    assert len(checklists(bot.fake, room)) == 1
    problems = [e.text for e in await events(bot, "problem")]
    said = (
        "Playbook database-outage, step 4: could not add the bookmark (invalid_link); not retried."
    )
    assert said in problems
    assert any(said in m.text for m in bot_messages(bot.fake, room))
    steps = [e.text for e in await events(bot, "playbook_step")]
    assert "Playbook database-outage: bookmark Database runbook" not in steps
    assert "Playbook database-outage: page dba-hook" in steps
    await tick(bot, 5)
    assert titles(bot.fake, room) == ["Sev1 bridge"]  # refused for good: not retried


async def test_a_restart_in_the_middle_completes_each_step_once(
    configured: Settings, fake: FakeSlack, clock: ManualClock, receiver: Receiver
) -> None:
    async for first in start_bot(configured, fake, clock):
        # Stored, the room open and the steps planned: then the process stops.
        change = await first.warroom.incidents.declare(DATABASE_DOWN)
        await first.warroom.rooms.open_war_room(change.incident.id)
        await first.warroom.escalations.run_pending(change.incident.id)
        assert {r.state for r in await playbook_rows(first)} == {"pending"}
        assert len(await playbook_rows(first)) == 6
    room = channel(fake, "incident-1").id
    assert titles(fake, room) == []
    async for second in start_bot(configured, fake, clock):
        await tick(second, 0.5)
        await tick(second, 1)
        await assert_ran_once(second, receiver, room)


async def test_two_replicas_ticking_at_once_run_each_step_once(
    configured: Settings, fake: FakeSlack, clock: ManualClock, receiver: Receiver
) -> None:
    first = start_bot(replace(configured, replica_name="replica-a"), fake, clock)
    second = start_bot(replace(configured, replica_name="replica-b"), fake, clock)
    one, two = await first.__anext__(), await second.__anext__()
    try:
        change = await one.warroom.incidents.declare(DATABASE_DOWN)
        await one.warroom.rooms.open_war_room(change.incident.id)
        # Both plan (as two replicas' follow-ups may), then both tick at once.
        await asyncio.gather(
            one.warroom.escalations.run_pending(change.incident.id),
            two.warroom.escalations.plan_playbooks(change.incident.id, ("declared",)),
        )
        assert len(await playbook_rows(one)) == 6
        await asyncio.gather(*(bot.warroom.engine.tick() for bot in (one, two, one, two)))
        await one.settle()
        await two.settle()
        room = channel(fake, "incident-1").id
        await assert_ran_once(one, receiver, room)
    finally:
        for bots in (first, second):
            with pytest.raises(StopAsyncIteration):
                await bots.__anext__()
