"""A scripted incident with something to review: pins, a :pushpin:, a note, action items."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.fake_slack import FakeSlack
from app.fake_slack.state import Message
from tests.support.bot import Bot
from tests.support.constants import ALICE, BOB, CAROL, DAVE
from tests.support.helpers import channel, last_view

# A Monday morning, so business-hours arithmetic is easy to follow.
T0 = datetime(2030, 1, 7, 10, 0, tzinfo=UTC)


def said(fake: FakeSlack, channel_id: str, user: str, text: str, at: datetime) -> Message:
    """A person's message in a channel, posted at `at` (its ts is that moment)."""
    message = Message(ts=f"{at.timestamp():.6f}", channel=channel_id, user=user, text=text)
    return fake.workspace.add_message(message)


def pin_event(channel_id: str, message: Message, by: str) -> dict[str, object]:
    return {
        "type": "pin_added",
        "user": by,
        "channel_id": channel_id,
        "item": {
            "type": "message",
            "channel": channel_id,
            "created_by": by,
            "message": {
                "type": "message",
                "ts": message.ts,
                "user": message.user,
                "text": message.text,
            },
        },
        "event_ts": message.ts,
    }


def reaction_event(
    channel_id: str, message: Message, by: str, name: str = "pushpin"
) -> dict[str, object]:
    return {
        "type": "reaction_added",
        "user": by,
        "reaction": name,
        "item_user": message.user,
        "item": {"type": "message", "channel": channel_id, "ts": message.ts},
        "event_ts": message.ts,
    }


async def at(bot: Bot, minutes: float) -> None:
    bot.clock.set(T0 + timedelta(minutes=minutes))


async def scripted_incident(bot: Bot) -> str:
    """Declared at 10:00 (detected 09:54), acknowledged 10:03, two pinned messages, a note,
    mitigated 10:15, resolved 10:20, three action items at 10:25. Returns the channel id."""
    fake = bot.fake
    await at(bot, 0)
    await bot.slack.command("declare")
    await bot.settle()
    await bot.slack.submit(
        last_view(fake, "declare_incident"),
        {
            "title": "Checkout API returning 500s",
            "service": "checkout",
            "description": "Half of checkout requests fail",
            "detected_at": str(int((T0 - timedelta(minutes=6)).timestamp())),
        },
    )
    await bot.settle()
    room = channel(fake, "incident-1").id
    first = said(
        fake, room, BOB, "Error rate at 50% since deploy 4812 <!channel>", T0 + timedelta(minutes=2)
    )
    await at(bot, 3)
    await bot.slack.command("ack", channel=room, user=BOB)
    await bot.settle()
    await at(bot, 4)
    assert await bot.slack.event(pin_event(room, first, CAROL), "EvPin1") == 200
    assert await bot.slack.event(pin_event(room, first, CAROL), "EvPin1") == 200  # retried
    await bot.settle()
    second = said(fake, room, DAVE, "Rolled back deploy 4812", T0 + timedelta(minutes=10))
    await at(bot, 11)
    await bot.slack.event(reaction_event(room, second, ALICE), "EvReact1")
    await bot.settle()  # events are handled after their ack, in any order: mark first, then pin
    await bot.slack.event(pin_event(room, second, ALICE), "EvPin2")  # same message: kept once
    await bot.settle()
    await at(bot, 12)
    await bot.slack.command("note Payment provider confirms no issue on their side", channel=room)
    await bot.settle()
    await at(bot, 15)
    await bot.slack.command("mitigate", channel=room)
    await bot.settle()
    await at(bot, 20)
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    await bot.slack.submit(
        last_view(fake, "resolve_incident"),
        {
            "root_cause": "A config push set the payment client's pool size to 0",
            "impact_summary": "Checkout failed for half of requests",
            "users_affected": "~12,000 checkouts",
        },
    )
    await bot.settle()
    await at(bot, 25)
    for text in [
        "action Validate pool size in CI <@UDAVE> due 2030-01-09",
        "action Alert on checkout 5xx rate <@UBOB> due 2030-01-14",
        "action Document the rollback procedure",
    ]:
        await bot.slack.command(text, channel=room)
        await bot.settle()
    return room
