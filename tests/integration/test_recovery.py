"""War rooms that Slack left half-built are finished later, once, by the engine's sweep."""

from __future__ import annotations

from tests.support.bot import Bot
from tests.support.constants import ALICE
from tests.support.helpers import announcements, bot_messages, channel, last_view


async def test_channel_creation_failure_is_repaired_on_a_later_tick(bot: Bot) -> None:
    bot.fake.fail("conversations.create", error="ratelimited", times=1)
    await bot.slack.command("declare sev3 Created later")
    await bot.settle()
    assert bot.fake.channel_by_name("incident-1") is None
    # Too soon: a fresh declare is left to the request that is building it.
    report = await bot.warroom.engine.tick()
    assert report.repaired == []
    bot.clock.advance(minutes=1)
    report = await bot.warroom.engine.tick()
    assert report.repaired == [1]
    room = channel(bot.fake, "incident-1")
    assert ALICE in room.members
    assert bot.fake.pins(room.id) == [bot_messages(bot.fake, room.id)[0].ts]
    assert len(announcements(bot.fake)) == 1
    bot.clock.advance(minutes=1)
    assert (await bot.warroom.engine.tick()).repaired == []
    assert len(bot.fake.calls_to("conversations.create")) == 2


async def test_a_failed_announcement_is_posted_later_without_repeating_the_rest(bot: Bot) -> None:
    bot.fake.fail_http("chat.postMessage", status=500, times=6)
    await bot.slack.command("declare sev3 Announce later")
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.channel_id
    bot.clock.advance(minutes=1)
    await bot.warroom.engine.tick()
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert len(announcements(bot.fake)) == 1
    notifications = [m for m in bot_messages(bot.fake, room.id) if "We are investigating" in m.text]
    assert len(notifications) == 1
    assert bot.fake.pins(room.id) == [notifications[0].ts]
    assert len(bot.fake.calls_to("conversations.create")) == 1


async def test_a_resolution_slack_refused_is_posted_later(bot: Bot) -> None:
    await bot.slack.command("declare sev3 Resolve later")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    bot.fake.fail_http("chat.postMessage", status=500, times=6)
    await bot.slack.submit(view, {"root_cause": "disk full"})
    await bot.settle()
    assert not [m for m in bot_messages(bot.fake, room) if "Issue Resolved" in m.text]
    bot.clock.advance(minutes=1)
    await bot.warroom.engine.tick()
    bot.clock.advance(minutes=1)
    await bot.warroom.engine.tick()
    resolutions = [m for m in bot_messages(bot.fake, room) if "Issue Resolved" in m.text]
    assert len(resolutions) == 1
    assert "disk full" in resolutions[0].text
