"""The words people read, over signed HTTP against the fake Slack: briefs that link the war
room, notifications that follow the status and leave out what is not known, role names, links,
the postmortem's names, the timeline, the stats on a phone, who is brought in, and the logs."""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.domain.lifecycle import Status
from app.domain.metrics import compute
from app.domain.roles import Role, parse_role
from app.domain.snapshot import IncidentSnapshot
from app.fake_slack import FakeSlack
from app.messages import stats
from app.services.clock import ManualClock
from tests.support.bot import Bot, start_bot
from tests.support.constants import (
    ALICE,
    BOB,
    BOT_TOKEN,
    CAROL,
    DAVE,
    ENG_LEAD,
    ONCALL,
    SIGNING_SECRET,
)
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import announcements, bot_messages, channel, dms, last_view
from tests.support.processes import clean_env, free_port, run, serving
from tests.support.slackclient import SlackSender, eventually


def pinned(bot: Bot, room: str) -> str:
    """The pinned Initial Notification as it reads now."""
    [ts] = bot.fake.pins(room)
    [message] = [m for m in bot_messages(bot.fake, room) if m.ts == ts]
    return message.text


async def declare_form(bot: Bot, **fields: object) -> str:
    await bot.slack.command("declare")
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "declare_incident"), fields)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def resolve(bot: Bot, room: str, **fields: str) -> None:
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "resolve_incident"), fields)
    await bot.settle()


async def timeline_texts(bot: Bot) -> list[str]:
    return [e.text for e in await bot.warroom.timeline.entries(1)]


# --- 9a: the commander's brief links the war room ------------------------------------------


