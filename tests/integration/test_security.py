"""Who may act, who may see, and what never reaches the logs."""

from __future__ import annotations

import json
import logging
from dataclasses import replace

import pytest

from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, BOT_TOKEN, CAROL, DAVE, SIGNING_SECRET
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, channel, last_view


async def declared(bot: Bot, text: str = "declare sev3 Queue backlog") -> str:
    await bot.slack.command(text)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def test_restricted_actions_are_refused_with_who_may(bot: Bot) -> None:
    room = await declared(bot)
    for text, verb in [
        ("severity sev1", "change its severity"),
        ("role commander <@UBOB|bob>", "reassign its roles"),
        ("roles", "reassign its roles"),
        ("resolve", "resolve it"),
    ]:
        await bot.slack.command(text, channel=room, user=BOB)
        await bot.settle()
        assert answers(bot.fake)[-1] == (
            f":no_entry_sign: Only the people running incident #1 (<@UALICE>) may {verb}."
        )
    assert not bot.fake.views
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.severity == 3 and snap.commander == ALICE and snap.status == "investigating"
    # Anyone may acknowledge and post updates by default.
    await bot.slack.command("ack", channel=room, user=BOB)
    await bot.slack.command("update Looking at consumers", channel=room, user=BOB)
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.acknowledged_by == BOB and snap.last_update_at is not None


async def test_role_holders_and_admins_may(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    fake.add_usergroup("SADMINS", handle="incident-admins", users=[CAROL])
    settings = settings_for(fake, database_url)
    policy = policy_with(admins=["SADMINS"])
    async for bot in start_bot(replace(settings, policy=policy), fake, clock):
        room = await declared(bot)
        await bot.slack.command("role tech-lead <@UDAVE|dave>", channel=room)
        await bot.settle()
        await bot.slack.command("severity sev2", channel=room, user=DAVE)  # a role holder
        await bot.settle()
        await bot.slack.command("severity sev1", channel=room, user=CAROL)  # an admin, by group
        await bot.settle()
        await bot.slack.command("severity sev4", channel=room, user=BOB)  # neither
        await bot.settle()
        assert "or an admin may change its severity" in answers(fake)[-1]
        snap = await bot.warroom.incidents.snapshot(1)
        assert snap.severity == 1


async def test_forms_are_checked_when_submitted(bot: Bot) -> None:
    room = await declared(bot)
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    await bot.slack.submit(view, {"root_cause": "mine"}, user=BOB)
    await bot.settle()
    assert "may resolve it" in answers(bot.fake)[-1]
    assert (await bot.warroom.incidents.snapshot(1)).status == "investigating"


async def test_private_incidents_are_seen_only_by_their_members(bot: Bot) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": "Secret breach", "private": ["private"]})
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    for user in (ALICE, BOB):
        await bot.slack.command("list", user=user)
        await bot.slack.command("status 1", user=user)
        await bot.slack.command("escalations 1", user=user)
        await bot.settle()
    said = answers(bot.fake)
    alice, bob = said[-6:-3], said[-3:]
    assert "Secret breach" in alice[0] and "Secret breach" in alice[1]
    assert bob == [
        "No open incidents. :sunny:",
        ":no_entry_sign: There is no incident #1.",
        ":no_entry_sign: There is no incident #1.",
    ]
    # Once Bob is in the channel, he sees it.
    room.members.append(BOB)
    await bot.slack.command("list", user=BOB)
    await bot.settle()
    assert "Secret breach" in answers(bot.fake)[-1]


async def app_home(bot: Bot, user: str, event_id: str = "Ev1") -> None:
    body = json.dumps(
        {
            "token": "x",
            "team_id": "T1",
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": 1,
            "event": {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"},
        }
    )
    status, _ = await bot.slack.post_raw(body, bot.slack.headers(body), "application/json")
    assert status == 200
    await bot.settle()


async def test_app_home_hides_private_incidents_from_outsiders(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Public outage")
    await bot.slack.command("declare")
    await bot.settle()
    await bot.slack.submit(
        last_view(bot.fake, "declare_incident"), {"title": "Secret breach", "private": ["private"]}
    )
    await bot.settle()
    await app_home(bot, ALICE, "EvA")
    await app_home(bot, BOB, "EvB")
    alice, bob = str(bot.fake.home_views[ALICE]), str(bot.fake.home_views[BOB])
    assert "Public outage" in alice and "Secret breach" in alice
    assert "Public outage" in bob and "Secret breach" not in bob


async def test_retried_event_deliveries_are_handled_once(bot: Bot) -> None:
    await app_home(bot, ALICE, "EvSame")
    await app_home(bot, ALICE, "EvSame")
    await app_home(bot, ALICE, "EvOther")
    assert len(bot.fake.calls_to("views.publish")) == 2


async def test_tokens_and_secrets_never_reach_the_logs(
    fake: FakeSlack, database_url: str, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = replace(settings_for(fake, database_url), log_level="DEBUG")
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev2 Log check")
        await bot.slack.command("declare sev2 Forged", timestamp=1)  # refused: stale signature
        await bot.settle()
        room = channel(fake, "incident-1").id
        await bot.slack.command("update all good", channel=room)
        await bot.settle()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # DEBUG logging was on
    assert BOT_TOKEN not in logged
    assert SIGNING_SECRET not in logged


async def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(bot: Bot) -> None:
    if not bot.warroom.db.url.startswith("sqlite"):
        pytest.skip("SQLite only")
    from sqlalchemy import text

    async with bot.warroom.db.engine.connect() as conn:
        assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
        assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000
