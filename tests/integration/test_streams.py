"""One ordered stream per destination: an incident's war room, its announcement thread and each
person it DMs get their messages in queue order, and none of them waits for another, nor one
incident for another.

Each test holds the fake's answers for one conversation (`fake.hold`) and shows what must not
wait for it arrive meanwhile: proof by structure, with no timing.
"""

from __future__ import annotations

import asyncio
import re

from sqlmodel import col, select

from app.messages.blocks import simple
from app.services.outbox import STREAMS, Outgoing, enqueue
from app.store.models import OutboxMessage, TimelineEvent
from tests.support.bot import Bot
from tests.support.constants import ALICE, BOB
from tests.support.helpers import bot_messages, channel, dms
from tests.support.slackclient import eventually

# Generous: the machine running the tests may be loaded; nothing here measures time.
WAIT = 30.0


async def declared(bot: Bot, title: str = "Checkout is slow") -> str:
    """Declare through the command and return the new war room's channel id."""
    before = {c.id for c in bot.fake.workspace.channels.values()}
    await bot.slack.command(f"declare sev3 {title}")
    await bot.settle()
    [room] = [
        c.id
        for c in bot.fake.workspace.channels.values()
        if c.id not in before and c.name.startswith("incident-")
    ]
    return room


def headline_ts(bot: Bot, room: str) -> str:
    announcements = channel(bot.fake, "incidents").id
    [headline] = [
        m
        for m in bot_messages(bot.fake, announcements)
        if f"<#{room}>" in m.text and not m.thread_ts
    ]
    return headline.ts


def in_room(bot: Bot, room: str, words: str) -> int:
    return sum(words in m.text for m in bot_messages(bot.fake, room))


def in_thread(bot: Bot, room: str, words: str) -> int:
    announcements = channel(bot.fake, "incidents").id
    return sum(words in m.text for m in bot.fake.replies(announcements, headline_ts(bot, room)))


def briefed(bot: Bot, user: str) -> bool:
    """Whether `user` got the DM that briefs a role holder."""
    return any("You are the" in m.text for m in dms(bot.fake, user))


async def outbox_states(bot: Bot) -> set[str]:
    async with bot.warroom.db.session() as session:
        return set((await session.exec(select(OutboxMessage.state))).all())


async def test_an_updates_war_room_post_and_thread_copy_go_out_together(bot: Bot) -> None:
    room = await declared(bot)
    hold = bot.fake.hold("chat.postMessage", channel=room)
    await bot.slack.command("update Draining the bad node", channel=room)
    await eventually(lambda: hold.waiting == 1, timeout=WAIT)
    # The war-room post is held; its thread copy, queued after it, is posted meanwhile.
    await eventually(lambda: in_thread(bot, room, "Draining the bad node") == 1, timeout=WAIT)
    assert in_room(bot, room, "Draining the bad node") == 0 and hold.waiting == 1
    hold.release()
    await bot.settle(timeout=WAIT)
    assert in_room(bot, room, "Draining the bad node") == 1
    assert in_thread(bot, room, "Draining the bad node") == 1
    assert await outbox_states(bot) == {"sent"}


async def test_a_held_thread_post_holds_neither_the_war_room_nor_a_dm(bot: Bot) -> None:
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents").id
    hold = bot.fake.hold("chat.postMessage", channel=announcements)
    await bot.slack.command("update Rolling back the deploy", channel=room)
    await eventually(lambda: hold.waiting == 1, timeout=WAIT)  # the thread copy
    await eventually(lambda: in_room(bot, room, "Rolling back the deploy") == 1, timeout=WAIT)
    # A later change of the same incident: its war-room post and its DM go out while the
    # thread copy of the update before it is still held.
    await bot.slack.command(f"role comms <@{BOB}|bob>", channel=room)
    await eventually(lambda: briefed(bot, BOB), timeout=WAIT)
    await eventually(lambda: in_room(bot, room, "<@UBOB>") >= 1, timeout=WAIT)
    assert hold.waiting == 1 and in_thread(bot, room, "Rolling back the deploy") == 0
    hold.release()
    await bot.settle(timeout=WAIT)
    assert in_thread(bot, room, "Rolling back the deploy") == 1
    assert in_room(bot, room, "Rolling back the deploy") == 1
    assert await outbox_states(bot) == {"sent"}


async def queue_order(bot: Bot, destination: str) -> list[int]:
    """The numbers of the updates queued for `destination`, in queue order."""
    async with bot.warroom.db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.text)
            .where(OutboxMessage.destination == destination)
            .order_by(col(OutboxMessage.id))
        )
        return numbered(list(rows.all()))


def numbered(texts: list[str]) -> list[int]:
    return [int(found.group(1)) for t in texts if (found := re.search(r"Finding (\d+)\b", t))]


