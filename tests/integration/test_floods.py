"""Floods, replays and invisible characters: one person cannot bury the real incidents, a
request Slack (or anyone) sends twice runs once, and stored text keeps no hidden direction or
zero-width marks."""

from __future__ import annotations

import asyncio
import contextlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from app.config import ConfigError, load_policy
from app.domain.policy import Limits
from app.integrations.priority_gate import STRAIGHT, PriorityGate
from app.services.incidents import ResolveRequest
from app.services.ports import Priority, SlackError
from app.store.models import ActionItem, Incident, StatusUpdate, TimelineEvent
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, ONCALL, ONCALL_GROUP
from tests.support.helpers import all_posted_text, answers, bot_messages, channel, dms, last_view
from tests.support.slackclient import eventually

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
    """Slack's refusals come back as the IDs the bot sent: a real ID is shown as a mention.
    Anything that is not a user ID (a hostile group member, an alert source as declarer) is
    never invited, so it is never echoed back to ping anyone."""
    hostile = "U1>&<!channel>"
    bot.fake.add_usergroup(ONCALL_GROUP, handle="oncall", users=[ONCALL, "UGHOST", hostile])
    await bot.slack.command("declare sev3 Invites")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    [problem] = [m.text for m in bot_messages(bot.fake, room) if "Could not invite" in m.text]
    assert "<@UGHOST>" in problem
    invited = [json.dumps(c.args) for c in bot.fake.calls if c.method == "conversations.invite"]
    assert invited and not [args for args in invited if "channel>" in args]
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


# --- floods -------------------------------------------------------------------------------

REFUSED = "You declared 5 incidents in the last 10 minutes"


async def declared_by(bot: Bot, user: str) -> list[Incident]:
    async with bot.warroom.db.session() as session:
        result = await session.exec(select(Incident).where(Incident.declared_by == user))
        return list(result.all())


async def test_one_person_declares_at_most_five_incidents_in_ten_minutes(bot: Bot) -> None:
    for n in range(1, 5):
        await bot.slack.command(f"declare sev1 Flood {n}")
    fifth = command_fields(bot, "declare sev1 Flood 5")
    await send(bot, fifth)
    assert not [a for a in answers(bot.fake) if REFUSED in a]
    for n in range(6, 9):
        await bot.slack.command(f"declare sev1 Flood {n}")
    await bot.settle()
    assert len(await declared_by(bot, ALICE)) == 5
    refusals = [a for a in answers(bot.fake) if REFUSED in a]
    assert (
        refusals
        == [
            ":no_entry_sign: You declared 5 incidents in the last 10 minutes; ask someone else to "
            "declare this one, or wait 10 minutes."
        ]
        * 3
    )
    # Refused declares cost Slack nothing: no channel, no announcement, no page.
    assert len(bot.fake.calls_to("conversations.create")) == 5

    # The same request again is not a new declare: not refused, nothing added.
    before = len(answers(bot.fake))
    await send(bot, fifth)
    assert not [a for a in answers(bot.fake)[before:] if REFUSED in a]
    assert len(await declared_by(bot, ALICE)) == 5

    # Someone else declares as usual.
    await bot.slack.command("declare sev1 Real outage", user=BOB)
    await bot.settle()
    assert [i.title for i in await declared_by(bot, BOB)] == ["Real outage"]

    # The window rolls: the wait counts down, then Alice may declare again.
    bot.clock.advance(minutes=4)
    await bot.slack.command("declare sev2 Still flooding")
    await bot.settle()
    assert answers(bot.fake)[-1].endswith("or wait 6 minutes.")
    bot.clock.advance(minutes=6)
    await bot.slack.command("declare sev2 Next day")
    await bot.settle()
    assert "Next day" in [i.title for i in await declared_by(bot, ALICE)]


async def test_a_burst_sent_at_once_stores_five(bot: Bot) -> None:
    await asyncio.gather(*(bot.slack.command(f"declare sev1 Burst {n}") for n in range(12)))
    await bot.settle(timeout=30)
    assert len(await declared_by(bot, ALICE)) == 5
    assert len([a for a in answers(bot.fake) if REFUSED in a]) == 7


async def test_the_limit_holds_across_replicas_and_restarts(bot: Bot) -> None:
    """The limit counts incidents in the database, not requests in a process."""
    for n in range(5):
        await bot.slack.command(f"declare sev3 Flood {n}")
    await bot.settle()
    async for other in start_bot(bot.warroom.settings, bot.fake, bot.clock):
        await other.slack.command("declare sev1 From the other replica")
        await other.settle()
    assert len(await declared_by(bot, ALICE)) == 5
    assert REFUSED in answers(bot.fake)[-1]


