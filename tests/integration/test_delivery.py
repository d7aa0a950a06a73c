"""Nothing lost, nothing stuck: what happens to messages and escalation steps when Slack
refuses them for a reason that is not an outage (a revoked token, an archived room, a deleted
announcement, an invalid message), and how fast queued work goes out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from app.bootstrap import build
from app.checks import run_checks
from app.config import Settings
from app.domain.escalation import MAX_ATTEMPTS
from app.fake_slack import FakeSlack
from app.messages.blocks import simple
from app.server import prepare
from app.services.clock import ManualClock
from app.services.outbox import Outgoing, enqueue
from app.services.ports import ErrorKind, SlackError
from app.store.models import EscalationRow, Incident, OutboxMessage, TimelineEvent
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, DAVE, ENG_LEAD, ONCALL, ONCALL_BACKUP, ONCALL_GROUP
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, channel, dms, last_view
from tests.support.slackclient import eventually


async def declared(bot: Bot, text: str = "declare sev3 Checkout is slow") -> str:
    """Declare through the command and return the war room's channel id."""
    await bot.slack.command(text)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def health(bot: Bot) -> tuple[int, dict[str, Any]]:
    assert bot.slack.session
    async with bot.slack.session.get(bot.url.replace("/slack/events", "/healthz")) as response:
        return response.status, await response.json()


async def tick(bot: Bot, minutes: float = 1) -> None:
    bot.clock.advance(minutes=minutes)
    await bot.warroom.engine.tick()
    await bot.settle()


async def outbox_states(bot: Bot) -> list[str]:
    async with bot.warroom.db.session() as session:
        rows = await session.exec(select(OutboxMessage.state).order_by(col(OutboxMessage.id)))
        return list(rows.all())


async def announcement_ts(bot: Bot, incident_id: int = 1) -> str | None:
    async with bot.warroom.db.session() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None
        return incident.announcement_ts


def texts(fake: FakeSlack, channel_id: str) -> list[str]:
    return [m.text for m in fake.messages(channel_id) if m.user == "UBOT"]


def revoke_token(fake: FakeSlack) -> None:
    """Every call answers `token_revoked` until `reset_faults` (the token works again)."""
    fake.fail("*", "token_revoked", times=100_000)


def test_slack_errors_are_classified() -> None:
    kinds = {
        code: SlackError("chat.postMessage", code).kind
        for code in (
            "ratelimited",
            "http_503",
            "connection_error (ServerDisconnectedError)",
            "invalid_auth",
            "token_revoked",
            "is_archived",
            "channel_not_found",
            "not_in_channel",
            "thread_not_found",
            "message_not_found",
            "invalid_blocks",
            "msg_too_long",
        )
    }
    assert kinds == {
        "ratelimited": ErrorKind.TRANSIENT,
        "http_503": ErrorKind.TRANSIENT,
        "connection_error (ServerDisconnectedError)": ErrorKind.TRANSIENT,
        "invalid_auth": ErrorKind.CREDENTIAL,
        "token_revoked": ErrorKind.CREDENTIAL,
        "is_archived": ErrorKind.ROOM,
        "channel_not_found": ErrorKind.ROOM,
        "not_in_channel": ErrorKind.ROOM,
        "thread_not_found": ErrorKind.GONE_THREAD,
        "message_not_found": ErrorKind.GONE_THREAD,
        "invalid_blocks": ErrorKind.INVALID_MESSAGE,
        "msg_too_long": ErrorKind.INVALID_MESSAGE,
    }


# --- a refused token --------------------------------------------------------------------


