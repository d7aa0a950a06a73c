"""With Slack failing one call in five (429 with Retry-After, 500, slow answers, dropped
connections) on every method, every flow completes and nothing is posted twice."""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta

from app.fake_slack import FakeSlack
from tests.support.bot import Bot
from tests.support.constants import BOB, CAROL
from tests.support.helpers import channel, escalation_dms, last_view

RATE = 0.2


def keyed_messages(fake: FakeSlack) -> Counter[str]:
    """How many times each message the bot tagged with a metadata key appears in Slack."""
    keys: Counter[str] = Counter()
    for message in fake.workspace.index.values():
        payload = ((message.metadata or {}).get("event_payload")) or {}
        if "key" in payload:
            keys[f"{message.channel}:{payload['key']}"] += 1
    return keys


async def until_quiet(bot: Bot, minutes: int = 60) -> None:
    """Tick the engine, a minute at a time, until no queued message is left."""
    for _ in range(minutes):
        bot.clock.advance(minutes=1)
        await bot.warroom.engine.tick()
        await bot.settle(timeout=60)
        if not await pending(bot):
            return
    raise AssertionError("queued messages never drained")


async def pending(bot: Bot) -> int:
    from sqlmodel import col, select

    from app.store.models import Incident, OutboxMessage

    async with bot.warroom.db.session() as session:
        queued = (
            await session.exec(
                select(OutboxMessage.id).where(col(OutboxMessage.state).in_(["pending", "sending"]))
            )
        ).all()
        unbuilt = (
            await session.exec(select(Incident.id).where(col(Incident.war_room_ready).is_(False)))
        ).all()
        stale = (
            await session.exec(
                select(Incident.id).where(col(Incident.published_version) < col(Incident.version))
            )
        ).all()
    return len(queued) + len(unbuilt) + len(stale)


async def open_form(bot: Bot, command: str, room: str, callback: str) -> dict:  # type: ignore[type-arg]
    """Open a form, trying again as a person would when Slack fails to show it."""
    for _ in range(5):
        before = len([v for v in bot.fake.views.values() if v.get("callback_id") == callback])
        await bot.slack.command(command, channel=room)
        await bot.settle(timeout=60)
        views = [v for v in bot.fake.views.values() if v.get("callback_id") == callback]
        if len(views) > before:
            return last_view(bot.fake, callback)
    raise AssertionError(f"{callback} never opened")


async def test_every_flow_completes_at_20_percent_faults(bot: Bot) -> None:
    fake = bot.fake
    fake.fault_rate(RATE, seed=20, slow_seconds=0.2, retry_after=0)
    started = time.monotonic()
    incidents = 3
    for n in range(1, incidents + 1):
        await bot.slack.command(f"declare sev3 Faulty world {n}")
    await bot.settle(timeout=60)
    await until_quiet(bot)
    for n in range(1, incidents + 1):
        room = (await bot.warroom.incidents.snapshot(n)).channel_id
        assert room
        await bot.slack.command("ack", channel=room, user=BOB)
        await bot.slack.command(f"role comms <@{CAROL}|carol>", channel=room)
        await bot.slack.command(f"update Mitigation {n} in progress", channel=room)
        await bot.slack.command("severity sev2", channel=room)
        await bot.settle(timeout=60)
        view = await open_form(bot, "resolve", room, "resolve_incident")
        await bot.slack.submit(view, {"root_cause": f"cause {n}"})
        await bot.settle(timeout=60)
    await until_quiet(bot)

    assert [c for c in fake.calls if not c.ok], "the faults were not injected"
    assert all(n == 1 for n in keyed_messages(fake).values()), keyed_messages(fake)
    announcements = channel(fake, "incidents").id
    for n in range(1, incidents + 1):
        snap = await bot.warroom.incidents.snapshot(n)
        assert snap.status == "resolved" and snap.root_cause == f"cause {n}"
        assert snap.severity == 2 and snap.acknowledged_by == BOB and snap.comms == CAROL
        room = channel(fake, snap.channel_name or "")
        texts = [m.text for m in fake.messages(room.id) if m.user == "UBOT"]
        assert sum(t.startswith(f"*Incident #{n} - Severity") for t in texts) == 1
        assert sum("Issue Resolved" in t for t in texts) == 1
        assert sum("*Update " in t for t in texts) == 1
        assert sum("acknowledged Incident" in t for t in texts) == 1
        assert sum("Severity changed" in t for t in texts) == 1
        assert len(fake.pins(room.id)) == 1
        assert room.topic.startswith("Sev2 High · Resolved")
        [headline] = [
            m for m in fake.messages(announcements) if f"<#{room.id}>" in m.text and not m.thread_ts
        ]
        assert "*Resolved*" in headline.text
        thread = fake.replies(announcements, headline.ts)
        assert sum("*Update " in m.text for m in thread) == 1
        assert sum("Issue Resolved" in m.text for m in thread) == 1
    assert time.monotonic() - started < 240


async def test_escalations_fire_once_each_at_20_percent_faults(bot: Bot) -> None:
    fake = bot.fake
    start = bot.clock.now()
    for n in (1, 2):
        await bot.slack.command(f"declare sev2 Left alone {n}")
    await bot.settle(timeout=60)
    fake.fault_rate(RATE, seed=21, slow_seconds=0.2, retry_after=0)
    for minute in range(1, 41):
        bot.clock.set(start + timedelta(minutes=minute))
        await bot.warroom.engine.tick()
    fake.reset_faults()
    bot.clock.advance(minutes=15)
    await bot.warroom.engine.tick()
    await bot.settle(timeout=60)
    counts = escalation_dms(fake)
    assert counts and all(n == 1 for n in counts.values()), counts
    escalated = Counter(user for (user, line) in counts if "escalated" in line)
    assert set(escalated.values()) == {2} and len(escalated) == 4
    for n in (1, 2):
        room = (await bot.warroom.incidents.snapshot(n)).channel_id
        assert room
        posts = [m for m in fake.messages(room) if "*Escalation step" in m.text]
        assert len(posts) == 3


async def test_no_retry_wait_inside_the_acknowledgment_window(bot: Bot) -> None:
    """Slack rate-limiting every method for 5 s at a time: commands and forms are still
    acknowledged at once, the person is told, and the work completes once Slack recovers."""
    for method in ("conversations.create", "chat.postMessage", "views.open", "users.info"):
        bot.fake.fail_http(method, status=429, retry_after=5, times=100)
    started = time.monotonic()
    status, _ = await bot.slack.command("declare sev3 Slack is throttling us")
    assert status == 200 and time.monotonic() - started < 1.0
    started = time.monotonic()
    status, _ = await bot.slack.command("declare")
    assert status == 200 and time.monotonic() - started < 1.0
    bot.fake.reset_faults()
    await bot.settle(timeout=60)
    bot.clock.advance(minutes=2)
    await bot.warroom.engine.tick()
    await bot.settle(timeout=60)
    room = channel(bot.fake, "incident-1")
    assert bot.fake.pins(room.id)
