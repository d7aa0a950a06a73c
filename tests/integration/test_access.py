"""Sight and rights on every surface.

The walk at the top sends, as a person outside a private incident, every request the bot
answers (each `/incident` subcommand of the command table, and every button, form, shortcut
and event listener registered on the Bolt app, found at run time) in two worlds: one where
incident #1 (and action item A1) is private, one where no incident exists (alert group 1, on a
triage card, is in both). What the outsider sees must be the same in both, and neither world
may change. The requests are the bot's own: buttons carry the values the bot showed in the
private world, and forms are built by the bot's view builders with every input filled, so each
reaches the sight check (or answers something) instead of stopping early in both worlds alike.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import SQLModel

from app.bootstrap import build
from app.config import Settings
from app.domain.policy import Policy
from app.domain.snapshot import IncidentSnapshot
from app.fake_slack import FakeSlack
from app.services.catchup import SETTLING
from app.services.clock import ManualClock
from app.slack import action_views, views
from app.slack.listeners import gate
from app.slack.listeners.commands import TABLE
from app.store.models import ActionItem, AlertGroup
from tests.support.alerts import (
    add_triage_channel,
    am_alert,
    am_payload,
    base_of,
    post_alerts,
    with_alerts,
)
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, BOT_TOKEN, CAROL, DAVE, ENG_LEAD, ERIN, ONCALL_GROUP
from tests.support.factories import fresh_database, policy_with, settings_for
from tests.support.helpers import answers, channel, dms, last_view
from tests.support.scenarios import T0
from tests.support.slackclient import fill_state

OUTSIDER = BOB
NUMBER = 1  # incident #1 and action item A1: private in one world, never used in the other
GROUP = 1  # alert group 1, in both worlds, on a triage card naming no incident


# --- the listeners, as registered on the Bolt app ------------------------------------------


@dataclass(frozen=True)
class Surface:
    kind: str  # command, action, view, shortcut, event
    name: str  # the command, action_id, callback_id or event type (a sample for a pattern)
    text: str = ""  # for commands: what follows `/incident`

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}" + (f":{self.text}" if self.text else "")


def _closure(func: Callable[..., Any]) -> dict[str, Any]:
    cells = func.__closure__ or ()
    return {
        name: cell.cell_contents
        for name, cell in zip(func.__code__.co_freevars, cells, strict=True)
    }


def _sample(pattern: re.Pattern[str]) -> str:
    """A value matching a listener's pattern (numbers are snooze minutes the policy offers)."""
    text = re.sub(r"\\d\+", "15", pattern.pattern).strip("^$")
    assert pattern.fullmatch(text), f"write a sample for the listener pattern {pattern.pattern}"
    return text


# Bolt's matcher names, as the walk calls them. A listener of another kind (options, a global
# shortcut, view_closed, block_suggestion …) stops the walk until `requests` can send it.
KINDS = {
    "command": "command",
    "event": "event",
    "action": "action",
    "block_action": "action",
    "view_submission": "view",
    "shortcut": "shortcut",
    "message_shortcut": "shortcut",
}


def listener_surfaces(app: Any = None) -> list[tuple[str, str]]:
    """(kind, name) of every listener the bot registers, read from Bolt's own matchers."""
    if app is None:
        app = build(
            Settings(bot_token=BOT_TOKEN, signing_secret="x", database_url="sqlite+aiosqlite://")
        ).app
    found = []
    for listener in app._async_listeners:
        inner = _closure(listener.matchers[0].func)["func"]  # type: ignore[attr-defined]
        matcher = inner.__qualname__.split(".")[0]
        values = list(_closure(inner).values())
        kind = KINDS.get(matcher)
        if kind is None or len(values) != 1 or not isinstance(values[0], str | re.Pattern):
            raise AssertionError(
                f"A listener of a kind the outsider walk cannot send yet: Bolt's {matcher!r} "
                f"matching {values!r}. Teach tests/integration/test_access.py to send it: map "
                "the matcher to a kind in KINDS, and say in `requests()` how an outsider makes "
                "such a request naming incident #1 (and, for a form, in FORMS how it is built)."
            )
        (value,) = values
        name = _sample(value) if isinstance(value, re.Pattern) else str(value)
        found.append((kind, name))
    return found