async def test_a_revoked_token_holds_messages_until_it_works_again(
    bot: Bot,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents").id
    [headline] = [m for m in bot.fake.messages(announcements) if f"<#{room}>" in m.text]
    revoke_token(bot.fake)
    with caplog.at_level(logging.WARNING):
        await bot.slack.command("ack", channel=room, user=BOB)
        await bot.slack.command("update Rolling back the deploy", channel=room)
        await bot.settle()
        assert any("Saved" in a and "token_revoked" in a for a in answers(bot.fake))
        status, body = await health(bot)
        assert status == 503 and body["slack"] == "token_revoked"
        before = len(bot.fake.calls)
        for _ in range(5):
            await tick(bot)
        # Held, not hammered: only auth.test, on a backoff, while the token is refused.
        probes = {c.method for c in bot.fake.calls[before:]}
        assert probes == {"auth.test"}
        assert set(await outbox_states(bot)) == {"sent", "pending"}
        assert await run_checks(settings) == 1
        assert "holds 4 queued message(s)" in capsys.readouterr().out

        bot.fake.reset_faults()  # the token works again
        await tick(bot, minutes=10)
    refusals = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "token_revoked" in r.message
    ]
    assert len(refusals) == 1, [r.message for r in refusals]
    assert set(await outbox_states(bot)) == {"sent"}
    said = texts(bot.fake, room)
    assert sum("acknowledged Incident" in t for t in said) == 1
    assert sum("Rolling back the deploy" in t for t in said) == 1
    thread = [m.text for m in bot.fake.replies(announcements, headline.ts)]
    assert sum("acknowledged Incident" in t for t in thread) == 1
    assert sum("Rolling back the deploy" in t for t in thread) == 1
    assert (await health(bot))[0] == 200


async def test_the_pause_ends_by_itself_once_the_token_works_even_with_nothing_queued(
    bot: Bot,
) -> None:
    await declared(bot)
    revoke_token(bot.fake)
    with pytest.raises(SlackError):
        await bot.warroom.services.slack.set_topic("C1", "anything")
    assert (await health(bot))[0] == 503
    bot.fake.reset_faults()
    await tick(bot)
    assert await health(bot) == (200, {"ok": True, "database": "ok"})


# --- rooms that cannot take messages ---------------------------------------------------


def dm_texts(fake: FakeSlack, user: str) -> list[str]:
    return [m.text for m in dms(fake, user)]


@pytest.mark.parametrize("trouble", ["archived", "bot removed from a private room"])
async def test_messages_wait_for_a_room_that_cannot_take_them_and_people_are_told(
    bot: Bot, trouble: str
) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": "Card payments fail", "private": ["private"]})
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    await bot.slack.command(f"role commander <@{BOB}|bob>", channel=room.id)
    await bot.settle()
    if trouble == "archived":
        room.is_archived = True
        fix = "is archived"
    else:
        room.members.remove("UBOT")
        fix = "/invite"
    # One at a time: commands sent together are stored in whichever order their work gets to
    # the incident, and the order checked below is the order they were stored in.
    await bot.slack.command("update Failing over to the second provider", channel=room.id)
    await bot.settle()
    await bot.slack.command("ack", channel=room.id, user=BOB)
    await bot.settle()
    for _ in range(3):
        await tick(bot, minutes=10)
    for person in (ALICE, BOB):  # the declarer and the commander, told once each
        told = [t for t in dm_texts(bot.fake, person) if "cannot post" in t]
        assert len(told) == 1 and fix in told[0], dm_texts(bot.fake, person)
    assert "pending" in await outbox_states(bot)

    room.is_archived = False  # a person unarchives the room, or adds the bot back
    if "UBOT" not in room.members:
        room.members.append("UBOT")
    await tick(bot, minutes=10)
    assert set(await outbox_states(bot)) == {"sent", "skipped"}  # skipped: no thread, private
    said = texts(bot.fake, room.id)
    assert sum("Failing over to the second provider" in t for t in said) == 1
    assert sum("acknowledged Incident" in t for t in said) == 1
    update = next(i for i, t in enumerate(said) if "Failing over" in t)
    assert update < next(i for i, t in enumerate(said) if "acknowledged Incident" in t)


