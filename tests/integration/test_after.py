"""After the fire, over signed HTTP against the fake Slack: pins and :pushpin: reactions on the
timeline, notes, action items and their reminders, the postmortem, closing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.fake_slack import FakeSlack
from app.fake_slack.state import Message
from app.services.clock import ManualClock
from app.store.models import Incident
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, CAROL, DAVE
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, bot_messages, channel, dms, last_view
from tests.support.scenarios import T0, at, pin_event, reaction_event, said, scripted_incident


def link(room: str, message: Message) -> str:
    return f"https://fake.slack.test/archives/{room}/p{message.ts.replace('.', '')}"


def expected_postmortem(room: str, first: Message, second: Message) -> str:
    placeholder = "To be completed in the review."
    return f"""# Postmortem: Incident #1 - Checkout API returning 500s

> Blameless review. This document describes what happened and why the systems allowed it,
> not who is at fault. Sections marked "To be completed in the review" are written together in
> the review.

## Summary

- **Incident:** #1 - Checkout API returning 500s
- **Severity:** Sev2 High (Significant service degradation, major features unavailable)
- **Service:** checkout
- **Status:** Resolved
- **Detected:** 2030-01-07 09:54:00 UTC
- **Declared:** 2030-01-07 10:00:00 UTC
- **Acknowledged:** 2030-01-07 10:03:00 UTC
- **Mitigated:** 2030-01-07 10:15:00 UTC
- **Resolved:** 2030-01-07 10:20:00 UTC
- **Description:** Half of checkout requests fail

## Impact

Checkout failed for half of requests

Users or transactions affected: ~12,000 checkouts

## Roles

- **Incident Commander:** @alice
- **Technical Lead:** unassigned
- **Communications Lead:** unassigned

## Key figures

| Measure | Duration | From | To |
| --- | --- | --- | --- |
| Time to detect | 6m | detected | declared |
| Time to acknowledge | 3m | declared | acknowledged |
| Time to mitigate | 21m | detected | mitigated |
| Time to resolve | 26m | detected | resolved |

## Timeline

Times in UTC.

- 2030-01-07 10:00:00 UTC · **Declared** (@alice): Declared Sev2: Checkout API returning 500s
- 2030-01-07 10:00:00 UTC · **Channel created**: Channel #incident-1 created
- 2030-01-07 10:00:00 UTC · **Escalation**: Page fired
- 2030-01-07 10:02:00 UTC · **Pinned message** (@bob): Error rate at 50% since deploy 4812 \
<!channel> ([message]({link(room, first)}))
- 2030-01-07 10:03:00 UTC · **Acknowledged** (@bob): Acknowledged
- 2030-01-07 10:10:00 UTC · **Marked message** (@dave): Rolled back deploy 4812 \
([message]({link(room, second)}))
- 2030-01-07 10:12:00 UTC · **Note** (@alice): Payment provider confirms no issue on their side
- 2030-01-07 10:15:00 UTC · **Status** (@alice): Investigating → Mitigated
- 2030-01-07 10:20:00 UTC · **Status** (@alice): Mitigated → Resolved
- 2030-01-07 10:25:00 UTC · **Action item** (@alice): A1: Validate pool size in CI · owner \
@dave · due 2030-01-09
- 2030-01-07 10:25:00 UTC · **Action item** (@alice): A2: Alert on checkout 5xx rate · owner \
@bob · due 2030-01-14
- 2030-01-07 10:25:00 UTC · **Action item** (@alice): A3: Document the rollback procedure

## Root cause

A config push set the payment client's pool size to 0

## Contributing factors

{placeholder}

## Systemic issues

{placeholder}

## What went well

{placeholder}

## What went badly

{placeholder}

## Action items

| Item | Action | Owner | Deadline | State |
| --- | --- | --- | --- | --- |
| A1 | Validate pool size in CI | @dave | 2030-01-09 | open |
| A2 | Alert on checkout 5xx rate | @bob | 2030-01-14 | open |
| A3 | Document the rollback procedure | unassigned | none | open |

## Lessons learned