def command_text(entry: Any) -> str:
    """A complete example of the subcommand, naming incident #1 when it takes an incident."""
    if entry.elsewhere is None:
        return re.sub(r"\s*\[[^\]]*\]", "", entry.usage).strip()
    text = entry.elsewhere.removeprefix("/incident ")
    text = re.sub(r"\b42\b", str(NUMBER), text)
    text = text.replace("@person", "<@UBOB|bob>").replace("@owner", "<@UBOB|bob>")
    text = text.replace("<text>", "crafted text")
    return re.sub(r"\d{4}-\d{2}-\d{2}", "2099-01-01", text)


def surfaces() -> list[Surface]:
    out = []
    for kind, name in listener_surfaces():
        if kind == "command" and name == "/incident":
            for entry in TABLE:
                text = command_text(entry)
                out.append(Surface(kind, name, text))
                if "crafted text" in text:  # the same subcommand without its text (a form)
                    out.append(Surface(kind, name, text.replace(" crafted text", "")))
        else:
            out.append(Surface(kind, name))
    return out


# --- two worlds ----------------------------------------------------------------------------


def new_fake() -> FakeSlack:
    """The workspace of tests/conftest.py."""
    slack = FakeSlack(bot_token=BOT_TOKEN, bot_user_id="UBOT", team_id="T1")
    for user_id in (ALICE, BOB, CAROL, "UDAVE", "UERIN", "UONCALL", "UBACKUP", ENG_LEAD):
        slack.add_user(user_id, name=user_id[1:].lower(), real_name=user_id[1:].capitalize())
    for user_id in ("UCEO", "UVPOPS", "UONCALL2", "UENGMGR", "UVPENG", "USPECIAL"):
        slack.add_user(user_id, name=user_id[1:].lower(), real_name=user_id[1:].capitalize())
    slack.add_usergroup(ONCALL_GROUP, handle="oncall", users=["UONCALL", "UONCALL2"])
    slack.add_channel("incidents", is_private=False, members=[ALICE], bot_member=False)
    slack.add_channel("general", is_private=False, members=[ALICE, BOB], bot_member=False)
    return slack


@dataclass
class World:
    bot: Bot
    room: str  # the private incident's channel (an unused id in the world without it)
    pinned_ts: str  # a message in it
    snapshot: IncidentSnapshot | None = None  # incident #1, in the world that has it
    item: ActionItem | None = None  # action item A1, likewise

    @property
    def fake(self) -> FakeSlack:
        return self.bot.fake


@asynccontextmanager
async def world(folder: Path, clock: ManualClock, private: bool) -> AsyncIterator[World]:
    fake = new_fake()
    add_triage_channel(fake)
    await fake.start(host="127.0.0.1", port=0)
    try:
        async with fresh_database(folder, migrated=True) as url:
            settings = with_alerts(settings_for(fake, url))
            async for bot in start_bot(settings, fake, clock):
                await triage_card(bot)
                room, ts = "C0PRIVATE01", "1700000000.000100"
                if not private:
                    yield World(bot, room, ts)
                    continue
                room, ts = await declare_private(bot)
                [item] = await bot.warroom.bot.actions.for_incident(NUMBER)
                yield World(bot, room, ts, await bot.warroom.incidents.snapshot(NUMBER), item)
    finally:
        await fake.stop()


async def triage_card(bot: Bot) -> None:
    """Alert group 1 and its card in #alerts (the card's buttons name the group, and its
    Attach form an incident)."""
    alert = am_alert("DiskFull", "db1", bot.clock.now())
    status, _ = await post_alerts(base_of(bot.url), "prom", am_payload("DiskFull", [alert]))
    assert status == 200
    await bot.settle()
    async with bot.warroom.db.session() as session:
        assert await session.get(AlertGroup, GROUP) is not None


async def declare_private(bot: Bot) -> tuple[str, str]:
    """Alice declares private incident #1 and gives herself action item A1."""
    await bot.slack.command("declare", user=ALICE)
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": "Secret breach", "private": ["private"]}, user=ALICE)
    await bot.settle()
    room = channel(bot.fake, "incident-1")
    assert room.is_private and OUTSIDER not in room.members
    due = (bot.clock.now() + timedelta(days=7)).date().isoformat()
    await bot.slack.command(f"action Rotate the keys <@UALICE|alice> due {due}", channel=room.id)
    await bot.settle()
    said = bot.fake.add_message(room.id, ALICE, "The logs show the token was used")
    return room.id, said.ts


# --- what a person sees, and what the world holds ------------------------------------------

VIEW_METHODS = {"views.open", "views.push", "views.update", "views.publish"}


