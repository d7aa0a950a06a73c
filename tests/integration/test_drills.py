"""Drills: practice incidents that page, announce and count nowhere outside their own room."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.services.incidents import ResolveRequest
from app.slack.listeners.commands import TABLE, parse
from app.store.models import Incident
from tests.integration.test_access import stats_count
from tests.integration.test_sandbox import ALICE as SANDBOX_ALICE
from tests.integration.test_sandbox import BOB as SANDBOX_BOB
from tests.integration.test_sandbox import ERIN as SANDBOX_ERIN
from tests.integration.test_sandbox import Page, eventually_async, page, texts
from tests.support.bot import Bot, start_bot
from tests.support.constants import (
    ALICE,
    BOB,
    CEO,
    DAVE,
    ENG_LEAD,
    ENG_MGR,
    ONCALL,
    ONCALL_BACKUP,
    VP_ENG,
    VP_OPS,
)
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import (
    all_posted_text,
    announcements,
    answers,
    bot_messages,
    channel,
    dms,
    last_view,
)

__all__ = ["page"]  # the sandbox's fixture, used below

REAL_AUDIENCE = (CEO, VP_OPS, ENG_LEAD, ONCALL, "UONCALL2", ONCALL_BACKUP, ENG_MGR, VP_ENG, DAVE)
MARK = ":test_tube: *DRILL*"


async def at_minute(bot: Bot, start: datetime, minute: float) -> None:
    bot.clock.set(start + timedelta(minutes=minute))
    await bot.warroom.engine.tick()
    await bot.settle()


async def stats_text(bot: Bot, user: str = ALICE) -> str:
    await bot.slack.command("stats", user=user)
    await bot.settle()
    return answers(bot.fake)[-1]


async def test_a_sev1_drill_pages_announces_and_counts_nowhere_outside_its_room(bot: Bot) -> None:
    start = bot.clock.now()
    await bot.slack.command("declare sev3 A real incident")
    await bot.settle()
    # Resolved at once, so its own ladder stays out of what is counted below.
    await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="Real"), ALICE)
    await bot.settle()
    before = await stats_text(bot)
    real_dms = {user: len(dms(bot.fake, user)) for user in REAL_AUDIENCE}
    announced = len(announcements(bot.fake))

    # A Sev1 drill: the directory would page the CEO for a real Sev1.
    await bot.slack.command("drill sev1 Database failover practice")
    await bot.settle()
    room = channel(bot.fake, "drill-2")
    assert set(room.members) - {"UBOT"} == {ALICE}
    # The declarer invites Bob by hand: he is in the drill too.
    bot.fake.join(room.id, BOB)
    # Left alone, the whole ladder climbs and the update reminder fires.
    for minute in (5, 15, 30, 31, 45):
        await at_minute(bot, start, minute)

    # Nobody from the severity's real audience was paged, escalated to or invited.
    assert {user: len(dms(bot.fake, user)) for user in REAL_AUDIENCE} == real_dms
    assert not set(REAL_AUDIENCE) & set(room.members)
    # The people in the drill were: the declarer from the start, Bob once invited.
    assert any("You are paged" in m.text for m in dms(bot.fake, ALICE))
    assert any("escalated" in m.text for m in dms(bot.fake, BOB))
    posted = [m.text for m in bot_messages(bot.fake, room.id)]
    assert any("Escalation step 3" in t for t in posted)
    assert not any(f"<@{CEO}>" in t or "subteam" in t for t in posted)
    # Not announced: nothing new in #incidents.
    assert len(announcements(bot.fake)) == announced
    assert "Database failover practice" not in json.dumps([m.text for m in announcements(bot.fake)])

    # Resolved, it still counts in no metrics, for anyone.
    await bot.warroom.bot.flows.resolve(2, ResolveRequest(root_cause="Practice"), ALICE)
    await bot.settle()
    after = await stats_text(bot)
    assert stats_count(after, "All severities") == stats_count(before, "All severities") == 1
    assert stats_count(after, "Sev1") == 0


async def test_every_message_of_a_drill_is_marked(bot: Bot) -> None:
    start = bot.clock.now()
    await bot.slack.command("drill sev2 Checkout practice")
    await bot.settle()
    room = channel(bot.fake, "drill-1")
    assert room.topic.startswith("DRILL · Sev2")
    await bot.slack.command("update Looking at the dashboards", channel=room.id)
    await bot.slack.command("role tech-lead <@UBOB>", channel=room.id)
    await bot.settle()
    await at_minute(bot, start, 5)
    await at_minute(bot, start, 31)
    await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="Practice"), ALICE)
    await bot.settle()

    messages = bot_messages(bot.fake, room.id)
    assert messages, "the drill room has messages"
    unmarked = [m.text for m in messages if not m.text.startswith(MARK)]
    # Only Warroom's own problem notes (none expected) may go unmarked.
    assert unmarked == [], unmarked
    assert "DRILL · Incident #1 · Sev2" in json.dumps(messages[0].blocks, ensure_ascii=False)
    assert any("resolved" in m.text.lower() for m in messages)
    for user in (ALICE, BOB):  # pages, briefs, escalations
        assert dms(bot.fake, user) and all(m.text.startswith(MARK) for m in dms(bot.fake, user))
    # The declarer's private answer says it too.
    assert any(MARK in a for a in answers(bot.fake))

    # The postmortem is a drill's.
    document = await bot.warroom.bot.postmortems.document(1)
    assert document.startswith("# DRILL - Postmortem: Incident #1")
    assert "practice incident" in document


async def test_lists_show_a_drill_only_to_the_people_in_it(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Real outage")
    await bot.slack.command("drill sev2 Practice run")
    await bot.settle()
    for user in (ALICE, BOB):
        await bot.slack.command("list", user=user)
        await bot.settle()
    alice, bob = answers(bot.fake)[-2:]
    assert "Practice run" in alice and "DRILL" in alice and "Real outage" in alice
    assert "Practice run" not in bob and "Real outage" in bob


async def test_the_drill_command_parses_and_is_in_help_and_the_readme() -> None:
    command = parse("drill sev2 Checkout API returning 500s")
    assert (command.name, command.severity, command.text) == (
        "drill",
        2,
        "Checkout API returning 500s",
    )
    assert parse("drill").name == "drill" and parse("drill").severity is None
    assert "drill [<sev>] [<type>:] [<title>]" in TABLE.markdown()


async def test_drill_help_and_parse_errors(bot: Bot) -> None:
    _, ack = await bot.slack.command("help")
    assert "`drill [&lt;sev&gt;] [&lt;type&gt;:] [&lt;title&gt;]`" in ack["text"]
    _, ack = await bot.slack.command("drill Checkout")
    assert "/incident drill sev2" in ack["text"]
    _, ack = await bot.slack.command("drill sev2")
    assert "Add a title" in ack["text"]


async def test_the_declare_forms_drill_option(bot: Bot) -> None:
    # `/incident drill` alone opens the declare form with Drill ticked.
    await bot.slack.command("drill")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    drill_block = next(b for b in view["blocks"] if b.get("block_id") == "drill")
    assert drill_block["element"]["initial_options"][0]["value"] == "drill"
    await bot.slack.submit(
        view, {"title": "Practice from the form", "severity": "1", "drill": ["drill"]}
    )
    await bot.settle()
    assert channel(bot.fake, "drill-1")
    # The plain declare form leaves it unticked: a real incident.
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    assert (
        "initial_options"
        not in next(b for b in view["blocks"] if b.get("block_id") == "drill")["element"]
    )
    await bot.slack.submit(view, {"title": "Real from the form", "severity": "3"})
    await bot.settle()
    assert channel(bot.fake, "incident-2")
    async with bot.warroom.db.session() as session:
        rows = (await session.exec(select(Incident).order_by(Incident.id))).all()  # type: ignore[arg-type]
    assert [r.is_drill for r in rows] == [True, False]
    assert not dms(bot.fake, CEO)
    assert "Practice from the form" not in json.dumps([m.text for m in announcements(bot.fake)])
    assert "Real from the form" in all_posted_text(bot.fake)


async def test_the_sandbox_shows_a_drill(page: Page) -> None:
    general = await page.channel_id(SANDBOX_ALICE, "general")
    await page.command(SANDBOX_ALICE, general, "/incident drill sev1 Failover practice")
    room = await page.channel_id(SANDBOX_ALICE, "drill-1")

    async def pinned() -> dict[str, Any] | None:
        conversation = (await page.state(SANDBOX_ALICE, room))["open"]
        return conversation if conversation["pins"] else None

    conversation = await eventually_async(pinned)
    assert conversation["pins"][0]["text"].startswith(MARK)
    assert conversation["topic"].startswith("DRILL · Sev1")
    # Not announced in #incidents, and Erin (the sandbox's CEO) and Bob (on call) not paged.
    incidents = await page.channel_id(SANDBOX_ALICE, "incidents")
    assert "Failover practice" not in texts((await page.state(SANDBOX_ALICE, incidents))["open"])
    for person in (SANDBOX_BOB, SANDBOX_ERIN):
        ims = [c for c in (await page.state(person))["channels"] if c["kind"] == "im"]
        for im in ims:
            assert "Failover practice" not in texts((await page.state(person, im["id"]))["open"])
        room_state = next(c for c in (await page.state(person))["channels"] if c["id"] == room)
        assert not room_state["member"]


async def scrape(bot: Bot) -> dict[tuple[str, str], float]:
    """The bot's `/metrics` as Prometheus reads it: (sample name, severity) to value."""
    url = bot.url.removesuffix("/slack/events") + "/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        text = await response.text()
    return {
        (s.name, s.labels.get("severity", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_a_drill_counts_in_no_prometheus_metric(bot: Bot) -> None:
    await bot.slack.command("declare sev3 A real incident")
    await bot.slack.command("drill sev1 Database failover practice")
    await bot.slack.command("drill sev3 Queue practice")
    await bot.settle()
    seen = await scrape(bot)
    assert seen[("warroom_incidents_declared_total", "3")] == 1
    assert seen.get(("warroom_incidents_declared_total", "1"), 0) == 0
    assert seen[("warroom_incidents_open", "3")] == 1
    assert seen[("warroom_incidents_open", "1")] == 0

    for number, room in ((1, "incident-1"), (2, "drill-2"), (3, "drill-3")):
        await bot.slack.command("resolve", channel=channel(bot.fake, room).id)
        await bot.settle()
        view = last_view(bot.fake, "resolve_incident")
        await bot.slack.submit(view, {"root_cause": "Practice" if number > 1 else "Real"})
        await bot.settle()
        assert (await bot.warroom.incidents.snapshot(number)).status == "resolved"
    seen = await scrape(bot)
    assert seen[("warroom_incidents_resolved_total", "3")] == 1
    assert seen.get(("warroom_incidents_resolved_total", "1"), 0) == 0
    assert seen[("warroom_incidents_declared_total", "3")] == 1
    assert seen[("warroom_incidents_open", "3")] == seen[("warroom_incidents_open", "1")] == 0


async def test_the_drill_channel_name_format_and_announce_channel(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    fake.add_channel("drills", is_private=False, members=[ALICE], bot_member=False)
    drills = {"channel_name_format": "practice-{id}", "announce_channel": "#drills"}
    settings = replace(settings_for(fake, database_url), policy=policy_with(drills=drills))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("drill sev2 Failover practice")
        await bot.settle()
        await bot.slack.command("declare sev3 A real incident")
        await bot.settle()

        room = channel(fake, "practice-1")
        assert fake.channel_by_name("drill-1") is None
        assert room.topic.startswith("DRILL · Sev2")
        assert channel(fake, "incident-2")
        # The drill is announced in #drills, marked; the real incident in #incidents only.
        [announced] = bot_messages(fake, channel(fake, "drills").id)
        assert announced.text.startswith(MARK) and "Failover practice" in announced.text
        assert "A real incident" not in announced.text
        in_incidents = json.dumps([m.text for m in announcements(fake)])
        assert "Failover practice" not in in_incidents and "A real incident" in in_incidents
