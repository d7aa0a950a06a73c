"""Floods, replays and invisible characters: one person cannot bury the real incidents, a
request Slack (or anyone) sends twice runs once, and stored text keeps no hidden direction or
zero-width marks."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import col, select

from app.services.incidents import ResolveRequest
from app.store.models import ActionItem, Incident, StatusUpdate, TimelineEvent
from tests.conftest import ALICE, BOB, ONCALL, ONCALL_GROUP, Bot
from tests.helpers import all_posted_text, answers, bot_messages, channel, dms, last_view

# Bidi embeddings, overrides and isolates; zero-width characters and marks; word joiner, BOM.
INVISIBLE = (
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"
)


def sneaky(text: str) -> str:
    """`text` with every bidi control and zero-width character spliced in."""
    return INVISIBLE[:8] + text[:3] + INVISIBLE[8:] + text[3:] + "\u202e"


def has_invisible(value: object) -> bool:
    return any(ch in INVISIBLE for ch in str(value))


def command_fields(
    bot: Bot, text: str, channel: str = "CGENERAL", user: str = ALICE
) -> dict[str, str]:
    """A `/incident` request as Slack sends it, with its own trigger ID, to send more than once."""
    return {
        "token": "legacy-unused",
        "team_id": "T1",
        "team_domain": "acme",
        "channel_id": channel,
        "channel_name": "general",
        "user_id": user,
        "user_name": user.lower(),
        "command": "/incident",
        "text": text,
        "api_app_id": "A1",
        "response_url": bot.fake.new_response_url(),
        "trigger_id": bot.fake.new_trigger_id(),
    }


async def send(bot: Bot, fields: dict[str, str]) -> dict[str, Any]:
    """Send a signed request, wait for its work; the acknowledgment's body."""
    status, raw = await bot.slack.post_form(fields)
    assert status == 200, raw
    await bot.settle()
    return json.loads(raw) if raw.startswith("{") else ({"text": raw} if raw else {})


async def twice(bot: Bot, fields: dict[str, str]) -> tuple[list[str], list[str]]:
    """Send the same request twice (Slack's retry, a double click, a replay); what each one
    was answered, in the acknowledgment and privately."""
    said: list[list[str]] = []
    for _ in range(2):
        before = len(answers(bot.fake))
        ack = await send(bot, fields)
        said.append([ack.get("text", ""), *answers(bot.fake)[before:]])
    return said[0], said[1]


# --- stored text --------------------------------------------------------------------------


async def test_bidi_and_zero_width_characters_are_not_stored(bot: Bot) -> None:
    await bot.slack.command("declare sev2 " + sneaky("Checkout down"))
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("update " + sneaky("Rolled back"), channel=room)
    await bot.slack.command("note " + sneaky("Cache cold"), channel=room)
    await bot.slack.command("action " + sneaky("Add an alert"), channel=room)
    await bot.slack.command("update", channel=room)
    await bot.settle()
    await bot.slack.submit(
        last_view(bot.fake, "post_update"),
        {"done_so_far": sneaky("Paged DBA"), "eta": sneaky("10 min")},
    )
    await bot.settle()
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    await bot.slack.submit(
        last_view(bot.fake, "resolve_incident"),
        {
            "root_cause": sneaky("Bad deploy"),
            "impact_summary": sneaky("Checkout failed"),
            "users_affected": sneaky("All"),
            "next_steps": sneaky("Canary"),
        },
    )
    await bot.settle()
    # The declare form too (title, description, service).
    await bot.slack.command("")
    await bot.settle()
    await bot.slack.submit(
        last_view(bot.fake, "declare_incident"),
        {
            "title": sneaky("Login slow"),
            "description": sneaky("p99 9 s"),
            "service": sneaky("auth"),
            "severity": "3",
        },
    )
    await bot.settle()

    async with bot.warroom.db.session() as session:
        incidents = (await session.exec(select(Incident).order_by(col(Incident.id)))).all()
        updates = (await session.exec(select(StatusUpdate))).all()
        events = (await session.exec(select(TimelineEvent))).all()
        items = (await session.exec(select(ActionItem))).all()
    assert [i.title for i in incidents] == ["Checkout down", "Login slow"]
    first, second = incidents
    assert (first.root_cause, first.impact_summary, first.users_affected, first.next_steps) == (
        "Bad deploy",
        "Checkout failed",
        "All",
        "Canary",
    )
    assert (second.description, second.service) == ("p99 9 s", "auth")
    assert sorted(u.investigation or u.done_so_far for u in updates) == ["Paged DBA", "Rolled back"]
    assert [u.eta for u in updates if u.eta] == ["10 min"]
    assert [e.text for e in events if e.kind == "note"] == ["Cache cold"]
    assert [i.text for i in items] == ["Add an alert"]
    stored = [*incidents, *updates, *events, *items]
    assert not [row for row in stored if has_invisible(row.model_dump())]
    assert not has_invisible(all_posted_text(bot.fake))


