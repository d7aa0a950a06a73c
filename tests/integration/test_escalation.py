"""The escalation engine against the seed's ladder, with a controlled clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.services.incidents import DeclareRequest, ResolveRequest
from app.store.models import EscalationRow, TimelineEvent
from tests.support.bot import Bot, start_bot
from tests.support.constants import (
    ALICE,
    CEO,
    DAVE,
    ENG_LEAD,
    ENG_MGR,
    ONCALL,
    ONCALL_BACKUP,
    SPECIALIST,
    VP_ENG,
)
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, bot_messages, channel, dms, escalation_dms, last_view

LADDER_TARGETS = {1: {ONCALL_BACKUP, DAVE}, 2: {ENG_MGR}, 3: {VP_ENG}}


def step_posts(bot: Bot, room: str) -> list[str]:
    return [m.text for m in bot_messages(bot.fake, room) if "*Escalation step" in m.text]


async def events(bot: Bot, kind: str) -> list[TimelineEvent]:
    async with bot.warroom.db.session() as session:
        rows = await session.exec(select(TimelineEvent).where(TimelineEvent.kind == kind))
        return list(rows.all())


async def at_minute(bot: Bot, start: datetime, minute: float) -> Any:
    bot.clock.set(start + timedelta(minutes=minute))
    report = await bot.warroom.engine.tick()
    await bot.settle()
    return report


async def declare(bot: Bot, text: str = "declare sev2 Checkout API returning 500s") -> str:
    await bot.slack.command(text)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def test_sev2_left_alone_climbs_the_whole_ladder(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    # Declaration pages Sev2's audience at once: engineering lead and the on-call group.
    paged = {user for user, line in escalation_dms(bot.fake) if "You are paged" in line}
    assert paged == {ENG_LEAD, ONCALL, "UONCALL2"}
    assert any(
        "Paging <@UENGLEAD> <!subteam^SONCALL>" in m.text for m in bot_messages(bot.fake, room)
    )
    page_dm = next(m for m in dms(bot.fake, ENG_LEAD) if "You are paged" in m.text)
    assert "incident_ack" in str(page_dm.blocks)

    report = await at_minute(bot, start, 4.9)
    assert report.claimed == 0
    await at_minute(bot, start, 5)
    await at_minute(bot, start, 5.5)
    await at_minute(bot, start, 15)
    await at_minute(bot, start, 30)
    await at_minute(bot, start, 31)

    counts = escalation_dms(bot.fake)
    escalated = Counter(
        user for (user, line), n in counts.items() if "escalated" in line for _ in range(n)
    )
    assert escalated == Counter({ONCALL_BACKUP: 1, DAVE: 1, ENG_MGR: 1, VP_ENG: 1})
    posts = step_posts(bot, room)
    assert len(posts) == 3
    assert (
        "No acknowledgment after 5 minutes" in posts[0]
        and "communication channels are down" in posts[0]
    )
    assert "<@UBACKUP> <@UDAVE>" in posts[0]
    assert "engineering manager" in posts[1] and f"Consider: <@{SPECIALIST}>" in posts[1]
    assert ":white_square: Prepare public communication" in posts[2]
    assert (
        ":white_square: Consider fallback procedures (feature flags, circuit breakers)" in posts[2]
    )
    members = set(channel(bot.fake, "incident-1").members)
    assert {ONCALL_BACKUP, DAVE, ENG_MGR, VP_ENG} <= members
    fired = await events(bot, "escalation_fired")
    assert [e.data["key"] for e in fired] == ["page:sev2", "ladder:1", "ladder:2", "ladder:3"]


async def test_acknowledging_at_minute_4_stops_the_5_minute_step(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    bot.clock.set(start + timedelta(minutes=4))
    await bot.slack.command("ack", channel=room, user=ONCALL)
    await bot.settle()
    await at_minute(bot, start, 5)
    await at_minute(bot, start, 15)
    assert [u for (u, line) in escalation_dms(bot.fake) if "escalated" in line] == [ENG_MGR]
    # Cancelled, and off the timeline: a step that never happened is not part of the story.
    assert await events(bot, "escalation_cancelled") == []
    steps = {r.key: (r.state, r.outcome) for r in await bot.warroom.escalations.rows(1)}
    assert steps["ladder:1"] == ("cancelled", "acknowledged")
    ack = [m.text for m in bot_messages(bot.fake, room) if "acknowledged Incident" in m.text]
    assert "after 4m (target: &lt; 15 minutes, met)" in ack[0]


async def test_an_update_at_minute_10_stops_the_15_minute_step(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    await at_minute(bot, start, 5)
    bot.clock.set(start + timedelta(minutes=10))
    await bot.slack.command("update Rolling back the deploy", channel=room)
    await bot.settle()
    await at_minute(bot, start, 15)
    await at_minute(bot, start, 30)
    escalated = {u for (u, line) in escalation_dms(bot.fake) if "escalated" in line}
    assert escalated == {ONCALL_BACKUP, DAVE, VP_ENG}
    assert len(step_posts(bot, room)) == 2


async def test_resolving_at_minute_20_stops_the_30_minute_step_and_reminds_the_retro(
    bot: Bot,
) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    await at_minute(bot, start, 5)
    await at_minute(bot, start, 15)
    bot.clock.set(start + timedelta(minutes=20))
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "resolve_incident"), {"root_cause": "config"})
    await bot.settle()
    await at_minute(bot, start, 30)
    assert VP_ENG not in {u for (u, _) in escalation_dms(bot.fake)}
    assert len(step_posts(bot, room)) == 2

    # The retrospective reminder: an hour after resolution, then every 4 hours until held.
    await at_minute(bot, start, 79)
    assert not [m for m in bot_messages(bot.fake, room) if "hold the retrospective" in m.text]
    await at_minute(bot, start, 80)
    reminders = [m for m in bot_messages(bot.fake, room) if "hold the retrospective" in m.text]
    assert len(reminders) == 1 and "retro_held" in str(reminders[0].blocks)
    await at_minute(bot, start, 80 + 240)
    reminders = [m for m in bot_messages(bot.fake, room) if "hold the retrospective" in m.text]
    assert len(reminders) == 2
    await bot.slack.click("retro_held", "1", channel=room)
    await bot.settle()
    await at_minute(bot, start, 80 + 2 * 240)
    reminders = [m for m in bot_messages(bot.fake, room) if "hold the retrospective" in m.text]
    assert len(reminders) == 2
    assert any("Retrospective held" in m.text for m in bot_messages(bot.fake, room))
    await bot.slack.command("retro done", channel=room)
    await bot.settle()
    assert "already recorded" in answers(bot.fake)[-1]


async def test_restart_mid_ladder_fires_each_overdue_step_once(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    settings = settings_for(fake, database_url)
    start = clock.now()
    async for bot in start_bot(settings, fake, clock):
        await declare(bot)
        await at_minute(bot, start, 3)
    # The bot is down from minute 3 to minute 40.
    clock.set(start + timedelta(minutes=40))
    async for bot in start_bot(settings, fake, clock):
        await bot.warroom.engine.tick()
        await bot.warroom.engine.tick()
        await bot.settle()
        counts = escalation_dms(fake)
        assert all(n == 1 for n in counts.values()), counts
        escalated = {u for (u, line) in counts if "escalated" in line}
        assert escalated == {ONCALL_BACKUP, DAVE, ENG_MGR, VP_ENG}
        assert len(step_posts(bot, channel(fake, "incident-1").id)) == 3


async def test_nothing_fires_for_an_incident_resolved_while_the_replica_was_away(
    bot: Bot,
) -> None:
    start = bot.clock.now()
    await declare(bot)
    # Resolved by a process that died before planning: the resolution recorded the planning
    # it owed, and the sweep (or, failing that, each step's own check) cancels the ladder.
    await bot.warroom.incidents.resolve(1, ResolveRequest(), ALICE)
    report = await at_minute(bot, start, 40)
    assert not report.fired
    ladder = [r for r in await bot.warroom.escalations.rows(1) if r.kind == "ladder"]
    assert len(ladder) == 3 and all(r.state == "cancelled" for r in ladder)
    assert not [u for (u, line) in escalation_dms(bot.fake) if "escalated" in line]


async def test_severity_change_mid_ladder_replans(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot, "declare sev3 Search is slow")
    await at_minute(bot, start, 6)
    bot.clock.set(start + timedelta(minutes=10))
    await bot.slack.command("severity sev1", channel=room)
    await bot.settle()
    # Sev1's audience is paged at once; the rung that already fired does not fire again.
    assert any(u == CEO for (u, line) in escalation_dms(bot.fake) if "You are paged" in line)
    await at_minute(bot, start, 15)
    await at_minute(bot, start, 30)
    counts = escalation_dms(bot.fake)
    assert all(n == 1 for n in counts.values()), counts
    assert len(step_posts(bot, room)) == 3
    # Sev1 expects an update every 30 minutes (Sev3: 4 hours), counted from declaration: the
    # declaration's promise moves forward to minute 30, reminded before and missed there.
    assert len([m for m in bot_messages(bot.fake, room) if "is due by" in m.text]) == 1
    assert len([m for m in bot_messages(bot.fake, room) if "is late" in m.text]) == 1
    # Then the room is reminded every cadence until an update.
    rows = await bot.warroom.escalations.rows(1)
    [pending] = [r for r in rows if r.key == "update_reminder" and r.state == "pending"]
    assert pending.due_at == start + timedelta(minutes=60)


async def test_sev4_outside_business_hours_pages_nobody(fake: FakeSlack, database_url: str) -> None:
    saturday = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    clock = ManualClock(saturday)
    settings = settings_for(fake, database_url)
    async for bot in start_bot(settings, fake, clock):
        await declare(bot, "declare sev4 Typo on the pricing page")
        await at_minute(bot, saturday, 60)
        assert escalation_dms(fake) == Counter()
        await bot.slack.command("escalations 1")
        await bot.settle()
        assert "Nothing planned: Sev4 is handled during business hours." in answers(fake)[-1]


async def test_a_sev4_ladder_waits_for_business_hours(fake: FakeSlack, database_url: str) -> None:
    saturday = datetime(2026, 11, 28, 22, 0, tzinfo=UTC)
    clock = ManualClock(saturday)
    settings = settings_for(fake, database_url)
    from dataclasses import replace

    policy = policy_with(severities={"4": {"ladder": "standard", "notify": ["on_call"]}})
    async for bot in start_bot(replace(settings, policy=policy), fake, clock):
        await declare(bot, "declare sev4 Typo on the pricing page")
        assert escalation_dms(fake) == Counter()
        monday_9 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
        await at_minute(bot, monday_9, -1)
        assert escalation_dms(fake) == Counter()
        await at_minute(bot, monday_9, 0)
        paged = {u for (u, line) in escalation_dms(fake) if "You are paged" in line}
        assert paged == {ONCALL, "UONCALL2"}
        await at_minute(bot, monday_9, 5)
        assert {u for (u, line) in escalation_dms(fake) if "escalated" in line} == {
            ONCALL_BACKUP,
            DAVE,
        }


async def test_update_reminders_and_snooze(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot, "declare sev1 Payments down")
    await bot.slack.command("ack", channel=room)
    await bot.settle()

    def reminders() -> list[str]:
        return [m.text for m in bot_messages(bot.fake, room) if "is due by" in m.text]

    # Declaring promises the first update within Sev1's cadence (30 minutes): the reminder
    # comes 5 minutes before.
    await at_minute(bot, start, 24)
    assert reminders() == []
    await at_minute(bot, start, 25)
    assert reminders()[0].startswith(
        ":hourglass: <@UALICE>: the next update on Incident #1 is due by"
    )
    # Snoozing 15 minutes moves the promise to minute 40, its reminder to 35.
    await bot.slack.click("reminder_snooze_15", "1:15", channel=room)
    await bot.settle()
    assert "snoozed until" in answers(bot.fake)[-1]
    assert "Next update by" in channel(bot.fake, "incident-1").topic
    await at_minute(bot, start, 34)
    assert len(reminders()) == 1
    await at_minute(bot, start, 35)
    assert len(reminders()) == 2
    bot.clock.set(start + timedelta(minutes=38))
    await bot.slack.command("update Fix deployed, watching", channel=room)
    await bot.settle()
    await at_minute(bot, start, 40)  # the snoozed promise was kept: no nudge
    assert not [m for m in bot_messages(bot.fake, room) if "is late" in m.text]
    await at_minute(bot, start, 62)
    assert len(reminders()) == 2
    await at_minute(bot, start, 63)
    assert len(reminders()) == 3


async def test_slack_failures_while_firing_are_retried_without_duplicates(bot: Bot) -> None:
    start = bot.clock.now()
    await declare(bot)
    # 429 once: the client waits Retry-After and the step fires within the tick.
    bot.fake.fail_http("chat.postMessage", status=429, retry_after=1, times=1)
    report = await at_minute(bot, start, 5)
    assert len(report.fired) == 1
    # 500s beyond the client's own retries: the step stays due and fires on a later tick.
    bot.fake.fail_http("chat.postMessage", status=500, times=4)
    bot.fake.fail_http("conversations.invite", status=503, times=1)
    report = await at_minute(bot, start, 15)
    assert report.retried and not report.fired
    [row] = [r for r in await bot.warroom.escalations.rows(1) if r.key == "ladder:2"]
    assert (
        row.state == "pending" and row.attempts == 1 and row.due_at > start + timedelta(minutes=15)
    )
    report = await at_minute(bot, start, 15.1)
    assert report.claimed == 0  # backing off
    report = await at_minute(bot, start, 17)
    assert len(report.fired) == 1
    counts = escalation_dms(bot.fake)
    assert all(n == 1 for n in counts.values()), counts
    assert len(step_posts(bot, channel(bot.fake, "incident-1").id)) == 2
    assert await events(bot, "escalation_retry")


async def test_escalations_command_shows_the_ladder(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    await at_minute(bot, start, 5)
    await bot.slack.command("escalations", channel=room, user=ALICE)
    await bot.settle()
    text = answers(bot.fake)[-1]
    assert "*Escalations for Incident #1* (Sev2 High, response target &lt; 15 minutes)" in text
    assert "Page: *fired*" in text
    assert "Escalation step 1: *fired*" in text
    assert "Escalation step 2: *pending* due <!date^" in text
    assert "Escalation step 3: *pending*" in text
    assert "Update reminder: *pending*" in text


async def test_rows_hold_the_whole_story(bot: Bot) -> None:
    start = bot.clock.now()
    await declare(bot)
    await at_minute(bot, start, 31)
    async with bot.warroom.db.session() as session:
        rows = list((await session.exec(select(EscalationRow).order_by(EscalationRow.id))).all())
    assert [(r.key, r.state) for r in rows if not r.kind.startswith("update_")] == [
        ("page:sev2", "fired"),
        ("ladder:1", "fired"),
        ("ladder:2", "fired"),
        ("ladder:3", "fired"),
    ]
    ladder1 = rows[1]
    assert sorted(ladder1.done) == sorted(
        ["invite", f"dm:{ONCALL_BACKUP}", f"dm:{DAVE}", "channel"]
    )


async def swept_into_a_sev2_ladder(bot: Bot, start: datetime, incident_id: int) -> None:
    """The next tick plans the Sev2 page and ladder the change owed; both then fire."""
    await at_minute(bot, start, 1)
    keys = {r.key for r in await bot.warroom.escalations.rows(incident_id)}
    assert {"page:sev2", "ladder:1", "ladder:2", "ladder:3"} <= keys, keys
    await at_minute(bot, start, 6)
    assert any("You are paged" in line for (_, line) in escalation_dms(bot.fake))
    assert any("escalated" in line for (_, line) in escalation_dms(bot.fake))


async def test_a_declare_whose_process_died_before_planning_is_planned_by_the_sweep(
    bot: Bot,
) -> None:
    """The incident was stored (with the planning it owes) and the process died before
    planning it: the next tick plans it, so the page and the ladder still happen."""
    start = bot.clock.now()
    change = await bot.warroom.incidents.declare(
        DeclareRequest(title="Checkout API returning 500s", severity=2, declared_by=ALICE)
    )
    assert await bot.warroom.escalations.rows(change.incident.id) == []
    await swept_into_a_sev2_ladder(bot, start, change.incident.id)


async def test_a_severity_change_whose_process_died_before_planning_is_planned_by_the_sweep(
    bot: Bot,
) -> None:
    """Raised to sev2 and stored (with the planning it owes), then the process died before
    planning it: the next tick plans the new severity's page and ladder."""
    start = bot.clock.now()
    await declare(bot, "declare sev3 Queue backlog")
    before = {r.key for r in await bot.warroom.escalations.rows(1)}
    assert "page:sev2" not in before, before
    await bot.warroom.incidents.change_severity(1, 2, ALICE)
    assert {r.key for r in await bot.warroom.escalations.rows(1)} == before
    await swept_into_a_sev2_ladder(bot, start, 1)


async def test_a_resolve_whose_process_died_before_planning_is_planned_by_the_sweep(
    bot: Bot,
) -> None:
    """Resolved and stored (with the planning it owes), then the process died before
    planning it: the next tick cancels the ladder and plans the retrospective reminder, so
    nobody is escalated to for a resolved incident."""
    start = bot.clock.now()
    await declare(bot)
    live = {r.key for r in await bot.warroom.escalations.rows(1) if r.state == "pending"}
    assert "ladder:1" in live, live
    await bot.warroom.incidents.resolve(1, ResolveRequest(root_cause="Bad deploy"), ALICE)
    await at_minute(bot, start, 1)
    rows = await bot.warroom.escalations.rows(1)
    assert not any(r.key.startswith("ladder:") and r.state == "pending" for r in rows), rows
    assert any(r.kind == "retro_reminder" and r.state == "pending" for r in rows), rows
    escalated = sum(1 for (_, line) in escalation_dms(bot.fake) if "escalated" in line)
    await at_minute(bot, start, 30)
    assert sum(1 for (_, line) in escalation_dms(bot.fake) if "escalated" in line) == escalated
