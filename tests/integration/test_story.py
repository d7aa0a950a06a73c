"""The whole story over signed HTTP: declare -> ack -> roles -> updates -> severity -> resolve."""

from __future__ import annotations

from datetime import timedelta

from tests.support.bot import Bot
from tests.support.constants import ALICE, BOB, CAROL, CEO, DAVE, VP_OPS
from tests.support.helpers import announcements, answers, bot_messages, channel, dms, last_view


async def test_declare_to_resolve(bot: Bot) -> None:
    fake, clock = bot.fake, bot.clock
    detected = clock.now()
    await bot.slack.command("declare sev2 Checkout API returning 500s")
    await bot.settle()
    room = channel(fake, "incident-1")
    [announcement] = announcements(fake)
    incidents_channel = channel(fake, "incidents").id

    # Minute 3: Bob acknowledges with the button on the pinned notification.
    clock.advance(minutes=3)
    status, _ = await bot.slack.click("incident_ack", "1", user=BOB, channel=room.id)
    assert status == 200
    await bot.settle()
    assert any(
        "<@UBOB> acknowledged Incident #1 after 3m" in m.text for m in bot_messages(fake, room.id)
    )
    assert "(target: &lt; 15 minutes, met)" in bot_messages(fake, room.id)[-1].text

    # Roles: one by command, two by the roles form.
    await bot.slack.command("role tech-lead <@UDAVE|dave>", channel=room.id)
    await bot.settle()
    assert DAVE in channel(fake, "incident-1").members
    assert "You are the Technical Lead for Incident #1" in dms(fake, DAVE)[-1].text
    await bot.slack.command("roles", channel=room.id)
    await bot.settle()
    view = last_view(fake, "assign_roles")
    await bot.slack.submit(view, {"commander": BOB, "comms": CAROL})
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.roles == {"commander": BOB, "tech_lead": DAVE, "comms": CAROL}
    topic = channel(fake, "incident-1").topic
    assert "IC: bob" in topic and "TL: dave" in topic and "Comms: carol" in topic

    # Two updates: one by form, one by command text.
    clock.advance(minutes=7)
    await bot.slack.command("update", channel=room.id, user=CAROL)
    await bot.settle()
    view = last_view(fake, "post_update")
    await bot.slack.submit(
        view,
        {
            "status": "identified",
            "done_so_far": "Rolled back deploy 4812",
            "investigation": "Bad config in payments client",
            "eta": "30 minutes",
        },
        user=CAROL,
    )
    await bot.settle()
    clock.advance(minutes=5)
    await bot.slack.command("update Error rate back to normal, watching", channel=room.id)
    await bot.settle()

    thread = fake.replies(incidents_channel, announcement.ts)
    update_texts = [m.text for m in thread if m.text.startswith("*Update ")]
    assert len(update_texts) == 2
    assert "Identified" in update_texts[0] and "Rolled back deploy 4812" in update_texts[0]
    assert "Error rate back to normal, watching" in update_texts[1]
    assert len([m for m in bot_messages(fake, room.id) if m.text.startswith("*Update ")]) == 2

    # Severity up: broadcast, topic, new audience invited.
    await bot.slack.command("severity sev1", channel=room.id, user=BOB)
    await bot.settle()
    assert {CEO, VP_OPS} <= set(channel(fake, "incident-1").members)
    broadcast = [m for m in fake.messages(incidents_channel) if m.reply_broadcast]
    assert any("Severity changed: Sev2 → Sev1" in m.text for m in broadcast)
    assert channel(fake, "incident-1").topic.startswith("Sev1 Critical · Identified")
    headline = fake.messages(incidents_channel)[0]
    assert headline.ts == announcement.ts
    assert "*Sev1 Critical*" in headline.text and "Commander: <@UBOB>" in headline.text

    # Resolve at minute 40 through the form.
    clock.advance(minutes=25)
    await bot.slack.command("resolve", channel=room.id, user=BOB)
    await bot.settle()
    view = last_view(fake, "resolve_incident")
    await bot.slack.submit(
        view,
        {
            "root_cause": "A config push removed the payments timeout",
            "impact_summary": "Checkout failed for half of users",
            "users_affected": "~12,000 checkouts",
            "next_steps": "Validate config pushes in CI",
        },
        user=BOB,
    )
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status == "resolved"
    assert snap.time_to_resolve == timedelta(minutes=40)
    assert snap.resolved_at == detected + timedelta(minutes=40)

    resolution = [m for m in bot_messages(fake, room.id) if "Issue Resolved" in m.text]
    assert len(resolution) == 1
    text = resolution[0].text
    assert "Root cause:* A config push removed the payments timeout" in text
    assert "Time to detection:* 0s" in text
    assert "Time to resolution:* 40m" in text
    assert "Impact summary:* Checkout failed for half of users (~12,000 checkouts)" in text
    assert "Next steps:* Validate config pushes in CI" in text
    thread = fake.replies(incidents_channel, announcement.ts)
    assert any("Issue Resolved" in m.text and m.reply_broadcast for m in thread)
    headline = fake.messages(incidents_channel)[0]
    assert "*Resolved*" in headline.text
    assert not [b for b in headline.blocks or [] if b["type"] == "actions"]
    assert channel(fake, "incident-1").topic.startswith("Sev1 Critical · Resolved")

    # Afterwards: updates refused with a reason; the status summary tells the story.
    await bot.slack.command("update still here?", channel=room.id)
    await bot.settle()
    assert "resolved; updates are for open ones" in answers(fake)[-1]
    await bot.slack.command("status 1", user=ALICE)
    await bot.settle()
    summary = answers(fake)[-1]
    assert "*Status:* Resolved" in summary and "time to resolution 40m" in summary