async def test_a_title_of_only_invisible_characters_is_no_title(bot: Bot) -> None:
    status, body = await bot.slack.command("declare sev2 " + INVISIBLE)
    assert status == 200
    assert "Give the incident a title" in body["text"]
    await bot.settle()
    assert bot.fake.calls_to("conversations.create") == []


# --- invite failures ----------------------------------------------------------------------


async def test_refused_invites_are_named_as_mentions_never_as_raw_text(bot: Bot) -> None:
    """Slack's refusals come back as the IDs the bot sent: a real ID is shown as a mention,
    anything else as escaped text that pings nobody."""
    hostile = "U1>&<!channel>"
    bot.fake.add_usergroup(ONCALL_GROUP, handle="oncall", users=[ONCALL, "UGHOST", hostile])
    await bot.slack.command("declare sev3 Invites")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    [problem] = [m.text for m in bot_messages(bot.fake, room) if "Could not invite" in m.text]
    assert "<@UGHOST>" in problem
    assert "U1&gt;&amp;&lt;!channel&gt;" in problem
    said = [json.dumps([m.text, m.blocks]) for m in bot_messages(bot.fake, room)]
    assert not [text for text in said if "<!channel>" in text]
    assert ONCALL in channel(bot.fake, "incident-1").members


# --- replays ------------------------------------------------------------------------------


async def test_replayed_commands_run_once_and_are_answered_alike(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Replays")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id

    first, again = await twice(bot, command_fields(bot, "update Rolled back the deploy", room))
    assert first == again
    first, again = await twice(bot, command_fields(bot, "note Cache warmed by hand", room))
    assert first == again == ["", ":memo: Noted on the timeline of Incident #1."]
    action = "action Add a canary stage <@UBOB> due 2099-01-01"
    first, again = await twice(bot, command_fields(bot, action, room))
    assert first == again == ["", ":clipboard: Action item A1 added to #1."]
    await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="Bad deploy"), ALICE)
    first, again = await twice(bot, command_fields(bot, "retro", room))
    assert first == again
    first, again = await twice(bot, command_fields(bot, "retro done", room))
    assert first == again

    async with bot.warroom.db.session() as session:
        updates = (await session.exec(select(StatusUpdate))).all()
        events = (await session.exec(select(TimelineEvent))).all()
        items = (await session.exec(select(ActionItem))).all()
    assert [u.investigation for u in updates] == ["Rolled back the deploy"]
    assert [e.text for e in events if e.kind == "note"] == ["Cache warmed by hand"]
    assert [i.text for i in items] == ["Add a canary stage"]
    assert len([e for e in events if e.kind == "retro_held"]) == 1
    said = [m.text for m in bot_messages(bot.fake, room)]
    for once in ("Rolled back the deploy", "Add a canary stage", "*Retrospective for", "held"):
        assert len([t for t in said if once in t]) == 1, (once, said)
    assert len([m for m in dms(bot.fake, BOB) if "Add a canary stage" in m.text]) == 1


async def test_a_twice_submitted_update_form_posts_once_and_answers_alike(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Form replay")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("update", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "post_update")
    said = []
    for _ in range(2):
        before = len(answers(bot.fake))
        await bot.slack.submit(view, {"investigation": "Failing over"})
        await bot.settle()
        said.append(answers(bot.fake)[before:])
    assert said[0] == said[1] == []
    async with bot.warroom.db.session() as session:
        updates = (await session.exec(select(StatusUpdate))).all()
    assert [u.investigation for u in updates] == ["Failing over"]