def _normal(value: Any, room: str) -> Any:
    """Drop what differs between any two runs: URLs on the fake, the room's channel ID."""
    text = json.dumps(value, sort_keys=True, default=str).replace(room, "<room>")
    text = re.sub(r"http://127\.0\.0\.1:\d+/[^\"\\]*", "<url>", text)
    return json.loads(text)


def _view(call: Any, room: str) -> Any:
    view = call.args.get("view")
    view = json.loads(view) if isinstance(view, str) else dict(view or {})
    meta = view.get("private_metadata")
    if meta:
        view["private_metadata"] = {k: v for k, v in json.loads(meta).items() if k != "reply_url"}
    shown = {k: view.get(k) for k in ("type", "callback_id", "title", "blocks", "private_metadata")}
    return _normal({"method": call.method, "user": call.args.get("user_id"), "view": shown}, room)


async def observe(w: World, send: Callable[[World], Awaitable[tuple[int, Any]]]) -> Any:
    """What the outsider sees from one request: the acknowledgment, private answers, DMs,
    ephemeral messages and views."""
    fake = w.fake
    calls, responses, said = len(fake.calls), len(fake.responses), len(dms(fake, OUTSIDER))
    status, ack = await send(w)
    await w.bot.settle()
    new, room = fake.calls[calls:], w.room
    return {
        "status": status,
        "ack": _normal(ack, room),
        "answers": [_normal(body, room) for _, body in fake.responses[responses:]],
        "dms": [_normal([m.text, m.blocks], room) for m in dms(fake, OUTSIDER)[said:]],
        "ephemeral": [
            _normal([c.args.get("text"), c.args.get("blocks")], room)
            for c in new
            if c.method == "chat.postEphemeral" and c.args.get("user") == OUTSIDER
        ],
        "views": [_view(c, room) for c in new if c.method in VIEW_METHODS and c.ok],
    }


async def fingerprint(w: World) -> Any:
    """Every row the bot keeps (but the event ids it has seen), and every conversation but the
    outsider's direct messages."""
    rows = {}
    async with w.bot.warroom.db.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name != "processed_events":
                result = await session.exec(select(table))  # type: ignore[call-overload]
                rows[table.name] = sorted(repr(tuple(r)) for r in result.all())
    conversations = {}
    for c in w.fake.workspace.channels.values():
        if c.is_im and c.im_user == OUTSIDER:
            continue
        messages = [(m.ts, m.text, json.dumps(m.blocks)) for m in w.fake.messages(c.id)]
        conversations[c.id] = (c.name, sorted(c.members), c.topic, c.is_archived, messages)
    homes = {u: v.get("blocks") for u, v in w.fake.home_views.items() if u != OUTSIDER}
    return rows, conversations, homes, sorted(w.fake.files)


# --- the requests --------------------------------------------------------------------------


def forms(w: World) -> dict[str, Callable[[str], dict[str, Any]]]:
    """Each form the bot opens, by callback_id, built as the bot builds it for incident #1
    (and action item A1, alert group 1) of the private world, with the given metadata."""
    policy = w.bot.warroom.services.policy
    snap, item = w.snapshot, w.item
    return {
        views.DECLARE: lambda meta: views.declare_modal(policy, meta),
        views.UPDATE: lambda meta: views.update_modal(snap, meta, policy=policy),
        views.RESOLVE: lambda meta: views.resolve_modal(snap, meta, policy),
        views.ROLES: lambda meta: views.roles_modal(snap, policy, meta),
        views.ALERT_DISMISS: views.alert_dismiss_modal,
        views.ALERT_ATTACH: lambda meta: views.alert_attach_modal(meta, [snap]),
        action_views.REASSIGN: lambda meta: action_views.reassign_modal(item, meta),
        views.PUBLIC_EDIT: lambda meta: views.public_edit_modal("Crafted", "resolved", "x", meta),
    }