def test_the_wait_counts_from_the_declare_that_leaves_the_window_first() -> None:
    limits = Limits(declares_per_person=3, declare_window_minutes=10)
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    ago = [now - timedelta(minutes=m) for m in (12, 9, 5, 1)]  # 12 is outside the window
    assert limits.declare_wait(ago[:3], now) is None
    assert limits.declare_wait(ago, now) == timedelta(minutes=1)
    assert limits.declare_wait([now] * 4, now) == timedelta(minutes=10)
    assert limits.declare_wait([now - timedelta(minutes=10)] * 9, now) is None


def test_the_declare_limit_is_configurable(tmp_path: Path) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text("[limits]\ndeclares_per_person = 2\ndeclare_window_minutes = 60\n")
    policy = load_policy(str(path))
    assert (policy.limits.declares_per_person, policy.limits.declare_window_minutes) == (2, 60)
    for bad in ("declares_per_person = 0", "declare_window_minutes = 0", "declares_pp = 3"):
        path.write_text(f"[limits]\n{bad}\n")
        with pytest.raises(ConfigError, match="limits"):
            load_policy(str(path))


# --- priority on rate-limited methods -----------------------------------------------------


async def test_a_declare_goes_before_a_burst_of_housekeeping_on_a_rate_limited_method(
    bot: Bot,
) -> None:
    """With Slack's rate limit engaged, a declare's conversations.create is not queued behind
    a burst of lower-priority calls to the same method (a repair sweep, say)."""
    bot.fake.enforce_rate_limits(scale=0.05)  # conversations.create: 20 calls in any 3 s
    slack = bot.warroom.services.slack

    async def housekeeping(n: int) -> None:
        with contextlib.suppress(SlackError):
            await slack.create_channel(lambda attempt: f"housekeeping-{n}", private=False)

    burst = [asyncio.create_task(housekeeping(n)) for n in range(30)]
    # Slack has refused part of the burst: the method's budget is spent.
    await eventually(
        lambda: any(c.status == 429 for c in bot.fake.calls_to("conversations.create"))
    )
    await bot.slack.command("declare sev1 Real outage", user=BOB)
    await asyncio.gather(*burst)
    await bot.settle(timeout=30)

    calls = bot.fake.calls_to("conversations.create")
    created = [c.args["name"] for c in calls if c.ok]
    waited = {c.args["name"] for c in calls if c.status == 429} - {"incident-1"}
    assert len(waited) == 10 and len(created) == 31
    assert created.index("incident-1") < min(created.index(name) for name in waited), created
    room = channel(bot.fake, "incident-1")
    assert bot.fake.pins(room.id) and room.topic


async def test_the_gate_waits_out_retry_after_then_serves_urgent_calls_first() -> None:
    gate = PriorityGate()
    loop = asyncio.get_running_loop()
    # A method with budget (and no pacing): straight through, nothing to give back.
    assert await gate.acquire("conversations.create", Priority.NORMAL, gate.ticket()) == STRAIGHT
    started = loop.time()
    gate.release("conversations.create", STRAIGHT, retry_after=0.2)  # Slack said 429
    served: list[tuple[str, float]] = []

    async def call(name: str, rank: Priority, refused_once: bool = False) -> None:
        ticket = gate.ticket()
        refusals = 1 if refused_once else 0
        while True:
            held = await gate.acquire("conversations.create", rank, ticket)
            served.append((name, loop.time() - started))
            await asyncio.sleep(0.01)
            if refusals:
                refusals -= 1
                gate.release("conversations.create", held, retry_after=0.1)
                continue
            gate.release("conversations.create", held)
            return

    reminders = [
        asyncio.create_task(call("reminder-1", Priority.NORMAL, refused_once=True)),
        asyncio.create_task(call("reminder-2", Priority.NORMAL)),
    ]
    doomed = asyncio.create_task(call("cancelled", Priority.NORMAL))
    await asyncio.sleep(0.05)
    declare = asyncio.create_task(call("declare", Priority.URGENT))
    doomed.cancel()
    await asyncio.gather(declare, *reminders)
    assert [name for name, _ in served] == [
        "declare",
        "reminder-1",  # refused again: waits 0.1 s more and keeps its place
        "reminder-1",
        "reminder-2",
    ]
    assert served[0][1] >= 0.2  # nothing went out before Retry-After
    assert served[2][1] >= served[1][1] + 0.1
    assert not gate.contended("conversations.create")
    assert await gate.acquire("conversations.create", Priority.NORMAL, gate.ticket()) == STRAIGHT
