"""The words people read, over signed HTTP against the fake Slack: briefs that link the war
room, notifications that follow the status and leave out what is not known, role names, links,
the postmortem's names, the timeline, the stats on a phone, who is brought in, and the logs."""

from __future__ import annotations

from tests.conftest import (
    ALICE,
    Bot,
)
from tests.helpers import bot_messages, channel, dms, last_view


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
