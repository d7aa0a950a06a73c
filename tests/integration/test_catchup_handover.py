"""Catch-up on join and `/incident catchup`; `/incident handover`. Over signed HTTP, against the
fake Slack and a real database."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlmodel import col, select

from app.config import Settings
from app.domain.roles import Role
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.store.models import CatchUp, OutboxMessage, TimelineEvent
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, CAROL, DAVE, ERIN
from tests.support.helpers import answers, bot_messages, channel, dms, last_view

CATCHING_UP = "Catching up on Incident #"


async def declared(bot: Bot, text: str = "declare sev2 Checkout API returning 500s") -> str:
    """Alice declares (and commands) incident #1; returns its channel."""
    await bot.slack.command(text, user=ALICE)
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    # Past the first minutes, when joins are Warroom's own invitations.
    bot.clock.set(bot.clock.now() + timedelta(minutes=3))
    return room


async def test_joins_right_after_the_declaration_get_no_catch_up(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout API returning 500s", user=ALICE)
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await joins(bot, room, BOB, "EvEarly")
    assert catchups(bot.fake, BOB) == []
    bot.clock.set(bot.clock.now() + timedelta(minutes=2))
    await joins(bot, room, BOB, "EvLater")
    assert len(catchups(bot.fake, BOB)) == 1


async def joins(bot: Bot, room: str, user: str, event_id: str) -> None:
    event = {
        "type": "member_joined_channel",
        "user": user,
        "channel": room,
        "channel_type": "C",
        "team": "T1",
        "inviter": ALICE,
    }
    assert await bot.slack.event(event, event_id) == 200
    await bot.settle()


def catchups(fake: FakeSlack, user: str) -> list[str]:
    return [m.text for m in dms(fake, user) if CATCHING_UP in m.text]


async def timeline(bot: Bot, kind: str) -> list[TimelineEvent]:
    async with bot.warroom.db.session() as session:
        found = await session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == kind).order_by(col(TimelineEvent.id))
        )
        return list(found.all())


async def in_the_middle_of_it(bot: Bot, room: str) -> None:
    """An update, an action item and a note, each in its own request."""
    for text in (
        "update Rolled back the 9:15 deploy; error rate falling",
        "action Alert on the checkout 5xx rate <@UCAROL|carol>",
        "note Connection pool at its limit since 9:15",
    ):
        await bot.slack.command(text, user=ALICE, channel=room)
        await bot.settle()


# --- catch-up on join ----------------------------------------------------------------------


async def test_a_join_gives_one_catch_up_and_one_more_only_after_30_minutes(bot: Bot) -> None:
    room = await declared(bot)
    await in_the_middle_of_it(bot, room)

    await joins(bot, room, BOB, "EvJoin1")
    [said] = catchups(bot.fake, BOB)
    assert said.startswith("*Catching up on Incident #1: Checkout API returning 500s*")
    assert "*Severity:* Sev2 High · *Status:* Investigating" in said
    assert "*not acknowledged yet*" in said
    assert f"*Commander:* <@{ALICE}>" in said
    assert "Rolled back the 9:15 deploy; error rate falling" in said  # the last update
    # The next update is due when the last update promised it: the cadence, an hour for Sev2.
    due = int((bot.clock.now() + timedelta(minutes=60)).timestamp())
    assert re.search(rf"\*Next update due:\* <!date\^{due}\^", said), said
    assert "*Open action items (1):*" in said
    assert f"*A1* Alert on the checkout 5xx rate · owner <@{CAROL}>" in said
    assert "*Alerts:*" not in said  # none belong to it
    latest = said.split("*Latest on the timeline:*")[1].strip().splitlines()
    entries = [line for line in latest if line.startswith("• ")]
    assert len(entries) == 5, latest
    assert "*Note* (<@UALICE>): Connection pool at its limit since 9:15" in entries[-1]
    assert "*Declared*" not in said.split("*Latest on the timeline:*")[1]  # only the last five

    # Slack's retry of the same delivery, and a second join within 30 minutes: nothing more.
    await joins(bot, room, BOB, "EvJoin1")
    bot.clock.advance(minutes=29)
    await joins(bot, room, BOB, "EvJoin2")
    assert len(catchups(bot.fake, BOB)) == 1

    bot.clock.advance(minutes=2)
    await joins(bot, room, BOB, "EvJoin3")
    assert len(catchups(bot.fake, BOB)) == 2
    await joins(bot, room, BOB, "EvJoin4")
    assert len(catchups(bot.fake, BOB)) == 2
    async with bot.warroom.db.session() as session:
        [row] = (await session.exec(select(CatchUp))).all()
    assert (row.incident_id, row.user_id, row.sent_at) == (1, BOB, bot.clock.now())


