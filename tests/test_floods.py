"""Floods, replays and invisible characters: one person cannot bury the real incidents, a
request Slack (or anyone) sends twice runs once, and stored text keeps no hidden direction or
zero-width marks."""

from __future__ import annotations

import json

from sqlmodel import col, select

from app.store.models import ActionItem, Incident, StatusUpdate, TimelineEvent
from tests.conftest import ONCALL, ONCALL_GROUP, Bot
from tests.helpers import all_posted_text, bot_messages, channel, last_view

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
