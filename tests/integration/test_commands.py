"""Every /incident subcommand, button and refusal, over signed HTTP."""

from __future__ import annotations

import json

import pytest

from tests.support.bot import Bot
from tests.support.constants import ALICE, BOB
from tests.support.helpers import announcements, answers, bot_messages, channel, last_view


async def declared(bot: Bot, text: str = "declare sev3 Queue backlog") -> str:
    await bot.slack.command(text)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def test_help_and_unknown(bot: Bot) -> None:
    status, body = await bot.slack.command("help")
    assert status == 200
    assert "`/incident declare sev2 Checkout API returning 500s`" in body["text"]
    assert "*Sev1* Critical (Immediate)" in body["text"]
    _, body = await bot.slack.command("frobnicate <!channel>")
    assert body["text"].startswith("Unknown command `frobnicate`")
    _, body = await bot.slack.command("<!channel>")
    assert "<!channel>" not in body["text"] and "&lt;!channel&gt;" in body["text"]


async def test_incident_commands_need_an_incident(bot: Bot) -> None:
    for sub in ["ack", "status", "mitigate", "roles", "resolve", "update", "severity sev1"]:
        status, _ = await bot.slack.command(sub, channel="CGENERAL")
        assert status == 200
    await bot.settle()
    said = answers(bot.fake)
    assert len(said) == 7
    assert all("in an incident channel, or add the number" in s for s in said)


async def test_unknown_incident_number(bot: Bot) -> None:
    await bot.slack.command("status 99")
    await bot.settle()
    assert "There is no incident #99." in answers(bot.fake)[-1]


async def test_list_open_incidents(bot: Bot) -> None:
    await bot.slack.command("list")
    await bot.settle()
    assert answers(bot.fake)[-1] == "No open incidents. :sunny:"
    await bot.slack.command("declare sev3 Queue backlog")
    await bot.slack.command("declare sev1 Payments down")
    await bot.settle()
    await bot.slack.command("list")
    await bot.settle()
    listing = answers(bot.fake)[-1]
    assert "*Open incidents (2)*" in listing
    assert listing.index("Payments down") < listing.index("Queue backlog")


async def test_ack_twice_and_by_number(bot: Bot) -> None:
    room = await declared(bot)
    await bot.slack.command("ack 1", channel="CGENERAL", user=BOB)
    await bot.settle()
    await bot.slack.command("ack", channel=room)
    await bot.settle()
    assert "already acknowledged by <@UBOB>" in answers(bot.fake)[-1]
    acks = [m for m in bot_messages(bot.fake, room) if "acknowledged Incident #1" in m.text]
    assert len(acks) == 1
    # The Acknowledge button is gone from the pinned notification once acknowledged.
    pinned = bot_messages(bot.fake, room)[0]
    assert "incident_ack" not in str(pinned.blocks)
    assert pinned.edits