def crafted_state(view: dict[str, Any], now: int) -> dict[str, Any]:
    """Slack's `view.state.values` with every input of the form filled with a value it
    offers: the incident picked is #1, the person the outsider. A declare form's title is
    left empty: declaring is not about an existing incident, so the form is refused inside
    it in both worlds alike (a declare would number the worlds' incidents differently)."""
    state: dict[str, Any] = {}
    for block in view["blocks"]:
        if block.get("type") != "input":
            continue
        element, block_id = block["element"], block["block_id"]
        kind, options = element["type"], element.get("options") or []
        entry: dict[str, Any] = {"type": kind}
        if kind == "plain_text_input":
            text = "" if (view["callback_id"], block_id) == (views.DECLARE, "title") else "x"
            entry["value"] = text
        elif kind == "static_select":
            if block_id == "incident":
                chosen = [o for o in options if o["value"] == str(NUMBER)]
            else:
                chosen = options[-1:]
            assert chosen, f"{view['callback_id']}: no option to pick in {block_id}"
            entry["selected_option"] = chosen[0]
        elif kind in ("checkboxes", "multi_static_select"):
            entry["selected_options"] = options
        elif kind == "users_select":
            entry["selected_user"] = OUTSIDER
        elif kind == "datetimepicker":
            entry["selected_date_time"] = now
        else:
            raise AssertionError(
                f"{view['callback_id']}: teach crafted_state the input element {kind!r}"
            )
        state[block_id] = {element["action_id"]: entry}
    return state