async def test_no_catch_up_for_warroom_a_bot_the_people_running_it_or_another_channel(
    bot: Bot,
) -> None:
    room = await declared(bot)
    bot.fake.add_user("UDEPLOYBOT", name="deploybot", is_bot=True)
    await joins(bot, room, "UBOT", "EvOwn")
    await joins(bot, room, "UDEPLOYBOT", "EvOtherBot")
    await joins(bot, room, ALICE, "EvCommander")  # the declarer and commander: briefed already
    await joins(bot, channel(bot.fake, "general").id, BOB, "EvGeneral")
    assert not any(catchups(bot.fake, user) for user in ("UBOT", "UDEPLOYBOT", ALICE, BOB))
    async with bot.warroom.db.session() as session:
        assert (await session.exec(select(CatchUp))).all() == []
    # Someone else still gets theirs.
    await joins(bot, room, DAVE, "EvDave")
    assert len(catchups(bot.fake, DAVE)) == 1


async def test_a_private_incident_catches_up_its_members_only(bot: Bot) -> None:
    await bot.slack.command("declare", user=ALICE)
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": "Secret breach", "private": ["private"]}, user=ALICE)
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert room.is_private and BOB not in room.members
    bot.clock.set(bot.clock.now() + timedelta(minutes=3))
    await joins(bot, room.id, BOB, "EvNotMember")  # a crafted event: Bob is not in the room
    assert catchups(bot.fake, BOB) == []
    room.members.append(BOB)
    await joins(bot, room.id, BOB, "EvMember")
    [said] = catchups(bot.fake, BOB)
    assert "Secret breach" in said


async def test_a_drill_catch_up_is_marked_drill(bot: Bot) -> None:
    await bot.slack.command("drill sev3 Failover practice", user=ALICE)
    await bot.settle()
    room = channel(bot.fake, "drill-1").id
    bot.clock.set(bot.clock.now() + timedelta(minutes=3))
    await joins(bot, room, BOB, "EvDrill")
    [said] = catchups(bot.fake, BOB)
    assert said.startswith(":test_tube: *DRILL* *Catching up on Incident #1")


async def test_two_replicas_handling_joins_at_once_send_one_catch_up(
    settings: Settings, fake: FakeSlack, clock: ManualClock
) -> None:
    first = start_bot(replace(settings, replica_name="replica-a"), fake, clock)
    second = start_bot(replace(settings, replica_name="replica-b"), fake, clock)
    one, two = await first.__anext__(), await second.__anext__()
    try:
        room = await declared(one)
        await asyncio.gather(
            *(
                bot.warroom.bot.flows.catch_up_on_join(room, BOB)
                for bot in (one, two, one, two, one, two)
            )
        )
        await one.settle()
        await two.settle()
        assert len(catchups(fake, BOB)) == 1
        async with one.warroom.db.session() as session:
            rows = (
                await session.exec(
                    select(OutboxMessage).where(OutboxMessage.destination == f"user:{BOB}")
                )
            ).all()
        assert len(rows) == 1
    finally:
        for bots in (first, second):
            with pytest.raises(StopAsyncIteration):
                await bots.__anext__()


async def test_catchup_command_answers_privately_whenever_asked(bot: Bot) -> None:
    room = await declared(bot)
    await in_the_middle_of_it(bot, room)
    await bot.slack.command("catchup", user=BOB, channel=room)
    await bot.slack.command("catch-up 1", user=BOB, channel="CGENERAL")
    await bot.settle()
    said = [a for a in answers(bot.fake) if CATCHING_UP in a]
    assert len(said) == 2  # not limited like the catch-up on joining
    assert "Rolled back the 9:15 deploy" in said[0] and "*A1*" in said[0]
    assert dms(bot.fake, BOB) == []  # privately, to the one who asked
    assert not any(CATCHING_UP in m.text for m in bot_messages(bot.fake, room))
    await bot.slack.command("catchup 7", user=BOB)
    await bot.settle()
    assert answers(bot.fake)[-1] == ":no_entry_sign: There is no incident #7."


# --- handover ------------------------------------------------------------------------------


