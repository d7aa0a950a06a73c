"""The "next update by" promise: made by each update (the form asks, the quick update promises
the cadence), shown in the topic, the announcement headline and the update itself, reminded
shortly before, and nudged to the commander once when it is missed."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import select

from app.store.models import Incident, TimelineEvent
from tests.support.bot import Bot
from tests.support.constants import ALICE
from tests.support.helpers import announcements, bot_messages, channel, dms, last_view


async def declare(bot: Bot, text: str = "declare sev2 Checkout API returning 500s") -> str:
    await bot.slack.command(text)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def at(bot: Bot, start: datetime, minute: float) -> None:
    bot.clock.set(start + timedelta(minutes=minute))
    await bot.warroom.engine.tick()
    await bot.settle()


async def update_form(bot: Bot, room: str, **values: str) -> None:
    await bot.slack.command("update", channel=room)
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "post_update"), values)
    await bot.settle()


async def promise(bot: Bot) -> datetime | None:
    async with bot.warroom.db.session() as session:
        incident = await session.get(Incident, 1)
        assert incident is not None
        return incident.next_update_at


def hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M UTC")  # the test workspace's time zone is UTC


def reminders(bot: Bot, room: str) -> list[str]:
    return [m.text for m in bot_messages(bot.fake, room) if "is due by" in m.text]


def late_posts(bot: Bot, room: str) -> list[str]:
    return [m.text for m in bot_messages(bot.fake, room) if "is late" in m.text]


def late_dms(bot: Bot) -> list[str]:
    return [m.text for m in dms(bot.fake, ALICE) if "is late" in m.text]


async def test_the_form_asks_and_the_topic_headline_and_update_show_the_promise(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    bot.clock.set(start + timedelta(minutes=10))
    await update_form(bot, room, investigation="Rolling back", next_update="30")

    due = start + timedelta(minutes=40)
    assert await promise(bot) == due
    topic = channel(bot.fake, "incident-1").topic
    assert f"Next update by {hhmm(due)}" in topic, topic
    [announcement] = announcements(bot.fake)
    token = f"<!date^{int(due.timestamp())}^{{time}}|{hhmm(due)}>"
    assert f"Next update by {token}" in announcement.text.splitlines()[0]
    [posted] = [m for m in bot_messages(bot.fake, room) if "Rolling back" in m.text]
    assert f"*Next update by:* {token}" in posted.text


async def test_the_form_offers_the_cadence_by_default(bot: Bot) -> None:
    room = await declare(bot)  # Sev2: an update every 60 minutes
    await bot.slack.command("update", channel=room)
    await bot.settle()
    [block] = [
        b
        for b in last_view(bot.fake, "post_update")["blocks"]
        if b.get("block_id") == "next_update"
    ]
    element = block["element"]
    assert element["type"] == "static_select"
    assert element["initial_option"]["value"] == "60"
    assert [o["value"] for o in element["options"]] == ["15", "30", "60", "120", "240"]


async def test_the_reminder_comes_before_the_promise_once(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    await update_form(bot, room, investigation="Rolling back", next_update="30")
    await at(bot, start, 24)
    assert reminders(bot, room) == []
    await at(bot, start, 25)
    [reminder] = reminders(bot, room)
    assert reminder.startswith(":hourglass: <@UALICE>: the next update on Incident #1 is due by")
    await at(bot, start, 26)
    await at(bot, start, 27)
    assert len(reminders(bot, room)) == 1
    assert late_posts(bot, room) == [] and late_dms(bot) == []


async def test_a_missed_promise_nudges_the_commander_once_and_says_so_in_the_room(
    bot: Bot,
) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    await update_form(bot, room, investigation="Rolling back", next_update="15")
    await at(bot, start, 10)
    assert len(reminders(bot, room)) == 1
    await at(bot, start, 14)
    assert late_dms(bot) == [] and late_posts(bot, room) == []
    await at(bot, start, 15)
    await at(bot, start, 16)
    await at(bot, start, 20)
    [dm] = late_dms(bot)
    assert "Incident #1: Checkout API returning 500s" in dm
    [post] = late_posts(bot, room)
    assert "<@UALICE>" in post
    async with bot.warroom.db.session() as session:
        [event] = (
            await session.exec(select(TimelineEvent).where(TimelineEvent.kind == "update_missed"))
        ).all()
    assert event.text.startswith(f"Update promised by {hhmm(start + timedelta(minutes=15))}")
    # The room is reminded every cadence (Sev2: 60 minutes) after that, the commander not DMed.
    await at(bot, start, 75)
    assert any("no update on Incident #1" in m.text for m in bot_messages(bot.fake, room))
    assert len(late_dms(bot)) == 1 and len(late_posts(bot, room)) == 1


async def test_a_new_update_before_the_promise_cancels_its_steps_and_plans_the_next(
    bot: Bot,
) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    bot.clock.set(start + timedelta(minutes=10))
    await update_form(bot, room, investigation="Rolling back", next_update="30")
    bot.clock.set(start + timedelta(minutes=20))
    await update_form(bot, room, investigation="Rolled back, watching", next_update="60")
    assert await promise(bot) == start + timedelta(minutes=80)
    for minute in (35, 40, 41, 74):
        await at(bot, start, minute)
    assert reminders(bot, room) == [] and late_posts(bot, room) == [] and late_dms(bot) == []
    rows = {r.key: r for r in await bot.warroom.escalations.rows(1)}
    first = int((start + timedelta(minutes=40)).timestamp())
    assert rows[f"update_reminder:{first}"].state == "cancelled"
    assert rows[f"update_missed:{first}"].outcome == "new promise"
    second = int((start + timedelta(minutes=80)).timestamp())
    assert rows[f"update_reminder:{second}"].due_at == start + timedelta(minutes=75)
    await at(bot, start, 75)
    assert len(reminders(bot, room)) == 1
    await at(bot, start, 80)
    assert len(late_dms(bot)) == 1
    topic = channel(bot.fake, "incident-1").topic
    assert f"Next update by {hhmm(start + timedelta(minutes=80))}" in topic


async def test_resolving_ends_the_promise(bot: Bot) -> None:
    start = bot.clock.now()
    room = await declare(bot)
    await update_form(bot, room, investigation="Rolling back", next_update="30")
    bot.clock.set(start + timedelta(minutes=5))
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "resolve_incident"), {"root_cause": "config"})
    await bot.settle()
    assert await promise(bot) is None
    assert "Next update" not in channel(bot.fake, "incident-1").topic
    assert "Next update" not in announcements(bot.fake)[0].text
    for minute in (25, 30, 90):
        await at(bot, start, minute)
    assert reminders(bot, room) == [] and late_posts(bot, room) == [] and late_dms(bot) == []
    live = [
        r
        for r in await bot.warroom.escalations.rows(1)
        if r.kind.startswith("update_") and r.state in ("pending", "firing")
    ]
    assert live == []


async def test_the_quick_update_promises_the_cadence(bot: Bot) -> None:
    start = bot.clock.now()
    # Declaring promises the first update one cadence out (Sev1: 30 minutes).
    room = await declare(bot, "declare sev1 Payments down")
    assert await promise(bot) == start + timedelta(minutes=30)
    bot.clock.set(start + timedelta(minutes=20))
    await bot.slack.command("update Failing over to the second region", channel=room)
    await bot.settle()
    due = start + timedelta(minutes=50)
    assert await promise(bot) == due
    assert f"Next update by {hhmm(due)}" in channel(bot.fake, "incident-1").topic
    await at(bot, start, 30)  # the declaration's promise was replaced
    assert late_dms(bot) == []
    await at(bot, start, 45)
    assert len(reminders(bot, room)) == 1
    await at(bot, start, 50)
    assert len(late_dms(bot)) == 1


async def test_a_drill_keeps_its_promises_within_the_drill(bot: Bot) -> None:
    start = bot.clock.now()
    await bot.slack.command("drill sev2 Practice: checkout down")
    await bot.settle()
    room = channel(bot.fake, "drill-1").id
    await update_form(bot, room, investigation="Practising", next_update="15")
    await at(bot, start, 10)
    await at(bot, start, 15)
    [reminder] = reminders(bot, room)
    assert reminder.startswith(":test_tube: *DRILL*")
    [dm] = late_dms(bot)
    assert dm.startswith(":test_tube: *DRILL*")
    assert len(late_posts(bot, room)) == 1