{placeholder} Share this document across the organisation once it is complete.
"""


async def test_postmortem_of_a_scripted_incident(bot: Bot) -> None:
    room = await scripted_incident(bot)
    messages = {m.text: m for m in bot.fake.messages(room)}
    first = messages["Error rate at 50% since deploy 4812 <!channel>"]
    second = messages["Rolled back deploy 4812"]
    await at(bot, 30)
    await bot.slack.command("postmortem", channel=room)
    await bot.settle()
    [stored] = bot.fake.files.values()
    assert room in stored.channels and stored.name == "incident-1-postmortem.md"
    assert stored.content is not None
    document = stored.content.decode()
    assert document == expected_postmortem(room, first, second)
    snap = await bot.warroom.incidents.snapshot(1)
    assert (snap.time_to_detect, snap.time_to_acknowledge) == (
        timedelta(minutes=6),
        timedelta(minutes=3),
    )
    async with bot.warroom.db.session() as session:
        incident = await session.get(Incident, 1)
    assert incident is not None and incident.postmortem_at == T0 + timedelta(minutes=30)


async def test_pins_and_pushpins_join_the_timeline_once(bot: Bot) -> None:
    room = await scripted_incident(bot)
    fake = bot.fake
    # Ignored: another reaction, a pin outside incident channels, the bot's own pin.
    other = said(fake, room, BOB, "Looking at dashboards", T0 + timedelta(minutes=5))
    await bot.slack.event(reaction_event(room, other, ALICE, "eyes"), "EvEyes")
    general = channel(fake, "general").id
    outside = said(fake, general, BOB, "Unrelated", T0 + timedelta(minutes=6))
    await bot.slack.event(pin_event(general, outside, BOB), "EvOutside")
    [notification] = [m for m in bot_messages(fake, room) if m.ts in fake.pins(room)]
    await bot.slack.event(pin_event(room, notification, "UBOT"), "EvBotPin")
    await bot.slack.event(pin_event(room, notification, BOB), "EvNotif")
    await bot.settle()
    kept = [e for e in await bot.warroom.timeline.entries(1) if e.kind == "message"]
    assert [(e.text, e.actor, e.at) for e in kept] == [
        ("Error rate at 50% since deploy 4812 <!channel>", BOB, T0 + timedelta(minutes=2)),
        ("Rolled back deploy 4812", DAVE, T0 + timedelta(minutes=10)),
    ]
    # The reaction carried no text: the bot read it from the channel's history.
    assert fake.calls_to("conversations.history")
    assert fake.calls_to("chat.getPermalink")

    await bot.slack.command("timeline", channel=room, user=CAROL)
    await bot.settle()
    shown = answers(fake)[-1]
    lines = [line for line in shown.splitlines() if line.startswith("• ")]
    assert len(lines) == 12
    assert (
        "*Pinned message* (<@UBOB>): Error rate at 50% since deploy 4812 &lt;!channel&gt;" in shown
    )
    assert "<!date^" in lines[0]
    assert shown.index("*Note*") < shown.index("Investigating → Mitigated")


async def test_action_items_buttons_reminders_and_home(bot: Bot) -> None:
    room = await scripted_incident(bot)
    fake = bot.fake
    assert "You own action item A1" in dms(fake, DAVE)[-1].text
    assert "Due 2030-01-09" in dms(fake, DAVE)[-1].text
    assert "You own action item A2" in dms(fake, BOB)[-1].text
    assert any("*Action item A3* added" in m.text for m in bot_messages(fake, room))
    assert "A1" in str(fake.home_views[DAVE]) and "Validate pool size" in str(fake.home_views[DAVE])

    await bot.slack.command("actions", channel=room, user=CAROL)
    await bot.settle()
    listing = fake.responses[-1][1]
    assert "(3 open of 3)" in listing["text"]
    buttons = [
        e["action_id"] for b in listing["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["action_item_done", "action_item_reassign"] * 3

    # Reminders: A2 (Bob) is due Tuesday 2030-01-14; one a working day from 09:00 until done.
    for moment in ["2030-01-14 08:59", "2030-01-14 09:00", "2030-01-14 16:00", "2030-01-15 09:00"]:
        bot.clock.set(datetime.fromisoformat(moment).replace(tzinfo=UTC))
        await bot.warroom.engine.tick()
    reminders = [m for m in dms(fake, BOB) if "Action item A2 is due" in m.text]
    assert len(reminders) == 2
    await bot.slack.click("action_item_done", "2", user=BOB)
    await bot.settle()
    bot.clock.set(datetime(2030, 1, 16, 9, 0, tzinfo=UTC))
    await bot.warroom.engine.tick()
    assert len([m for m in dms(fake, BOB) if "Action item A2 is due" in m.text]) == 2
    assert "A2" not in str(fake.home_views[BOB])
    assert any("*Action item A2* done" in m.text for m in bot_messages(fake, room))

    # Reassign A3 to Carol through the form.
    await bot.slack.click("action_item_reassign", "3", user=ALICE)
    await bot.settle()
    await bot.slack.submit(last_view(fake, "reassign_action_item"), {"owner": CAROL})
    await bot.settle()
    assert "You own action item A3" in dms(fake, CAROL)[-1].text
    await bot.slack.command("actions mine", user=CAROL)
    await bot.settle()
    mine = fake.responses[-1][1]["text"]
    assert "Your open action items (1)" in mine and "Document the rollback procedure" in mine
    await bot.slack.click("action_item_done", "2", user=BOB)
    await bot.settle()
    assert "already done" in answers(fake)[-1]


async def test_close_needs_the_postmortem_then_archives(bot: Bot) -> None:
    room = await scripted_incident(bot)
    fake = bot.fake
    await bot.slack.command("close", channel=room, user=CAROL)
    await bot.settle()
    assert "Only the people running incident #1" in answers(fake)[-1]
    await bot.slack.command("close", channel=room)
    await bot.settle()
    assert "no postmortem yet" in answers(fake)[-1]
    assert not fake.channel(room).is_archived
    await bot.slack.command("postmortem", channel=room)
    await bot.settle()
    await at(bot, 40)
    await bot.slack.command("close", channel=room)
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status == "closed" and snap.closed_at == T0 + timedelta(minutes=40)
    summary = [m.text for m in bot_messages(fake, room) if "closed* by" in m.text]
    assert len(summary) == 1
    assert "*Open action items:* 3" in summary[0] and "*resolve:* 26m" in summary[0]
    assert fake.channel(room).is_archived
    thread = fake.replies(
        channel(fake, "incidents").id, fake.messages(channel(fake, "incidents").id)[0].ts
    )
    assert any("closed* by" in m.text for m in thread)
    await bot.slack.command("close 1")
    await bot.settle()
    assert "already closed" in answers(fake)[-1]


async def test_close_force_and_delayed_archive(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    settings = replace(
        settings_for(fake, database_url),
        policy=policy_with(escalation={"archive_after_minutes": 60}),
    )
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev3 Slow search")
        await bot.settle()
        room = channel(fake, "incident-1").id
        await bot.slack.command("close", channel=room)
        await bot.settle()
        assert "resolve it before closing" in answers(fake)[-1]
        await bot.slack.command("resolve", channel=room)
        await bot.settle()
        await bot.slack.submit(last_view(fake, "resolve_incident"), {})
        await bot.settle()
        await bot.slack.command("close --force", channel=room)
        await bot.settle()
        assert any("archived in 60 minutes" in m.text for m in bot_messages(fake, room))
        assert not fake.channel(room).is_archived
        clock.advance(minutes=59)
        await bot.warroom.engine.tick()
        assert not fake.channel(room).is_archived
        clock.advance(minutes=1)
        await bot.warroom.engine.tick()
        assert fake.channel(room).is_archived
        kinds = [e.kind for e in await bot.warroom.timeline.entries(1)]
        assert kinds[-2:] == ["closed", "archived"]


async def test_app_home_for_a_member_and_an_outsider_of_a_private_incident(bot: Bot) -> None:
    fake = bot.fake
    await bot.slack.command("declare sev2 Public outage")
    await bot.settle()
    await bot.slack.command("declare")
    await bot.settle()
    await bot.slack.submit(
        last_view(fake, "declare_incident"), {"title": "Secret breach", "private": ["private"]}
    )
    await bot.settle()
    public, private = channel(fake, "incident-1").id, channel(fake, "incident-2").id
    await bot.slack.command("action Rotate the leaked keys <@UALICE>", channel=private)
    await bot.slack.command("action Add a status page banner <@UBOB>", channel=public)
    await bot.slack.command("role comms <@UBOB>", channel=public)
    await bot.settle()
    # Assigning the item already re-published Bob's Home.
    assert "Add a status page banner" in str(fake.home_views[BOB])
    for user, event_id in [(ALICE, "EvHomeA"), (BOB, "EvHomeB")]:
        await bot.slack.event(
            {"type": "app_home_opened", "user": user, "channel": "D1", "tab": "home"}, event_id
        )
    await bot.settle()
    alice, bob = str(fake.home_views[ALICE]), str(fake.home_views[BOB])
    assert "Public outage" in alice and "Secret breach" in alice
    assert "Rotate the leaked keys" in alice and "*Incident Commander* · *#2*" in alice
    assert "Public outage" in bob and "*Communications Lead* · *#1*" in bob
    assert "Add a status page banner" in bob and "action_item_done" in bob
    assert "Secret breach" not in bob and "Rotate the leaked keys" not in bob and "#2" not in bob