async def test_order_holds_within_each_destination_through_a_transient_failure(bot: Bot) -> None:
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents").id
    await bot.slack.command("update Finding 1", channel=room)
    await bot.settle(timeout=WAIT)
    # The next post to the announcement thread fails (Slack's internal_error): the thread's
    # stream waits out its backoff, the war room's goes on.
    bot.fake.fail("chat.postMessage", "internal_error", times=1, channel=announcements)
    for n in range(2, 7):
        await bot.slack.command(f"update Finding {n}", channel=room)
    await bot.settle(timeout=WAIT)
    queued = await queue_order(bot, "channel")
    assert sorted(queued) == [1, 2, 3, 4, 5, 6]
    assert await queue_order(bot, "thread") == queued
    room_order = numbered([m.text for m in bot_messages(bot.fake, room)])
    assert room_order == queued  # every update in the war room, in queue order, before the tick
    thread = bot.fake.replies(announcements, headline_ts(bot, room))
    assert numbered([m.text for m in thread]) == [1]  # the rest waits behind the failed one
    assert [c.error for c in bot.fake.calls_to("chat.postMessage")].count("internal_error") == 1

    bot.clock.advance(minutes=1)  # past the backoff
    await bot.warroom.engine.tick()
    await bot.settle(timeout=WAIT)
    thread = bot.fake.replies(announcements, headline_ts(bot, room))
    assert numbered([m.text for m in thread]) == queued
    assert numbered([m.text for m in bot_messages(bot.fake, room)]) == queued
    assert await outbox_states(bot) == {"sent"}


async def test_a_held_post_of_one_incident_does_not_delay_another(bot: Bot) -> None:
    first = await declared(bot, "Logins fail")
    second = await declared(bot, "Search is down")
    # Queued for both incidents, the first one's first; the engine's tick delivers them.
    async with bot.warroom.db.session() as session:
        now = bot.clock.now()
        enqueue(session, 1, now, [Outgoing("channel", simple("Note for the first"))])
        enqueue(session, 2, now, [Outgoing("channel", simple("Note for the second"))])
    hold = bot.fake.hold("chat.postMessage", channel=first)
    tick = asyncio.create_task(bot.warroom.engine.tick())
    try:
        await eventually(lambda: hold.waiting == 1, timeout=WAIT)
        await eventually(lambda: in_room(bot, second, "Note for the second") == 1, timeout=WAIT)
        assert in_room(bot, first, "Note for the first") == 0 and not tick.done()
    finally:
        hold.release()
    await asyncio.wait_for(tick, WAIT)
    assert in_room(bot, first, "Note for the first") == 1
    assert in_room(bot, second, "Note for the second") == 1
    assert await outbox_states(bot) == {"sent"}


async def test_a_deleted_announcement_is_posted_again_once_whoever_finds_it_gone(bot: Bot) -> None:
    """The thread's stream (the only one posting under the announcement) and the headline's
    refresh both find it deleted; it is posted again once, and every copy lands under it."""
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents").id
    old = headline_ts(bot, room)
    bot.fake.delete_message(announcements, old)
    await bot.slack.command("severity sev2", channel=room)
    await bot.slack.command("update Draining the bad node", channel=room)
    await bot.slack.command("update Traffic is back", channel=room)
    await bot.settle(timeout=WAIT)
    new = headline_ts(bot, room)  # exactly one headline: posted again once
    assert new != old
    thread = [m.text for m in bot.fake.replies(announcements, new)]
    for words in ("Severity changed", "Draining the bad node", "Traffic is back"):
        assert sum(words in t for t in thread) == 1, thread
    async with bot.warroom.db.session() as session:
        reposted = await session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == "announcement_reposted")
        )
        assert len(reposted.all()) == 1
    assert await outbox_states(bot) == {"sent"}


async def test_at_most_a_bounded_number_of_streams_are_sent_at_once(bot: Bot) -> None:
    """A backlog of more streams than the bound: the posts held by the fake are exactly the
    bound's worth, the rest wait their turn in the bot, and every one goes out once released."""
    await declared(bot)
    people = [f"UPEOPLE{n:02d}" for n in range(STREAMS + 8)]
    for person in people:
        bot.fake.add_user(person, name=person.lower())
    async with bot.warroom.db.session() as session:
        enqueue(
            session,
            1,
            bot.clock.now(),
            [Outgoing(f"user:{p}", simple(f"Backlog for {p}")) for p in people],
        )
    hold = bot.fake.hold("chat.postMessage")
    delivery = asyncio.create_task(bot.warroom.bot.outbox.deliver(1))
    try:
        await eventually(lambda: hold.waiting == STREAMS, timeout=WAIT)
        assert not delivery.done()
    finally:
        hold.release()
    report = await asyncio.wait_for(delivery, WAIT)
    assert hold.most == STREAMS and len(report.sent) == len(people)
    for person in people:
        assert [m.text for m in dms(bot.fake, person)] == [f"Backlog for {person}"]


async def test_with_both_rooms_refusing_people_hear_of_each_problem_once(bot: Bot) -> None:
    """The war room's stream and the thread's both meet an archived room; they do not take
    turns telling the declarer about it at every retry and every new update."""
    room = await declared(bot)
    bot.fake.channel(room).is_archived = True
    channel(bot.fake, "incidents").is_archived = True
    for n in range(1, 4):
        await bot.slack.command(f"update Finding {n}", channel=room)
        await bot.settle(timeout=WAIT)
        bot.clock.advance(minutes=10)  # past the war room's backoff: it is tried again
        await bot.warroom.engine.tick()
        await bot.settle(timeout=WAIT)
    told = [m.text for m in dms(bot.fake, ALICE) if "cannot post" in m.text]
    assert sum("the war room of incident #1" in t for t in told) == 1, told
    assert len(told) <= 2, told  # the announcement channel's too, if it was met first
    assert "pending" in await outbox_states(bot)  # the war room's updates wait for it
