"""Declaring an incident over signed HTTP: command, modal, shortcut, and what Slack ends up with."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, CEO, ENG_LEAD, ONCALL, ONCALL_BACKUP, VP_OPS
from tests.support.factories import settings_for
from tests.support.helpers import (
    all_posted_text,
    announcements,
    answers,
    bot_messages,
    channel,
    last_view,
)
from tests.support.slackclient import eventually


async def test_declare_from_command_builds_the_war_room(bot: Bot) -> None:
    status, body = await bot.slack.command("declare sev2 Checkout API returning 500s")
    assert status == 200
    assert body == {}
    await bot.settle()
    fake = bot.fake

    room = channel(fake, "incident-1")
    assert not room.is_private
    # Declarer, commander (the declarer by default) and Sev2's audience: eng lead + on-call group.
    assert {ALICE, ENG_LEAD, ONCALL, "UONCALL2", "UBOT"} <= set(room.members)
    assert CEO not in room.members

    notification = bot_messages(fake, room.id)[0]
    assert fake.pins(room.id) == [notification.ts]
    assert "Incident #1 - Severity 2: Checkout API returning 500s*" in notification.text
    assert f"Slack Channel: <#{room.id}>" in notification.text
    assert "Incident Commander: <@UALICE>" in notification.text
    assert "https://status.example.com" in notification.text
    actions = [b for b in notification.blocks or [] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [
        "incident_ack",
        "incident_update",
        "incident_resolve",
    ]

    [announcement] = announcements(fake)
    assert "Checkout API returning 500s" in announcement.text
    assert "*Sev2 High*" in announcement.text and "*Investigating*" in announcement.text

    # The first update is promised one cadence (Sev2: 60 minutes) after the declaration.
    assert room.topic.startswith("Sev2 High · Investigating · Next update by ")
    assert " UTC · IC: " in room.topic
    assert len(room.topic) <= 250
    assert any(f"<#{room.id}>" in text for text in answers(fake)), answers(fake)


async def test_declare_runs_independent_calls_concurrently(bot: Bot) -> None:
    """Once the room exists, inviting, notifying and pinning, announcing and setting the topic
    go out side by side: with every Slack call held for 200 ms, the fake sees several of them
    in flight at the same moment (one after another it would never see more than one)."""
    bot.fake.delay("*", 0.2)
    await bot.slack.command("declare sev3 Slow Slack")

    def complete() -> bool:
        room = bot.fake.channel_by_name("incident-1")
        return bool(
            room
            and room.topic
            and bot.fake.pins(room.id)
            and announcements(bot.fake)
            and ALICE in room.members
        )

    await eventually(complete, timeout=20, interval=0.01)
    await bot.settle()
    created = next(c for c in bot.fake.calls if c.method == "conversations.create")
    assert created.applied_at is not None
    after = [
        c
        for c in bot.fake.calls
        if c.at >= created.applied_at and c.applied_at is not None and c.method != "auth.test"
    ]
    edges = sorted([(c.at, 1) for c in after] + [(c.applied_at or 0.0, -1) for c in after])
    busy = peak = 0
    for _, step in edges:
        busy += step
        peak = max(peak, busy)
    methods = {c.method for c in after}
    assert peak >= 3, f"at most {peak} of {sorted(methods)} were in flight at once"


async def test_sev1_brings_in_the_executives(bot: Bot) -> None:
    await bot.slack.command("declare sev1 Payments down")
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert {CEO, VP_OPS, ONCALL, "UONCALL2", ONCALL_BACKUP} <= set(room.members)


async def test_declare_modal_with_every_field(bot: Bot) -> None:
    status, _ = await bot.slack.command("")
    assert status == 200
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    severity_options = view["blocks"][1]["element"]["options"]
    assert [o["value"] for o in severity_options] == ["1", "2", "3", "4"]
    assert "Complete service outage" in severity_options[0]["text"]["text"]

    detected = int((bot.clock.now() - timedelta(minutes=10)).timestamp())
    status, body = await bot.slack.submit(
        view,
        {
            "title": "Login failures",
            "severity": "3",
            "description": "10% of logins fail",
            "service": "auth",
            "commander": BOB,
            "detected_at": detected,
        },
    )
    assert status == 200 and body == {}
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert {ALICE, BOB, ONCALL} <= set(room.members)
    notification = bot_messages(bot.fake, room.id)[0]
    assert "Severity 3: auth - Login failures" in notification.text
    assert "We are investigating an issue affecting auth.\n> 10% of logins fail\n" in (
        notification.text
    )
    assert "Incident Commander: <@UBOB>" in notification.text
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.time_to_detect == timedelta(minutes=10)


async def test_modal_errors_show_inside_the_modal(bot: Bot) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    status, body = await bot.slack.submit(view, {"title": "   "})
    assert status == 200
    assert body["response_action"] == "errors"
    assert "title" in body["errors"]
    future = int((bot.clock.now() + timedelta(hours=1)).timestamp())
    status, body = await bot.slack.submit(view, {"title": "ok", "detected_at": future})
    assert body["response_action"] == "errors"
    assert "future" in body["errors"]["detected_at"]
    await bot.settle()
    assert bot.fake.channel_by_name("incident-1") is None
    assert await bot.warroom.incidents.open_incidents() == []


async def test_double_submitted_modal_declares_once(bot: Bot) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": "Twice"})
    await bot.slack.submit(view, {"title": "Twice"})
    await bot.settle()
    assert len(await bot.warroom.incidents.open_incidents()) == 1
    assert len(bot.fake.calls_to("conversations.create")) == 1
    assert len(announcements(bot.fake)) == 1


async def test_private_incident_is_never_announced(bot: Bot) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": "Secret breach", "private": ["private"]})
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert room.is_private
    assert announcements(bot.fake) == []
    await bot.slack.command("list", user=BOB)
    await bot.settle()
    assert answers(bot.fake)[-1] == "No open incidents. :sunny:"


async def test_channel_name_collisions_get_a_suffix(bot: Bot) -> None:
    bot.fake.add_channel("incident-1", is_private=False, members=[], bot_member=False)
    bot.fake.add_channel("incident-1-2", is_private=False, members=[], bot_member=False)
    await bot.slack.command("declare sev3 Collision")
    await bot.settle()
    room = channel(bot.fake, "incident-1-3")
    assert ALICE in room.members
    [created] = [c for c in bot.fake.calls_to("conversations.create") if c.ok]
    assert created.args["name"] == "incident-1-3"


async def test_invite_failure_is_said_in_the_channel_and_nothing_is_lost(bot: Bot) -> None:
    bot.fake.fail("conversations.invite", error="restricted_action", times=10)
    await bot.slack.command("declare sev2 Invites broken")
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    texts = [m.text for m in bot_messages(bot.fake, room.id)]
    assert any("Could not invite" in t for t in texts), texts
    assert bot.fake.pins(room.id)
    assert announcements(bot.fake)
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.channel_id == room.id


async def test_missing_announcement_channel_is_reported(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    from dataclasses import replace

    settings = replace(settings_for(fake, database_url), announce_channel="no-such-channel")
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev3 Where to announce")
        await bot.settle()
        room = channel(bot.fake, "incident-1")
        texts = [m.text for m in bot_messages(bot.fake, room.id)]
        assert any("no-such-channel" in t and "was not found" in t for t in texts), texts


async def test_message_shortcut_prefills_and_links(bot: Bot) -> None:
    general = channel(bot.fake, "general")
    source = bot.fake.add_message(
        general.id, user=BOB, text="Checkout is throwing 500s for everyone"
    )
    await bot.slack.shortcut(
        "declare_from_message", {"ts": source.ts, "text": source.text, "user": BOB}, general.id
    )
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    assert view["blocks"][2]["element"]["initial_value"] == source.text
    await bot.slack.submit(view, {"title": "Checkout 500s"})
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.source_permalink and source.ts.replace(".", "") in snap.source_permalink


async def test_command_validation_answers_immediately(bot: Bot) -> None:
    status, body = await bot.slack.command("declare sev2 " + "x" * 5000)
    assert status == 200
    assert "at most 80" in body["text"]
    status, body = await bot.slack.command("declare urgent broken")
    assert "Start with the severity" in body["text"]
    await bot.settle()
    assert bot.fake.calls_to("conversations.create") == []
    assert "x" * 100 not in all_posted_text(bot.fake)


async def test_operator_templates_win(
    fake: FakeSlack, database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "initial_notification.md.j2").write_text(
        "*ACME incident {{ incident.id }}*: {{ incident.title }} (status {{ links.status_page }})"
    )
    settings = settings_for(fake, database_url, templates_dir=str(folder))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev3 <b>Custom</b>")
        await bot.settle()
        room = channel(fake, "incident-1")
        notification = bot_messages(fake, room.id)[0]
        assert (
            notification.text
            == "*ACME incident 1*: &lt;b&gt;Custom&lt;/b&gt; (status https://status.example.com)"
        )
        # Templates not overridden still come from the built-in folder.
        assert "*Sev3 Medium*" in announcements(fake)[0].text


async def test_operator_templates_written_with_the_old_name_i_still_render(
    fake: FakeSlack, database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """`i` was the incident's name in templates before `incident`; an override that still
    uses it keeps working (deprecated) instead of failing mid-incident."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "initial_notification.md.j2").write_text("*ACME incident {{ i.id }}*: {{ i.title }}")
    settings = settings_for(fake, database_url, templates_dir=str(folder))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev3 Search is slow")
        await bot.settle()
        room = channel(fake, "incident-1")
        notification = bot_messages(fake, room.id)[0]
        assert notification.text == "*ACME incident 1*: Search is slow"