@pytest.mark.parametrize(
    ("private", "trouble", "event_type"),
    [
        (False, "archived", "channel_unarchive"),
        (True, "archived", "group_unarchive"),
        (True, "bot removed", "member_joined_channel"),
    ],
)
async def test_held_messages_go_out_as_soon_as_slack_says_the_room_works_again(
    bot: Bot, private: bool, trouble: str, event_type: str
) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(
        view, {"title": "Card payments fail", **({"private": ["private"]} if private else {})}
    )
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    if trouble == "archived":
        room.is_archived = True
    else:
        room.members.remove("UBOT")
    # One at a time: commands sent together are stored in whichever order their work gets to
    # the incident, and the order checked below is the order they were stored in.
    for command in ("severity sev3", "update Failing over to the second provider", "ack"):
        await bot.slack.command(command, channel=room.id)
        await bot.settle()
    await tick(bot)
    assert "pending" in await outbox_states(bot)
    [pinned] = bot.fake.pins(room.id)

    def shows_sev3() -> bool:
        pin = bot.fake.workspace.index[(room.id, pinned)].text
        return "Severity 3" in pin and room.topic.startswith("Sev3")

    assert not shows_sev3()  # Slack refused the topic or the pinned notification
    async with bot.warroom.db.session() as session:
        assert (await session.get(Incident, 1)).room_problem  # type: ignore[union-attr]

    # A person unarchives the room or adds Warroom back; Slack says so (the clock stands
    # still: nothing waits for the outbox's next retry).
    room.is_archived = False
    if "UBOT" not in room.members:
        room.members.append("UBOT")
    event = {"type": event_type, "channel": room.id, "user": "UBOT"}
    if event_type == "member_joined_channel":
        event |= {"channel_type": "G", "inviter": ALICE}
        # Someone else joining says nothing about Warroom's posts.
        await bot.slack.event({**event, "user": BOB}, "EvOther")
        await bot.settle()
        assert "pending" in await outbox_states(bot)
    else:
        event["user"] = ALICE
    assert await bot.slack.event(event, "EvFixed") == 200

    async def delivered() -> bool:
        return "pending" not in await outbox_states(bot)

    deadline = asyncio.get_running_loop().time() + 1
    while not await delivered():
        assert asyncio.get_running_loop().time() < deadline, await outbox_states(bot)
        await asyncio.sleep(0.02)
    await bot.slack.event(event, "EvFixed")  # Slack's retry of the same delivery
    await bot.slack.event(event, "EvFixedAgain")  # and another one: nothing is held any more
    await bot.settle()
    assert set(await outbox_states(bot)) <= {"sent", "skipped"}
    said = texts(bot.fake, room.id)
    update = [i for i, t in enumerate(said) if "Failing over to the second provider" in t]
    acked = [i for i, t in enumerate(said) if "acknowledged Incident" in t]
    assert len(update) == 1 and len(acked) == 1 and update[0] < acked[0], said
    assert shows_sev3()  # the refused refresh is redone too
    async with bot.warroom.db.session() as session:
        assert (await session.get(Incident, 1)).room_problem is None  # type: ignore[union-attr]


async def test_a_public_room_the_bot_is_not_in_is_joined_and_the_message_posted(bot: Bot) -> None:
    room = await declared(bot)
    bot.fake.fail("chat.postMessage", "not_in_channel", times=1)
    bot.fake.channel(room).members.remove("UBOT")
    await bot.slack.command("update Restarting the workers", channel=room)
    await bot.settle()
    assert "UBOT" in bot.fake.channel(room).members
    assert sum("Restarting the workers" in t for t in texts(bot.fake, room)) == 1
    assert set(await outbox_states(bot)) == {"sent"}


async def test_a_deleted_announcement_is_posted_again_and_its_thread_continues(
    bot: Bot,
) -> None:
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents").id
    [old] = [m for m in bot.fake.messages(announcements) if f"<#{room}>" in m.text]
    bot.fake.delete_message(announcements, old.ts)
    await bot.slack.command("update Draining the bad node", channel=room)
    await bot.settle()
    [new] = [m for m in bot.fake.messages(announcements) if f"<#{room}>" in m.text]
    assert new.ts != old.ts
    thread = [m.text for m in bot.fake.replies(announcements, new.ts)]
    assert sum("Draining the bad node" in t for t in thread) == 1
    snap_ts = await announcement_ts(bot)
    assert snap_ts == new.ts
    assert set(await outbox_states(bot)) == {"sent"}