async def test_commanders_brief_links_the_war_room(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout API returning 500s")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    [brief] = [m for m in dms(bot.fake, ALICE) if "You are the Incident Commander" in m.text]
    assert f"<#{room}>" in brief.text
    assert "not created yet" not in brief.text


async def test_brief_waits_for_a_channel_created_late(bot: Bot) -> None:
    """Slack refuses the channel at first: the brief goes out once the repair creates it."""
    bot.fake.fail("conversations.create", error="internal_error", times=1)
    await bot.slack.command("declare sev3 Search is slow")
    await bot.settle()
    assert bot.fake.channel_by_name("incident-1") is None
    assert not [m for m in dms(bot.fake, ALICE) if "You are the" in m.text]
    bot.clock.advance(minutes=1)
    await bot.warroom.engine.tick()
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    [brief] = [m for m in dms(bot.fake, ALICE) if "You are the" in m.text]
    assert f"<#{room}>" in brief.text


async def test_a_page_sent_before_the_channel_exists_leaves_the_war_room_out(bot: Bot) -> None:
    """Slack refuses the channel at first: the page DMs go out at once, without a war-room
    line that could only say there is none yet; the pages once the room exists link it."""
    bot.fake.fail("conversations.create", error="internal_error", times=1)
    await bot.slack.command("declare sev2 Search returns nothing")
    await bot.settle()
    assert bot.fake.channel_by_name("incident-1") is None
    [page] = [m for m in dms(bot.fake, ENG_LEAD) if "You are paged" in m.text]
    assert "Response target:" in page.text
    for shown in (page.text, str(page.blocks)):
        assert "not created yet" not in shown and "War room" not in shown


async def test_a_page_sent_once_the_channel_exists_links_it(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Search returns nothing")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    [page] = [m for m in dms(bot.fake, ENG_LEAD) if "You are paged" in m.text]
    assert f"War room: <#{room}>" in page.text


# --- 9b: the Initial Notification reads as sentences ----------------------------------------


async def test_notification_reads_as_sentences(bot: Bot) -> None:
    room = await declare_form(
        bot,
        title="Checkout errors",
        service="checkout",
        description="Half of checkouts fail with HTTP 500 since 14:20.",
    )
    text = pinned(bot, room)
    assert "We are investigating an issue affecting checkout.\n" in text
    assert "\n> Half of checkouts fail with HTTP 500 since 14:20.\n" in text
    assert ".." not in text
    assert "affecting Half" not in text


# --- 9c: what is not known is left out -----------------------------------------------------


async def test_notification_leaves_out_what_is_not_known(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    settings = replace(settings_for(fake, database_url), policy=policy_with(links={}))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev2 Checkout API returning 500s")
        await bot.settle()
        room = channel(fake, "incident-1").id
        for text in (pinned(bot, room), announcements(fake)[0].text):
            assert "*Incident #1 - Severity 2: Checkout API returning 500s*" in text
            assert "Unspecified service" not in text
            assert "Status Page" not in text and "not configured" not in text
            assert "We are investigating an issue.\n" in text
        await resolve(bot, room)
        await bot.slack.command("postmortem", channel=room)
        await bot.settle()
        [stored] = fake.files.values()
        assert stored.content is not None and b"Service" not in stored.content


# --- 9d: the notification follows the status ----------------------------------------------


async def test_notification_follows_the_status(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    expected = {
        Status.IDENTIFIED: "We have identified the cause of the issue and are working on a fix.",
        Status.MONITORING: "A fix for the issue is in place; we are monitoring the results.",
        Status.MITIGATED: (
            "The impact of the issue has stopped; we are monitoring before resolving it."
        ),
    }
    for status, sentence in expected.items():
        await bot.slack.command("update", channel=room)
        await bot.settle()
        await bot.slack.submit(
            last_view(bot.fake, "post_update"), {"status": status.value, "investigation": "x"}
        )
        await bot.settle()
        for text in (pinned(bot, room), announcements(bot.fake)[0].text):
            assert sentence in text, (status, text)
            assert "We are investigating" not in text
    await resolve(bot, room)
    for text in (pinned(bot, room), announcements(bot.fake)[0].text):
        assert "The issue is resolved." in text
        assert "We are investigating" not in text and "monitoring" not in text
    await bot.slack.command("close --force", channel=room)
    await bot.settle()
    assert "The issue was resolved; the incident is closed." in pinned(bot, room)
    assert "The issue was resolved; the incident is closed." in announcements(bot.fake)[0].text


# --- 9e: role names ------------------------------------------------------------------------


async def test_roles_read_naturally(bot: Bot) -> None:
    await bot.slack.command("declare sev3 Queue backlog")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command(f"role comms <@{CAROL}|carol>", channel=room)
    await bot.settle()
    await bot.slack.command(f"role tech-lead <@{ALICE}|alice>", channel=room)
    await bot.settle()
    said = [m.text for m in bot_messages(bot.fake, room) if "is now the" in m.text]
    assert said == [
        f"<@{CAROL}> is now the *Communications Lead* (assigned by <@{ALICE}>).",
        f"<@{ALICE}> is now the *Technical Lead*.",
    ]
    assert "*You are the Communications Lead for Incident #1*" in dms(bot.fake, CAROL)[-1].text
    assert parse_role("communications-lead") is Role.COMMS


# --- 9f: no runbook link unless configured -------------------------------------------------


async def test_no_runbook_link_unless_configured(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    brief = dms(bot.fake, ALICE)[-1].text
    page = next(m.text for m in dms(bot.fake, ONCALL) if "You are paged" in m.text)
    for text in (brief, page):
        assert "Runbook" not in text and "RUNBOOK" not in text


async def test_configured_runbook_is_linked(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    runbook = "https://wiki.example.com/runbooks"
    policy = policy_with(links={"runbook": runbook})
    async for bot in start_bot(
        replace(settings_for(fake, database_url), policy=policy), fake, clock
    ):
        await bot.slack.command("declare sev2 Checkout errors")
        await bot.settle()
        assert f"*Runbooks:* <{runbook}>" in dms(fake, ALICE)[-1].text


async def test_escalation_shows_only_the_links_configured(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    """With an on-call schedule and no escalation contacts, the escalation step links the
    schedule and says nothing of the contacts (nor "not configured")."""
    schedule = "https://oncall.example.com/schedule"
    policy = policy_with(links={"oncall_schedule": schedule})
    async for bot in start_bot(
        replace(settings_for(fake, database_url), policy=policy), fake, clock
    ):
        start = bot.clock.now()
        await bot.slack.command("declare sev2 Checkout errors")
        await bot.settle()
        room = channel(fake, "incident-1").id
        bot.clock.set(start + timedelta(minutes=5))
        await bot.warroom.engine.tick()
        await bot.settle()
        [step] = [m.text for m in bot_messages(fake, room) if "*Escalation step 1" in m.text]
        assert f"On-call schedule: <{schedule}>" in step
        assert "Escalation contacts" not in step and "not configured" not in step


# --- 9g: the postmortem names people -------------------------------------------------------


async def test_postmortem_names_people_and_export_matches(bot: Bot, tmp_path: Path) -> None:
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command(f"role tech-lead <@{DAVE}|dave>", channel=room)
    await bot.slack.command(f"note Asked <@{BOB}> to check the deploy", channel=room)
    await bot.slack.command(f"action Add an alert <@{BOB}>", channel=room)
    await bot.settle()
    await resolve(bot, room)
    await bot.slack.command("postmortem", channel=room)
    await bot.settle()
    [stored] = bot.fake.files.values()
    assert stored.content is not None
    document = stored.content.decode()
    assert "- **Incident Commander:** @alice\n" in document
    assert "- **Technical Lead:** @dave\n" in document
    assert "(@alice): Asked @bob to check the deploy" in document
    assert "| A1 | Add an alert | @bob |" in document
    assert not re.search(r"@U[A-Z0-9]+", document), document

    database = bot.warroom.settings.database_url
    # With the bot's token, `warroom export` names people as the upload does: the same bytes.
    env = clean_env(
        tmp_path, DATABASE_URL=database, SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=bot.fake.api_url
    )
    code, out, err = await run(["export", "1"], env, tmp_path)
    assert code == 0, err
    assert out == document
    # Without Slack it still works, with user IDs in place of names.
    code, out, err = await run(
        ["export", "1"], clean_env(tmp_path, DATABASE_URL=database), tmp_path
    )
    assert code == 0, err
    assert "- **Incident Commander:** @UALICE\n" in out


# --- 9h: cancelled escalation steps stay off the timeline ----------------------------------


async def test_cancelled_escalation_steps_stay_off_the_timeline(bot: Bot) -> None:
    start = bot.clock.now()
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    # Acknowledged without the ladder being told: the engine finds step 1 moot when it is due.
    await bot.warroom.incidents.acknowledge(1, BOB)
    bot.clock.set(start + timedelta(minutes=6))
    await bot.warroom.engine.tick()
    bot.clock.set(start + timedelta(minutes=16))
    await bot.warroom.engine.tick()  # no progress: step 2 escalates for real
    await bot.settle()
    bot.clock.set(start + timedelta(minutes=17))
    await resolve(bot, room)  # step 3 and the update reminder are cancelled
    texts = await timeline_texts(bot)
    assert "Page fired" in texts and "Escalation step 2 fired" in texts
    assert not [t for t in texts if "cancelled" in t], texts
    rows = {r.key: r.state for r in await bot.warroom.escalations.rows(1)}
    assert rows["ladder:1"] == "cancelled" and rows["ladder:3"] == "cancelled"


# --- 9i: the stats fit a phone -------------------------------------------------------------


def _incident(n: int, severity: int, ack: float | None, resolve: float | None) -> IncidentSnapshot:
    t = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
    return IncidentSnapshot(
        id=n,
        title=f"Incident {n}",
        severity=severity,
        status=Status.RESOLVED if resolve is not None else Status.INVESTIGATING,
        description="",
        service="",
        is_private=False,
        declared_by="U1",
        detected_at=t - timedelta(minutes=3),
        declared_at=t,
        acknowledged_at=None if ack is None else t + timedelta(minutes=ack),
        resolved_at=None if resolve is None else t + timedelta(minutes=resolve),
    )


def test_stats_fit_a_phone_screen() -> None:
    incidents = [
        _incident(1, 1, ack=0.5, resolve=45),
        _incident(2, 2, ack=10, resolve=60 * 24 * 3 + 61),
        _incident(3, 2, ack=60 * 23 + 59.5, resolve=None),
        _incident(4, 4, ack=300, resolve=600),
    ]
    rows = compute(incidents * 2500, {1: 0, 2: 15, 3: 60, 4: None})
    printed = stats.plain(rows, 30)
    shown = stats.mrkdwn(rows, 30)
    block = shown.split("```\n", 1)[1].split("\n```", 1)[0]
    for line in [*printed.splitlines(), *block.splitlines()]:
        assert len(line) <= 45, line
    assert "Sev2: 5,000 incidents" in printed
    assert "Ack in target  50% (2,500/5,000)" in printed
    assert "Sev3: no incidents" in printed
    assert "Sev4: 2,500 incidents" in printed and "Ack in target  n/a (no target)" in printed
    assert "All severities: 10,000 incidents" in printed
    assert block in printed


# --- 9j: acknowledging from elsewhere brings you in ----------------------------------------


async def test_acknowledging_from_the_announcement_invites(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert BOB not in room.members
    [announcement] = announcements(bot.fake)
    await bot.slack.click(
        "incident_ack", "1", user=BOB, channel=announcement.channel, message_ts=announcement.ts
    )
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).acknowledged_by == BOB
    assert BOB in room.members


async def test_acknowledging_a_private_incident_from_a_page_is_for_its_members(bot: Bot) -> None:
    """A page DM's Acknowledge works for the people still in the private incident (they are
    invited again, a no-op); someone who left it gets the answer a number never used gets: a
    private incident is seen only by its members."""
    await declare_form(bot, title="Secret breach", severity="3", private=["private"])
    room = channel(bot.fake, "incident-1")
    assert room.is_private
    [page] = [m for m in dms(bot.fake, ONCALL) if "You are paged" in m.text]
    room.members.remove(ONCALL)  # left the channel
    await bot.slack.click(
        "incident_ack", "1", user=ONCALL, channel=page.channel, message_ts=page.ts
    )
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).acknowledged_by is None
    room.members.append(ONCALL)
    await bot.slack.click(
        "incident_ack", "1", user=ONCALL, channel=page.channel, message_ts=page.ts
    )
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).acknowledged_by == ONCALL
    assert ONCALL in room.members


# --- 10: logs ------------------------------------------------------------------------------


async def test_incident_changes_are_logged_without_user_text(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await bot.slack.command("declare sev3 Falcon checkout outage")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("severity sev1", channel=room)
    await bot.settle()
    await resolve(bot, room, root_cause="Falcon config")
    await bot.slack.command("close --force", channel=room)
    await bot.settle()
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("app.")]
    said = [line for line in lines if line.startswith("incident 1 ")]
    assert said == [
        f"incident 1 declared: Sev3 by {ALICE}",
        f"incident 1 severity changed: Sev3 -> Sev1 by {ALICE}",
        f"incident 1 resolved: Sev1 by {ALICE}",
        f"incident 1 closed: Sev1 by {ALICE} (without a postmortem)",
    ]
    assert not [line for line in lines if "Falcon" in line]


def test_library_loggers_quiet_unless_debug() -> None:
    from app.cli import quiet_libraries

    names = ("alembic", "apscheduler")
    before = {name: logging.getLogger(name).level for name in names}
    try:
        quiet_libraries("INFO")
        assert all(logging.getLogger(n).getEffectiveLevel() == logging.WARNING for n in names)
        quiet_libraries("DEBUG")
        assert all(logging.getLogger(n).level == logging.NOTSET for n in names)
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)


async def test_served_bot_logs_incidents_not_its_libraries(tmp_path: Path, fake: FakeSlack) -> None:
    (tmp_path / "warroom.toml").write_text("[escalation]\ntick_seconds = 1\n")
    port = free_port()
    env = clean_env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
    )
    async with serving(env, tmp_path, port) as served:
        async with SlackSender(f"{served.base}/slack/events", SIGNING_SECRET, fake) as sender:
            await sender.command("declare sev2 Falcon checkout outage")
            await eventually(lambda: fake.channel_by_name("incident-1"), timeout=10)
        await asyncio.sleep(3.5)  # a few engine ticks
    log = served.stderr
    assert "incident 1 declared: Sev2 by UALICE" in log, log
    assert "alembic" not in log and "apscheduler" not in log, log
    assert "Falcon" not in log