def button_values(w: World) -> dict[str, set[str]]:
    """The values of every button the bot showed in the private world (messages, DMs, App
    Home), by action_id: the outsider presses them as a stale message would hold them."""
    found: dict[str, set[str]] = {}

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "button" and "action_id" in node and "value" in node:
                found.setdefault(node["action_id"], set()).add(str(node["value"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for c in w.fake.workspace.channels.values():
        walk([m.blocks for m in w.fake.messages(c.id)])
    walk(list(w.fake.home_views.values()))
    return found


Send = Callable[[World], Awaitable[tuple[int, Any]]]


def requests(surface: Surface, private: World) -> list[Send]:
    """The requests an outsider can make of a surface, naming #1 / A1 / alert group 1 every
    way it can be: built from what the bot shows in the private world, sent to both."""
    if surface.kind == "command":
        return [lambda w: w.bot.slack.command(surface.text, user=OUTSIDER)]
    if surface.kind == "action":
        shown = button_values(private).get(surface.name, set())
        return [
            lambda w, value=value: w.bot.slack.click(surface.name, value, user=OUTSIDER)
            for value in sorted(shown | {str(NUMBER), f"{NUMBER}:15"})
        ]
    if surface.kind == "view":
        build_form = forms(private).get(surface.name)
        assert build_form, f"add the form {surface.name!r} to FORMS (`forms()`) in this test"

        def submit(w: World, reply: bool) -> Awaitable[tuple[int, Any]]:
            meta: dict[str, Any] = {
                "incident": NUMBER,
                "item": NUMBER,
                "alert_group": GROUP,
                "update": NUMBER,
            }
            if reply:
                meta["reply_url"] = w.fake.new_response_url()
            view = {"id": "VCRAFTED01", **build_form(json.dumps(meta))}
            now = int(w.bot.clock.now().timestamp())
            payload = {
                "type": "view_submission",
                "team": {"id": "T1"},
                "user": {"id": OUTSIDER, "name": "bob"},
                "api_app_id": "A1",
                "trigger_id": w.fake.new_trigger_id(),
                "view": {**view, "state": {"values": crafted_state(view, now)}},
            }
            return w.bot.slack.interact(payload)

        return [lambda w: submit(w, True), lambda w: submit(w, False)]
    if surface.kind == "shortcut":
        message = {"ts": "1700000000.000100", "text": "crafted", "user": OUTSIDER}
        return [lambda w: w.bot.slack.shortcut(surface.name, message, w.room, user=OUTSIDER)]
    assert surface.kind == "event", surface

    async def event(w: World) -> tuple[int, Any]:
        item = {"type": "message", "channel": w.room, "ts": w.pinned_ts}
        body = {
            "type": surface.name,
            "user": OUTSIDER,
            "channel": w.room,
            "channel_id": w.room,
            "tab": "home",
            "reaction": "pushpin",
            "item": item,
            "event_ts": str(time.time()),
        }
        return await w.bot.slack.event(body, event_id=f"Ev{time.monotonic_ns()}"), {}

    return [event]


# Surfaces that answer the outsider nothing in either world, and why that is right: every
# other surface must, for at least one of its requests, reach the sight check on incident #1
# or answer the outsider something (not an early return both worlds share trivially).
SILENT = {
    "event:channel_unarchive": "an unarchived room gets the messages it held; nothing is "
    "shown to anyone, so there is no one whose sight to check",
    "event:group_unarchive": "the same, for a private channel",
}
# Requests that change the world by design, alike in both: they name no incident.
CHANGES = {
    "view:alert_dismiss_form": "a triage card names an alert group, not an incident: anyone "
    "may dismiss it (the group is dismissed the same way in both worlds)",
}


def row_changes(before: Any, after: Any) -> dict[str, tuple[int, int]]:
    """How many rows were added and removed, table by table (the rows themselves hold the
    IDs each fake Slack makes up)."""
    return {
        table: (len(set(after[0][table]) - set(rows)), len(set(rows) - set(after[0][table])))
        for table, rows in before[0].items()
    }


@pytest.mark.parametrize("surface", surfaces(), ids=lambda s: s.id)
async def test_an_outsider_gets_the_answers_of_a_number_never_used(
    surface: Surface, tmp_path: Path, clock: ManualClock
) -> None:
    async with (
        world(tmp_path / "private", clock, private=True) as private,
        world(tmp_path / "missing", clock, private=False) as missing,
    ):
        # Past the minutes after a declare in which an arrival gets no catch-up.
        clock.set(clock.now() + SETTLING + timedelta(minutes=1))
        reached = []
        for send in requests(surface, private):
            before = await fingerprint(private), await fingerprint(missing)
            members_asked = len(private.fake.calls_to("conversations.members"))
            seen_private = await observe(private, send)
            seen_missing = await observe(missing, send)
            assert seen_private == seen_missing
            after = await fingerprint(private), await fingerprint(missing)
            if surface.id in CHANGES:
                changed = row_changes(before[0], after[0])
                assert changed == row_changes(before[1], after[1])
            else:
                assert after == before
            asked = [
                c
                for c in private.fake.calls_to("conversations.members")[members_asked:]
                if c.args.get("channel") == private.room
            ]
            reached.append(bool(asked) or any(v for k, v in seen_private.items() if k != "status"))
        # Not an early return both worlds share: the private world asked who may see #1, or
        # the outsider was answered something.
        assert any(reached) or surface.id in SILENT, (
            f"{surface.id}: no request reached the sight check or got an answer; make them "
            "name incident #1 as the bot's own would, or list the surface in SILENT with why"
        )
        assert not (any(reached) and surface.id in SILENT), f"{surface.id} is not silent"


def test_a_listener_of_a_new_kind_stops_the_walk_with_a_message() -> None:
    runtime = build(
        Settings(bot_token=BOT_TOKEN, signing_secret="x", database_url="sqlite+aiosqlite://")
    )

    @runtime.app.options("incident_picker")
    async def options(ack: Any) -> None:
        await ack()

    with pytest.raises(AssertionError, match=r"options.*Teach tests/integration/test_access\.py"):
        listener_surfaces(runtime.app)


def test_a_listener_registered_around_the_gate_stops_the_bot() -> None:
    runtime = build(
        Settings(bot_token=BOT_TOKEN, signing_secret="x", database_url="sqlite+aiosqlite://")
    )
    gate.verify(runtime.app)  # what the bot registers itself passes

    @runtime.app.action("sneaky_button")
    async def sneaky(ack: Any) -> None:
        await ack()

    with pytest.raises(RuntimeError, match="sneaky"):
        gate.verify(runtime.app)


# --- item by item --------------------------------------------------------------------------


async def declare_private_incident(
    bot: Bot, title: str = "Secret breach", sev: str = "2"
) -> IncidentSnapshot:
    """Alice declares a private incident through the form."""
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": title, "severity": sev, "private": ["private"]})
    await bot.settle()
    return max(await bot.warroom.incidents.not_closed(), key=lambda i: i.id)


def stats_count(text: str, label: str) -> int:
    """The incident count in a stats block's heading ("Sev4: 1 incident", "All severities: 2
    incidents", "Sev3: no incidents")."""
    for line in text.splitlines():
        if line.startswith(f"{label}: "):
            words = line.split(": ", 1)[1].split()
            return 0 if words[0] == "no" else int(words[0].replace(",", ""))
    raise AssertionError(f"no {label} block in {text!r}")


async def test_stats_count_a_private_incident_only_for_those_who_may_see_it(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    await declare_private_incident(bot, sev="4")
    for user in (ALICE, OUTSIDER):
        await bot.slack.command("stats", user=user)
        await bot.settle()
    alice, outsider = answers(bot.fake)[-2:]
    assert stats_count(alice, "All severities") == 2 and stats_count(alice, "Sev4") == 1
    assert stats_count(outsider, "All severities") == 1 and stats_count(outsider, "Sev4") == 0
    assert "Secret breach" not in alice + outsider


async def reassign(bot: Bot, item: str, by: str, to: str) -> None:
    """`by` reassigns action item `item` to `to` through its form."""
    await bot.slack.click("action_item_reassign", item, user=by)
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "reassign_action_item"), {"owner": to}, user=by)
    await bot.settle()


async def test_only_the_owner_those_running_it_and_admins_complete_or_reassign_an_item(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    settings = replace(settings_for(fake, database_url), policy=policy_with(admins=[ERIN]))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev3 Queue backlog")  # Alice declares and commands
        await bot.settle()
        room = channel(fake, "incident-1").id
        # Alice hands command to Carol (and stays the declarer); Eng Lead leads the technical work.
        await bot.slack.command("role commander <@UCAROL|carol>", channel=room)
        await bot.slack.command("role tech_lead <@UENGLEAD|englead>", channel=room)
        await bot.settle()
        snap = await bot.warroom.incidents.snapshot(1)
        assert snap.declared_by == ALICE
        assert snap.commander == CAROL and ENG_LEAD in snap.roles.values()
        items = ("Drain the queue", "Add an alert", "Tune the consumers", "Write the runbook")
        for text in items:
            await bot.slack.command(f"action {text} <@UDAVE|dave>", channel=room)
        await bot.settle()

        # A bystander, even one in the room, may not.
        fake.channel(room).members.append(OUTSIDER)
        refusal = (
            ":no_entry_sign: Only its owner (<@UDAVE>), the people running incident #1 "
            "(<@UCAROL>, <@UENGLEAD>, <@UALICE>) or an admin may complete or reassign action "
            "item A1."
        )
        await bot.slack.click("action_item_done", "1", user=OUTSIDER)
        await bot.slack.click("action_item_reassign", "1", user=OUTSIDER)
        await bot.settle()
        assert answers(fake)[-2:] == [refusal, refusal]
        assert not fake.calls_to("views.open")  # the form was refused before it opened
        crafted = {
            "id": "VCRAFTED02",
            "type": "modal",
            "callback_id": "reassign_action_item",
            "private_metadata": json.dumps({"item": 1}),
            "blocks": [
                {
                    "type": "input",
                    "block_id": "owner",
                    "element": {"type": "users_select", "action_id": "owner"},
                }
            ],
        }
        await bot.slack.submit(crafted, {"owner": OUTSIDER}, user=OUTSIDER)
        await bot.settle()
        assert dms(fake, OUTSIDER)[-1].text == refusal  # no reply URL: answered by DM
        items_now = await bot.warroom.bot.actions.for_incident(1)
        assert [(i.owner, i.done_at) for i in items_now] == [(DAVE, None)] * 4

        # The owner, the commander, the tech lead, the declarer and an admin may.
        await bot.slack.click("action_item_done", "1", user=DAVE)
        await reassign(bot, "2", CAROL, ERIN)  # the commander
        await bot.slack.click("action_item_done", "2", user=ERIN)  # an admin
        await reassign(bot, "3", ENG_LEAD, CAROL)  # the tech lead
        await bot.slack.click("action_item_done", "3", user=ENG_LEAD)
        await reassign(bot, "4", ALICE, ENG_LEAD)  # the declarer, no longer commanding
        await bot.slack.click("action_item_done", "4", user=ALICE)
        await bot.settle()
        items_now = await bot.warroom.bot.actions.for_incident(1)
        assert [(i.owner, i.done_by) for i in items_now] == [
            (DAVE, DAVE),
            (ERIN, ERIN),
            (CAROL, ENG_LEAD),
            (ENG_LEAD, ALICE),
        ]


async def submit_status(bot: Bot, view: dict[str, Any], status: str, user: str) -> Any:
    """Submit the update form with `status` picked, whether the form offered it or not."""
    state = fill_state(view, {"investigation": "Consumers restarted"})
    state["status"] = {"status": {"type": "static_select", "selected_option": {"value": status}}}
    payload = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": user, "name": user.lower()},
        "api_app_id": "A1",
        "trigger_id": bot.fake.new_trigger_id(),
        "view": {**view, "state": {"values": state}},
    }
    _, ack = await bot.slack.interact(payload)
    await bot.settle()
    return ack


async def test_status_moves_in_the_update_form_need_the_rights_of_their_commands(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    restricted = ["severity", "roles", "resolve", "close", "mitigate"]
    policy = policy_with(permissions={"restricted": restricted})
    async for bot in start_bot(
        replace(settings_for(fake, database_url), policy=policy), fake, clock
    ):
        await bot.slack.command("declare sev3 Queue backlog")  # Alice commands
        await bot.settle()
        room = channel(fake, "incident-1").id

        # Bob may post updates, not mark the incident mitigated: the form does not offer it,
        # and a submission that picks it anyway is refused.
        await bot.slack.command("update", channel=room, user=OUTSIDER)
        await bot.settle()
        view = last_view(fake, "post_update")
        offered = [o["value"] for o in view["blocks"][1]["element"]["options"]]
        assert offered == ["investigating", "identified", "monitoring"]
        await submit_status(bot, view, "mitigated", OUTSIDER)
        assert answers(fake)[-1] == (
            ":no_entry_sign: Only the people running incident #1 (<@UALICE>) may mark it mitigated."
        )
        snap = await bot.warroom.incidents.snapshot(1)
        assert snap.status == "investigating" and snap.mitigated_at is None
        assert snap.last_update_at is None  # nothing was posted

        # Statuses the form never offers are refused inside the form, for everyone.
        await bot.slack.command("update", channel=room)
        await bot.settle()
        view = last_view(fake, "post_update")
        assert "mitigated" in json.dumps(view["blocks"][1])  # Alice may
        for status in ("resolved", "closed", "banana"):
            ack = await submit_status(bot, view, status, ALICE)
            assert ack["response_action"] == "errors"
            assert "resolution form" in ack["errors"]["status"]
        snap = await bot.warroom.incidents.snapshot(1)
        assert snap.status == "investigating" and snap.resolved_at is None

        await submit_status(bot, view, "mitigated", ALICE)
        snap = await bot.warroom.incidents.snapshot(1)
        assert snap.status == "mitigated" and snap.mitigated_at is not None


async def test_a_private_incidents_items_are_never_given_or_told_to_an_outsider(bot: Bot) -> None:
    fake = bot.fake
    room = (await declare_private_incident(bot)).channel_id
    assert room
    refusal = (
        ":no_entry_sign: <@UBOB> is not in incident #1's private channel, so they cannot own its "
        "action items. Invite them to the channel first, or pick someone in it."
    )
    await bot.slack.command("action Rotate the leaked keys <@UBOB|bob>", channel=room)
    await bot.settle()
    assert answers(fake)[-1] == refusal
    assert await bot.warroom.bot.actions.for_incident(1) == []

    await bot.slack.command("action Rotate the leaked keys <@UALICE|alice>", channel=room)
    await bot.settle()
    await bot.slack.click("action_item_reassign", "1", user=ALICE)
    await bot.settle()
    await bot.slack.submit(last_view(fake, "reassign_action_item"), {"owner": OUTSIDER})
    await bot.settle()
    assert answers(fake)[-1] == refusal
    [item] = await bot.warroom.bot.actions.for_incident(1)
    assert item.owner == ALICE
    assert "Rotate the leaked keys" not in json.dumps([m.text for m in dms(fake, OUTSIDER)])
    assert not dms(fake, OUTSIDER)


async def test_an_owner_taken_out_of_a_private_incident_is_not_reminded_of_its_items(
    bot: Bot,
) -> None:
    fake = bot.fake
    bot.clock.set(T0)  # Monday 2030-01-07 10:00 UTC
    room = fake.channel((await declare_private_incident(bot)).channel_id or "")
    room.members.append(OUTSIDER)
    await bot.slack.command(
        "action Rotate the leaked keys <@UBOB|bob> due 2030-01-08", channel=room.id
    )
    await bot.settle()
    assert "You own action item A1" in dms(fake, OUTSIDER)[-1].text

    room.members.remove(OUTSIDER)
    told = len(dms(fake, OUTSIDER))
    for moment in ("2030-01-08 09:00", "2030-01-09 09:00"):
        bot.clock.set(datetime.fromisoformat(moment).replace(tzinfo=UTC))
        await bot.warroom.engine.tick()
        await bot.settle()
    assert dms(fake, OUTSIDER)[told:] == []

    room.members.append(OUTSIDER)  # let back in: the next working day's reminder comes
    bot.clock.set(datetime(2030, 1, 10, 9, 0, tzinfo=UTC))
    await bot.warroom.engine.tick()
    await bot.settle()
    [reminder] = dms(fake, OUTSIDER)[told:]
    assert "Action item A1 is due" in reminder.text and "Secret breach" in reminder.text


async def test_someone_removed_from_a_private_incident_stops_seeing_it_at_once(bot: Bot) -> None:
    fake = bot.fake
    room = fake.channel((await declare_private_incident(bot)).channel_id or "")
    room.members.append(OUTSIDER)
    await bot.slack.command("status 1", user=OUTSIDER)
    await bot.settle()
    assert "Secret breach" in answers(fake)[-1]

    room.members.remove(OUTSIDER)  # within a second, not a minute
    await bot.slack.command("status 1", user=OUTSIDER)
    await bot.slack.click("incident_update", "1", user=OUTSIDER)
    await bot.settle()
    assert answers(fake)[-2:] == [":no_entry_sign: There is no incident #1."] * 2
    assert not [v for v in fake.views.values() if v.get("callback_id") == "post_update"]

    room.members.append(OUTSIDER)  # and back
    await bot.slack.command("list", user=OUTSIDER)
    await bot.settle()
    assert "Secret breach" in answers(fake)[-1]


async def test_snooze_retro_note_action_and_postmortem_can_be_restricted(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    assert Policy().permissions.restricted == [
        "severity",
        "roles",
        "resolve",
        "close",
        "page",
        "publish",
    ]
    more = ["snooze", "retro", "note", "action", "postmortem"]
    policy = policy_with(permissions={"restricted": ["severity", "roles", "resolve", *more]})
    async for bot in start_bot(
        replace(settings_for(fake, database_url), policy=policy), fake, clock
    ):
        await bot.slack.command("declare sev3 Queue backlog")  # Alice commands
        await bot.settle()
        room = channel(fake, "incident-1").id
        before = await bot.warroom.timeline.entries(1), len(fake.messages(room))
        _, helped = await bot.slack.command("help", user=OUTSIDER)
        for text in ("note #1 Stuck", "action #1 Add an alert", "retro 1", "retro done 1"):
            await bot.slack.command(text, user=OUTSIDER)
            await bot.settle()
        await bot.slack.command("postmortem 1", user=OUTSIDER)
        await bot.settle()
        await bot.slack.click("reminder_snooze_15", "1:15", user=OUTSIDER)
        await bot.settle()
        said = answers(fake)[-6:]
        who = ":no_entry_sign: Only the people running incident #1 (<@UALICE>) may"
        assert said == [
            f"{who} add notes to its timeline.",
            f"{who} add its action items.",
            f"{who} run its retrospective.",
            f"{who} run its retrospective.",
            f"{who} share its postmortem.",
            f"{who} snooze its update reminders.",
        ]
        assert (await bot.warroom.timeline.entries(1), len(fake.messages(room))) == before
        assert await bot.warroom.bot.actions.for_incident(1) == []
        assert not fake.files
        # help marks them restricted
        assert (
            "`note [#42] &lt;text&gt;` - Add a line to the timeline. _(restricted)_"
            in helped["text"]
        )

        await bot.slack.command("note Consumers look stuck", channel=room)  # Alice may
        await bot.settle()
        assert (await bot.warroom.timeline.entries(1))[-1].text == "Consumers look stuck"


async def test_requests_from_another_workspace_are_refused(bot: Bot) -> None:
    fake = bot.fake

    async def command(text: str, team: str) -> tuple[int, str]:
        fields = {
            "team_id": team,
            "channel_id": "CGENERAL",
            "user_id": ALICE,
            "command": "/incident",
            "text": text,
            "response_url": fake.new_response_url(),
            "trigger_id": fake.new_trigger_id(),
        }
        status, body = await bot.slack.post_form(fields)
        await bot.settle()
        return status, body

    refused = ":no_entry_sign: This Warroom serves another Slack workspace."
    assert await command("declare sev2 Foreign outage", "T2") == (200, "")
    assert answers(fake)[-1] == refused
    assert await bot.warroom.incidents.open_incidents() == []

    await command("declare sev2 Our outage", "T1")
    [incident] = await bot.warroom.incidents.open_incidents()
    status, _ = await bot.slack.interact(
        {
            "type": "block_actions",
            "team": {"id": "T2"},
            "user": {"id": BOB},
            "trigger_id": fake.new_trigger_id(),
            "actions": [{"action_id": "incident_ack", "value": str(incident.id)}],
        }
    )
    await bot.settle()
    assert status == 200
    assert (await bot.warroom.incidents.snapshot(incident.id)).acknowledged_at is None
    event = {"type": "app_home_opened", "user": BOB, "channel": "D1", "tab": "home"}
    body = json.dumps(
        {"team_id": "T2", "type": "event_callback", "event_id": "EvForeign", "event": event}
    )
    await bot.slack.post_raw(body, bot.slack.headers(body), "application/json")
    await bot.settle()
    assert BOB not in fake.home_views