async def test_update_and_resolve_buttons_open_forms(bot: Bot) -> None:
    room = await declared(bot)
    await bot.slack.click("incident_update", "1", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "post_update")
    _, body = await bot.slack.submit(view, {})
    assert body["response_action"] == "errors"
    await bot.slack.submit(view, {"investigation": "Looking at consumers"})
    await bot.slack.click("incident_resolve", "1", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    await bot.slack.submit(view, {"root_cause": "Stuck consumer"})
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status == "resolved" and snap.root_cause == "Stuck consumer"
    assert snap.last_update_at is not None


async def test_mitigate_then_resolve_by_command(bot: Bot) -> None:
    room = await declared(bot)
    bot.clock.advance(minutes=12)
    await bot.slack.command("mitigate", channel=room)
    await bot.settle()
    assert any("is *mitigated*" in m.text for m in bot_messages(bot.fake, room))
    await bot.slack.command("mitigate", channel=room)
    await bot.settle()
    assert "already mitigated" in answers(bot.fake)[-1]
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status == "mitigated"
    assert snap.time_to_mitigate is not None and snap.time_to_mitigate.total_seconds() == 720
    assert channel(bot.fake, "incident-1").topic.startswith("Sev3 Medium · Mitigated")


async def test_severity_same_and_invalid(bot: Bot) -> None:
    room = await declared(bot)
    await bot.slack.command("severity sev3", channel=room)
    await bot.settle()
    assert not any("Severity changed" in m.text for m in bot_messages(bot.fake, room))
    _, body = await bot.slack.command("severity sev7", channel=room)
    assert "sev1, sev2, sev3 or sev4" in body["text"]


async def test_role_reassignment_keeps_history(bot: Bot) -> None:
    room = await declared(bot)
    await bot.slack.command("role commander <@UBOB|bob>", channel=room)
    await bot.slack.command("role commander <@UBOB|bob>", channel=room)
    await bot.settle()
    from sqlmodel import select

    from app.store.models import RoleAssignment

    async with bot.warroom.db.session() as session:
        rows = (await session.exec(select(RoleAssignment).order_by(RoleAssignment.id))).all()
    assert [(r.user_id, r.ended_at is None) for r in rows] == [(ALICE, False), (BOB, True)]
    said = [m.text for m in bot_messages(bot.fake, room) if "is now the" in m.text]
    assert said == ["<@UBOB> is now the *Incident Commander* (assigned by <@UALICE>)."]
    headline = announcements(bot.fake)[0]
    assert "Commander: <@UBOB>" in headline.text


async def test_rate_limited_slack_is_retried(bot: Bot) -> None:
    bot.fake.fail_http("conversations.create", status=429, retry_after=1, times=1)
    bot.fake.fail_http("chat.postMessage", status=500, times=1)
    await bot.slack.command("declare sev3 Retry me")
    await bot.settle(timeout=15)
    room = channel(bot.fake, "incident-1")
    assert bot.fake.pins(room.id)
    assert announcements(bot.fake)
    assert [c.status for c in bot.fake.calls_to("conversations.create")] == [429, 200]


async def test_channel_creation_failure_tells_the_declarer(bot: Bot) -> None:
    bot.fake.fail("conversations.create", error="restricted_action", times=1)
    await bot.slack.command("declare sev3 No channel")
    await bot.settle()
    assert any("could not be created yet (restricted_action)" in a for a in answers(bot.fake))
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.channel_id is None


@pytest.mark.parametrize("timestamp_offset", [-301, 400])
async def test_stale_signatures_are_refused(bot: Bot, timestamp_offset: int) -> None:
    import time

    status, _ = await bot.slack.command(
        "declare sev2 Replay", timestamp=int(time.time()) + timestamp_offset
    )
    assert status == 401
    await bot.settle()
    assert bot.fake.calls_to("conversations.create") == []


async def test_unsigned_and_wrongly_signed_requests_are_refused(bot: Bot) -> None:
    body = "command=%2Fincident&text=declare+sev2+Forged&user_id=UALICE&channel_id=C1"
    status, _ = await bot.slack.post_raw(body, {}, "application/x-www-form-urlencoded")
    assert status == 401
    headers = bot.slack.headers(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    status, _ = await bot.slack.post_raw(body, headers, "application/x-www-form-urlencoded")
    assert status == 401
    await bot.settle()
    assert bot.fake.calls_to("conversations.create") == []
    assert await bot.warroom.incidents.open_incidents() == []


async def test_healthz(bot: Bot) -> None:
    assert bot.slack.session
    health = bot.url.replace("/slack/events", "/healthz")
    async with bot.slack.session.get(health) as response:
        assert response.status == 200
        assert await response.json() == {"ok": True, "database": "ok"}


async def test_app_home_lists_open_public_incidents(bot: Bot) -> None:
    await declared(bot, "declare sev2 Public outage")
    event = {
        "token": "x",
        "team_id": "T1",
        "api_app_id": "A1",
        "type": "event_callback",
        "event_id": "Ev1",
        "event_time": 1,
        "event": {"type": "app_home_opened", "user": BOB, "channel": "D1", "tab": "home"},
    }
    body = json.dumps(event)
    status, _ = await bot.slack.post_raw(body, bot.slack.headers(body), "application/json")
    assert status == 200
    await bot.settle()
    home = bot.fake.home_views[BOB]
    text = str(home["blocks"])
    assert "Public outage" in text and "home_declare" in text
    await bot.slack.interact(
        {
            "type": "block_actions",
            "team": {"id": "T1"},
            "user": {"id": BOB},
            "trigger_id": bot.fake.new_trigger_id(),
            "actions": [{"action_id": "home_declare", "value": "declare", "type": "button"}],
        }
    )
    await bot.settle()
    assert last_view(bot.fake, "declare_incident")


async def test_topic_and_headline_are_edited_only_when_what_they_show_changes(bot: Bot) -> None:
    room = await declared(bot)

    def edits() -> int:
        return len(bot.fake.calls_to("conversations.setTopic")) + len(
            bot.fake.calls_to("chat.update")
        )

    before = edits()
    await bot.slack.command("update Still digging", channel=room)
    await bot.settle()
    # Same status, and the same promise as the declaration's (the same moment, the same
    # cadence): nothing to edit, no Slack calls spent.
    assert edits() == before
    bot.clock.advance(minutes=5)
    await bot.slack.command("update Still digging, nothing new", channel=room)
    await bot.settle()
    # A later promise: the topic and the headline show it; the pinned notification does not.
    assert edits() == before + 2
    before = edits()
    await bot.slack.command("update", channel=room)
    await bot.settle()
    await bot.slack.submit(
        last_view(bot.fake, "post_update"), {"status": "identified", "investigation": "Found it"}
    )
    await bot.settle()
    # Topic, announcement headline and pinned notification (its sentence follows the status).
    assert edits() == before + 3
    assert channel(bot.fake, "incident-1").topic.startswith("Sev3 Medium · Identified")