async def test_handover_moves_the_role_briefs_the_new_holder_and_tells_the_previous_one(
    bot: Bot,
) -> None:
    room = await declared(bot)
    await in_the_middle_of_it(bot, room)
    assert BOB not in channel(bot.fake, "incident-1").members
    await bot.slack.command("handover <@UBOB|bob>", user=ALICE, channel=room)
    await bot.settle()

    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.roles[Role.COMMANDER] == BOB
    assert BOB in channel(bot.fake, "incident-1").members  # invited, as by `role`
    [brief] = [m.text for m in dms(bot.fake, BOB) if "handed over by" in m.text]
    assert brief.startswith(
        f"*You are now the Incident Commander for Incident #1* (<#{room}>), "
        f"handed over by <@{ALICE}>."
    )
    assert "*Where it stands:* Sev2 High · Investigating · open for" in brief
    assert "done so far" not in brief  # the update had only an investigation status
    assert "investigation: Rolled back the 9:15 deploy; error rate falling" in brief
    assert "Connection pool at its limit since 9:15" in brief  # a note on the timeline
    assert f"*A1* Alert on the checkout 5xx rate · owner <@{CAROL}>" in brief
    assert "*Next:* the next update is due <!date^" in brief
    # Only the handover brief: no role brief besides it.
    assert not any("You are the Incident Commander" in m.text for m in dms(bot.fake, BOB))
    told = [m.text for m in dms(bot.fake, ALICE) if "You handed" in m.text]
    assert told == [
        f"You handed *Incident Commander* of Incident #1 to <@{BOB}>. They got a "
        f"handover brief by DM (<#{room}>)."
    ]
    said = [m.text for m in bot_messages(bot.fake, room) if "is now the" in m.text]
    assert said == [f"<@{BOB}> is now the *Incident Commander* (assigned by <@{ALICE}>)."]
    [event] = await timeline(bot, "handover")
    assert (event.text, event.actor) == (f"Incident Commander from <@{ALICE}> to <@{BOB}>", ALICE)
    assert await timeline(bot, "role_assigned") == []
    await bot.slack.command("timeline", user=BOB, channel=room)
    await bot.settle()
    assert (
        f"*Handover* (<@{ALICE}>): Incident Commander from <@{ALICE}> to <@{BOB}>"
        in answers(bot.fake)[-1]
    )

    # The new commander hands the tech lead role (held by nobody) from elsewhere, by number.
    await bot.slack.command("handover <@UDAVE|dave> tech-lead 1", user=BOB, channel="CGENERAL")
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.roles[Role.TECH_LEAD] == DAVE and snap.roles[Role.COMMANDER] == BOB
    assert any("You are now the Technical Lead" in m.text for m in dms(bot.fake, DAVE))
    assert (await timeline(bot, "handover"))[-1].text == (
        f"Technical Lead to <@{DAVE}> (nobody held it)"
    )


async def test_handover_is_restricted_and_to_the_holder_changes_nothing(bot: Bot) -> None:
    room = await declared(bot)
    bot.fake.add_user("UDEPLOYBOT", name="deploybot", is_bot=True)

    await bot.slack.command("handover <@UERIN|erin>", user=ERIN, channel=room)
    await bot.settle()
    assert answers(bot.fake)[-1].startswith(":no_entry_sign: Only the people running incident #1")
    assert "may reassign its roles" in answers(bot.fake)[-1]

    await bot.slack.command("handover <@UALICE|alice> commander", user=ALICE, channel=room)
    await bot.settle()
    assert answers(bot.fake)[-1] == (
        f"<@{ALICE}> already holds Incident Commander of incident #1; nothing changed."
    )

    await bot.slack.command("handover <@UDEPLOYBOT|deploybot>", user=ALICE, channel=room)
    await bot.settle()
    assert answers(bot.fake)[-1] == ":no_entry_sign: deploybot is a bot; roles are for people."
    await bot.slack.command("handover UNOSUCH123", user=ALICE, channel=room)
    await bot.settle()
    assert "There is no Slack user `UNOSUCH123` here." in answers(bot.fake)[-1]

    _, body = await bot.slack.command("handover bob", user=ALICE, channel=room)
    assert "Mention the person with @" in body["text"]
    _, body = await bot.slack.command("handover <@UBOB|bob> janitor", user=ALICE, channel=room)
    assert "Unknown role 'janitor'" in body["text"]

    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.roles[Role.COMMANDER] == ALICE
    assert await timeline(bot, "handover") == []
    assert not any("handed" in m.text for u in (ALICE, ERIN) for m in dms(bot.fake, u))