async def test_an_invalid_message_is_dropped_loudly_and_the_commander_told(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    room = await declared(bot)
    bot.fake.fail("chat.postMessage", "invalid_blocks", times=1)
    with caplog.at_level(logging.WARNING):
        await bot.slack.command("update Cache flushed", channel=room)
        await bot.settle()
    [dropped] = [r for r in caplog.records if "refused by Slack for good" in r.message]
    assert dropped.levelno == logging.ERROR
    assert "incident 1" in dropped.message and "outbox:" in dropped.message
    [told] = [t for t in dm_texts(bot.fake, ALICE) if "Slack refused a message" in t]
    assert "invalid_blocks" in told and "Cache flushed" in told
    # The messages after it still went out (the thread copy of the update).
    assert await outbox_states(bot) == ["sent"] * 1 + ["failed", "sent"]


# --- escalation steps -------------------------------------------------------------------


async def test_a_page_fired_before_the_channel_exists_is_posted_once_it_does(bot: Bot) -> None:
    bot.fake.fail("conversations.create", "internal_error", times=1)
    await bot.slack.command("declare sev2 Search returns nothing")
    await bot.settle()
    assert bot.fake.channel_by_name("incident-1") is None
    assert any("You are paged" in m.text for m in dms(bot.fake, ENG_LEAD))
    await tick(bot)  # the repair sweep builds the room; the page's channel part follows
    room = channel(bot.fake, "incident-1").id
    assert sum("Paging <@UENGLEAD>" in t for t in texts(bot.fake, room)) == 1
    assert sum("You are paged" in m.text for m in dms(bot.fake, ENG_LEAD)) == 1


async def test_a_missing_user_group_does_not_keep_the_others_from_being_paged(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    directory = {
        "on_call": [ONCALL_GROUP, "SGONE"],
        "on_call_backup": [ONCALL_BACKUP],
        "engineering_lead": [ENG_LEAD],
        "tech_lead": [DAVE],
    }
    settings = replace(settings_for(fake, database_url), policy=policy_with(directory=directory))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev2 Orders are stuck")
        await bot.settle()
        await tick(bot)
        for person in (ENG_LEAD, ONCALL, "UONCALL2"):
            assert sum("You are paged" in m.text for m in dms(fake, person)) == 1, person
        room = channel(fake, "incident-1")
        assert {ENG_LEAD, ONCALL, "UONCALL2"} <= set(room.members)
        reports = [t for t in texts(fake, room.id) if "Could not read the user group" in t]
        assert len(reports) == 1 and "SGONE" in reports[0] and "no_such_subteam" in reports[0]


# --- delivery without waiting for the tick -----------------------------------------------


async def test_messages_queued_during_a_delivery_go_out_without_waiting_for_a_tick(
    bot: Bot,
) -> None:
    room = await declared(bot)
    bot.fake.delay("chat.postMessage", 0.3)
    posts = len(bot.fake.calls_to("chat.postMessage"))
    await bot.slack.command("update First finding", channel=room)
    # The second change is saved while the first one's messages are being posted.
    await eventually(lambda: len(bot.fake.calls_to("chat.postMessage")) > posts)
    await bot.slack.command("update Second finding", channel=room)
    await bot.slack.command("ack", channel=room, user=BOB)
    await bot.settle()
    said = texts(bot.fake, room)
    async with bot.warroom.db.session() as session:
        rows = await session.exec(
            select(OutboxMessage.text)
            .where(OutboxMessage.destination == "channel")
            .order_by(col(OutboxMessage.id))
        )
        queued = list(rows.all())
    found = ("First finding", "Second finding", "acknowledged Incident")

    def in_order(messages: list[str]) -> list[str]:
        """The three changes, in the order `messages` has them (each exactly once)."""
        where = {words: [i for i, t in enumerate(messages) if words in t] for words in found}
        assert all(len(at) == 1 for at in where.values()), messages
        return sorted(found, key=lambda words: where[words][0])

    # Posted in the order they were stored (the two sent together are stored in whichever
    # order their work got to the incident), the first one first.
    assert in_order(said) == in_order(queued)
    assert in_order(said)[0] == "First finding"
    assert set(await outbox_states(bot)) == {"sent"}


# --- replicas: a stable name, short leases ------------------------------------------------


def test_a_replica_keeps_its_name_across_restarts(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A working folder of its own: bots that other tests (in parallel) run from the checkout
    # hold the checkout's slots.
    monkeypatch.chdir(tmp_path)
    first = build(settings)
    second = build(settings)  # another live replica on this host and folder
    names = (first.services.replica, second.services.replica)
    assert names[0] != names[1]
    assert first.replica and second.replica
    first.replica.release()  # the first one stops (or dies: its lock goes with it)
    restarted = build(settings)
    assert restarted.services.replica == names[0]
    second.replica.release()
    assert restarted.replica
    restarted.replica.release()
    named = build(replace(settings, replica_name="web-3"))
    assert named.services.replica == "web-3"


async def test_a_restarted_replica_takes_back_its_own_work_at_once(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    settings = settings_for(fake, database_url)
    start = clock.now()
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev2 Logins fail")
        await bot.settle()
        # The replica dies while it sends a message and fires the 5-minute step: both are
        # claimed under its name, with a lease that has not lapsed.
        async with bot.warroom.db.session() as session:
            enqueue(session, 1, clock.now(), [Outgoing("channel", simple("Left in flight"))])
        assert (await bot.warroom.bot.outbox._claim(1)).rows
        clock.set(start + timedelta(minutes=5))
        assert [r.key for r in await bot.warroom.engine._claim(1)] == ["ladder:1"]
    async for bot in start_bot(settings, fake, clock):  # restarted: same host, same folder
        await bot.warroom.engine.tick()  # at once: the clock has not moved
        await bot.settle()
        room = channel(fake, "incident-1").id
        assert sum("Left in flight" in t for t in texts(fake, room)) == 1
        assert sum("*Escalation step 1" in t for t in texts(fake, room)) == 1


async def test_a_live_replica_renews_its_lease_so_another_does_not_take_over(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    policy = policy_with(escalation={"lease_seconds": 3})
    settings = replace(settings_for(fake, database_url), policy=policy)
    async for bot in start_bot(settings, fake, clock):
        room = await declared(bot)
        other = build(settings, clock=clock)
        await prepare(other)
        try:
            fake.delay("chat.postMessage", 2.0)
            await bot.slack.command("update Slow Slack today", channel=room)
            await eventually(lambda: any("Slow Slack" in str(c.args) for c in fake.calls))
            # Longer than the lease goes by while the post is in flight.
            await asyncio.sleep(0.6)
            clock.advance(seconds=2)
            await asyncio.sleep(0.9)
            clock.advance(seconds=2)
            report = await other.bot.outbox.deliver()
            assert report.sent == [] and report.failed == []
            await bot.settle()
        finally:
            await other.close()
        fake.delay("chat.postMessage", 0)
        assert sum("Slow Slack today" in t for t in texts(fake, room)) == 1


async def escalation_rows(bot: Bot) -> dict[str, EscalationRow]:
    async with bot.warroom.db.session() as session:
        rows = await session.exec(select(EscalationRow).order_by(col(EscalationRow.id)))
        return {row.key: row for row in rows.all()}


async def timeline_texts(bot: Bot, kind: str) -> list[str]:
    async with bot.warroom.db.session() as session:
        rows = await session.exec(select(TimelineEvent).where(TimelineEvent.kind == kind))
        return [event.text for event in rows.all()]


async def test_a_page_slack_refuses_for_good_ends_with_a_note_instead_of_retrying(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    directory = {
        "on_call": [ONCALL_GROUP],
        "engineering_lead": [ENG_LEAD, "UNOBODY"],  # not a member of the workspace
        "on_call_backup": [ONCALL_BACKUP],
        "tech_lead": [DAVE],
    }
    settings = replace(settings_for(fake, database_url), policy=policy_with(directory=directory))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev2 Exports time out")
        await bot.settle()
        for _ in range(4):
            await tick(bot, minutes=1)
        page = (await escalation_rows(bot))["page:sev2"]
        assert page.state == "fired"
        assert await timeline_texts(bot, "escalation_retry") == []
        room = channel(fake, "incident-1").id
        notes = [t for t in texts(fake, room) if "<@UNOBODY>" in t and "not retried" in t]
        assert len(notes) == 1 and "channel_not_found" in notes[0]
        assert sum("You are paged" in m.text for m in dms(fake, ENG_LEAD)) == 1


async def test_a_step_slack_keeps_failing_is_retried_a_while_then_given_up_visibly(
    bot: Bot,
) -> None:
    start = bot.clock.now()
    await declared(bot, "declare sev2 Webhooks are late")
    bot.fake.fail("chat.postMessage", "internal_error", times=10_000)  # Slack keeps failing
    for minute in range(5, 130, 5):
        bot.clock.set(start + timedelta(minutes=minute))
        await bot.warroom.engine.tick()
        await bot.settle()
    rung = (await escalation_rows(bot))["ladder:1"]
    assert rung.state == "failed" and rung.attempts == MAX_ATTEMPTS - 1
    retries = await timeline_texts(bot, "escalation_retry")
    assert sum("Escalation step 1" in t for t in retries) == 1
    problems = await timeline_texts(bot, "problem")
    assert sum("Escalation step 1 could not be completed" in t for t in problems) == 1


# --- topic, pinned notification and headline ---------------------------------------------


async def test_a_refresh_slack_refused_is_redone_once_the_room_works_again(bot: Bot) -> None:
    room_id = await declared(bot)
    room = bot.fake.channel(room_id)
    announcements = channel(bot.fake, "incidents").id
    room.is_archived = True
    await bot.slack.command("severity sev2", channel=room_id)
    await bot.settle()
    await tick(bot)
    assert room.topic.startswith("Sev3")  # Slack refused it
    room.is_archived = False  # a person unarchives the room
    for _ in range(3):
        await tick(bot)
    assert room.topic.startswith("Sev2 High")
    [pinned] = bot.fake.pins(room_id)
    assert "Severity 2" in bot.fake.workspace.index[(room_id, pinned)].text
    [headline] = [m for m in bot.fake.messages(announcements) if f"<#{room_id}>" in m.text]
    assert headline.text.startswith("*Sev2 High*")


async def test_a_topic_refused_because_the_bot_left_a_public_room_is_set_after_rejoining(
    bot: Bot,
) -> None:
    room_id = await declared(bot)
    room = bot.fake.channel(room_id)
    room.members.remove("UBOT")
    await bot.slack.command("severity sev2", channel=room_id)
    await bot.settle()
    assert "UBOT" in room.members and room.topic.startswith("Sev2 High")


async def test_a_deleted_pinned_notification_is_posted_and_pinned_again(bot: Bot) -> None:
    room_id = await declared(bot)
    [old] = bot.fake.pins(room_id)
    bot.fake.delete_message(room_id, old)
    await bot.slack.command("severity sev2", channel=room_id)
    await bot.settle()
    [pinned] = bot.fake.pins(room_id)
    assert pinned != old
    assert "Severity 2" in bot.fake.workspace.index[(room_id, pinned)].text


async def test_edits_that_would_change_nothing_are_not_sent(bot: Bot) -> None:
    room_id = await declared(bot)

    def edits() -> tuple[int, int]:
        return (
            len(bot.fake.calls_to("chat.update")),
            len(bot.fake.calls_to("conversations.setTopic")),
        )

    before = edits()
    await bot.slack.command(f"role tech_lead <@{DAVE}|dave>", channel=room_id)
    await bot.settle()
    await bot.slack.command(f"role comms <@{BOB}|bob>", channel=room_id)
    await bot.settle()
    # The topic names them; the pinned notification and the headline do not.
    assert edits() == (before[0], before[1] + 2)
    before = edits()
    await bot.slack.command("ack", channel=room_id, user=BOB)
    await bot.settle()
    # Acknowledging takes the button off both messages; the topic does not change.
    assert edits() == (before[0] + 2, before[1])
    assert bot.fake.channel(room_id).topic.endswith("TL: dave · Comms: bob")


async def test_an_archived_announcement_channel_does_not_hold_the_war_room(bot: Bot) -> None:
    room = await declared(bot)
    channel(bot.fake, "incidents").is_archived = True
    await bot.slack.command("update Rebuilding the index", channel=room)
    await bot.slack.command("ack", channel=room, user=BOB)
    await bot.settle()
    said = texts(bot.fake, room)
    assert sum("Rebuilding the index" in t for t in said) == 1
    assert sum("acknowledged Incident" in t for t in said) == 1
    told = [t for t in dm_texts(bot.fake, ALICE) if "cannot post" in t]
    assert len(told) == 1 and "announcement channel" in told[0]
    assert set(await outbox_states(bot)) == {"sent", "skipped"}


async def test_an_unarchived_announcement_channel_gets_its_headline_at_once(bot: Bot) -> None:
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents")
    announcements.is_archived = True
    await bot.slack.command("severity sev2", channel=room)
    await bot.settle()
    [headline] = [m for m in bot.fake.messages(announcements.id) if f"<#{room}>" in m.text]
    assert not headline.text.startswith("*Sev2 High*")  # refused
    announcements.is_archived = False
    event = {"type": "channel_unarchive", "channel": announcements.id, "user": ALICE}
    assert await bot.slack.event(event, "EvAnnouncementsBack") == 200
    await eventually(lambda: headline.text.startswith("*Sev2 High*"), timeout=1)
    async with bot.warroom.db.session() as session:
        assert (await session.get(Incident, 1)).room_problem is None  # type: ignore[union-attr]
