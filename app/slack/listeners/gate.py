"""The one way a listener is registered, and the one place sight is established.

A request from Slack can name an incident in several ways: a number in a button's value, the
`incident` or `item` in a form's private_metadata, the channel an event happened in, a number or
the channel for a subcommand. Every listener is registered here, saying what its requests name
(a `Subject`); after the acknowledgment the gate reads it, loads the incident and establishes
sight (`Access.require_sight`) before the listener's work runs. To someone who may not see a
private incident, it and its action items answer with the very words a number never used gets,
and nothing runs.

`verify` (called once every listener is registered) stops the bot from starting when a listener
was registered on the Bolt app directly, around the gate.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from app.domain.snapshot import IncidentSnapshot
from app.services.errors import ServiceError, no_item
from app.services.inbox import NotRecorded
from app.services.ports import SlackError
from app.slack import views
from app.slack.listeners.events import first_delivery
from app.slack.reply import Replier
from app.store.models import ActionItem

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)

MARK = "_warroom_subject"


@dataclass(frozen=True)
class Subject:
    """What a listener's requests name, and where they say it."""

    kind: str  # "nothing", "command", "incident", "item" or "channel"
    read: Callable[[dict[str, Any]], object] = lambda body: None


def value_of(body: dict[str, Any]) -> object:
    """The value of the button clicked."""
    return _value(body)


def _value(body: dict[str, Any]) -> object:
    try:
        return body["actions"][0]["value"]
    except (KeyError, IndexError, TypeError):
        return None


def _meta(key: str) -> Callable[[dict[str, Any]], object]:
    return lambda body: views.read_metadata(body.get("view") or {}).get(key)


def _event_channel(body: dict[str, Any]) -> object:
    event = body.get("event") or {}
    return event.get("channel_id") or (event.get("item") or {}).get("channel")


# Names no incident: declaring, App Home (which lists only what the person may see).
NOTHING = Subject("nothing")
# `/incident`: the command table names the incident per entry; `dispatch` calls `incident()`.
COMMAND = Subject("command")
INCIDENT_BUTTON = Subject("incident", _value)  # value "42"
# value "42:15" (an incident, then something about it)
INCIDENT_BUTTON_PREFIX = Subject("incident", lambda body: str(_value(body) or "").split(":")[0])
ITEM_BUTTON = Subject("item", _value)  # value "7": action item A7
INCIDENT_FORM = Subject("incident", _meta("incident"))
ITEM_FORM = Subject("item", _meta("item"))
EVENT_CHANNEL = Subject("channel", _event_channel)


@dataclass(frozen=True)
class Seen:
    """What a request names, once the person was found to see it."""

    user: str
    incident: IncidentSnapshot | None = None
    item: ActionItem | None = None

    @property
    def incident_id(self) -> int:
        assert self.incident is not None, "the listener's subject names no incident"
        return self.incident.id

    @property
    def item_id(self) -> int:
        assert self.item is not None and self.item.id is not None, "no action item named"
        return self.item.id


# --- sight ---------------------------------------------------------------------------------


async def incident(bot: Bot, incident_id: int, user: str) -> IncidentSnapshot:
    """The incident, if `user` may see it; otherwise the error a number never used gets."""
    snap = await bot.incidents.snapshot(incident_id)
    await bot.services.access.require_sight(snap, user)
    return snap


async def item(bot: Bot, item_id: int, user: str) -> tuple[ActionItem, IncidentSnapshot]:
    """The action item and its incident, if `user` may see the incident; otherwise the error
    an item number never used gets."""
    found = await bot.actions.get(item_id)
    snap = await bot.incidents.snapshot(found.incident_id)
    await bot.services.access.require_sight(snap, user, no_item(item_id))
    return found, snap


async def establish(bot: Bot, subject: Subject, body: dict[str, Any], user: str) -> Seen | None:
    """Read what the request names and establish sight. None: it names nothing this bot
    knows how to read (not one of its own buttons or forms), so there is nothing to do."""
    if subject.kind in ("nothing", "command"):
        return Seen(user)
    raw = subject.read(body)
    if subject.kind == "channel":
        incident_id = await bot.incidents.in_channel(str(raw)) if raw else None
        if incident_id is None:
            return None  # not an incident channel
        return Seen(user, await incident(bot, incident_id, user))
    number = _number(raw)
    if number is None:
        return None
    if subject.kind == "item":
        found, snap = await item(bot, number, user)
        return Seen(user, snap, found)
    assert subject.kind == "incident", subject
    return Seen(user, await incident(bot, number, user))


def _number(raw: object) -> int | None:
    try:
        number = int(str(raw))
    except ValueError:
        return None
    return number if number > 0 else None


# --- registering ---------------------------------------------------------------------------

Work = Callable[[Seen, dict[str, Any], Replier], Awaitable[None]]
FieldCheck = Callable[[dict[str, Any]], dict[str, str]]
# A form checked against the incident as it is now, given the whole request.
StateCheck = Callable[[dict[str, Any]], Coroutine[Any, Any, dict[str, str]]]
EventWork = Callable[[Seen, dict[str, Any]], Awaitable[None]]


def replier(bot: Bot, body: dict[str, Any]) -> Replier:
    return Replier(bot.services.slack, body["user"]["id"], body.get("response_url"))


async def _through(
    bot: Bot, subject: Subject, body: dict[str, Any], reply: Replier, work: Work
) -> None:
    seen = await establish(bot, subject, body, reply.user)
    if seen is not None:
        await work(seen, body, reply)


def _register(
    bot: Bot,
    decorator: Callable[[Any], Any],
    listener: Callable[..., Awaitable[None]],
    subject: Subject,
    name: str,
    surface: str,
) -> None:
    listener.__name__ = listener.__qualname__ = re.sub(r"\W", "_", name)
    tracked = bot.inflight.track(_timed(bot, listener, surface))
    setattr(tracked, MARK, subject)
    decorator(tracked)


def _timed(
    bot: Bot, listener: Callable[..., Awaitable[None]], surface: str
) -> Callable[..., Awaitable[None]]:
    """The listener, its run observed as the acknowledgment latency of its surface: Bolt
    (`process_before_response`) answers Slack the moment a listener returns."""
    metrics = bot.services.metrics

    @functools.wraps(listener)
    async def timed(*args: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        try:
            await listener(*args, **kwargs)
        finally:
            metrics.ack(surface, time.perf_counter() - started)

    return timed


def on_command(bot: Bot, command: str, handle: Callable[[AsyncAck, dict[str, Any]], Any]) -> None:
    """The slash command: its table names the incident per subcommand (see `dispatch`)."""

    async def received(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle(ack, body)

    _register(bot, bot.app.command(command), received, COMMAND, f"command{command}", "command")


# --- the inbox: a click or a form Slack was told "received" is carried out, or its sender told

INTERACTION = "interaction"
NOT_STORED = (
    ":warning: Warroom cannot store requests right now (its database is not answering), so "
    "nothing was done. Send it again in a minute."
)
NOT_STORED_FORM = (
    "Warroom cannot store requests right now (its database is not answering), so nothing was "
    "done. Submit again in a minute."
)
FORM_NOT_OPENED = (
    ":warning: Warroom restarted before it could open the form, and Slack opens a form only "
    "within seconds of the click. Click the button (or send the command) again."
)

CarryOut = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Replayable:
    """A registered button, form or shortcut, found again by a recorded request's payload."""

    type: str  # the payload's type: "block_actions", "view_submission" or "shortcut"
    name: str | re.Pattern[str]
    carry_out: CarryOut

    def matches(self, body: dict[str, Any]) -> bool:
        kind = body.get("type")
        if kind == "block_actions":
            found = str(((body.get("actions") or [{}])[0]).get("action_id") or "")
        elif kind == "view_submission":
            found = str((body.get("view") or {}).get("callback_id") or "")
        elif kind in ("shortcut", "message_action"):
            kind, found = "shortcut", str(body.get("callback_id") or "")
        else:
            return False
        if kind != self.type:
            return False
        if isinstance(self.name, str):
            return found == self.name
        return self.name.match(found) is not None


def interaction_key(body: dict[str, Any]) -> str:
    """The request's identity: Slack sends the same one again on a retry."""
    kind = body.get("type")
    if kind == "view_submission":
        view = body.get("view") or {}
        if view.get("id"):
            return f"interaction:view:{view['id']}:{view.get('hash') or ''}"
    elif kind == "block_actions":
        action = (body.get("actions") or [{}])[0]
        stamp = action.get("action_ts") or body.get("trigger_id")
        if stamp:
            return f"interaction:action:{action.get('action_id')}:{stamp}"
    trigger = body.get("trigger_id") or uuid.uuid4().hex
    return f"interaction:{kind}:{trigger}"


def kept(body: dict[str, Any]) -> dict[str, Any]:
    """The request as it is stored until carried out: without Slack's legacy token."""
    return {k: v for k, v in body.items() if k != "token"}


async def _finish(bot: Bot, recorded: int, carry_out: CarryOut, body: dict[str, Any]) -> None:
    await carry_out(body)
    try:
        await bot.inbox.done(recorded)
    except Exception:
        log.exception("inbox request %s carried out but not forgotten", recorded)


async def run(reply: Replier, work: Callable[[], Awaitable[None]]) -> None:
    """`reply.run`, telling the person when a form could not be opened any more."""

    async def guarded() -> None:
        try:
            await work()
        except SlackError as exc:
            if exc.code not in TRIGGER_GONE:
                raise
            log.warning("a form could not be opened: %s", exc.code)
            await reply.say(FORM_NOT_OPENED)

    await reply.run(guarded)


TRIGGER_GONE = frozenset({"expired_trigger_id", "invalid_trigger_id", "exchanged_trigger_id"})


def _first_input(view: dict[str, Any]) -> str | None:
    for block in view.get("blocks") or []:
        if block.get("type") == "input" and block.get("block_id"):
            return str(block["block_id"])
    return None


async def carry_out(bot: Bot, body: dict[str, Any], given_up: bool) -> None:
    """A recorded click or form whose process died before carrying it out: through the same
    path (sight included) as when it arrived, or the sender told it was given up."""
    user = (body.get("user") or {}).get("id", "")
    if given_up:
        url = body.get("response_url") or views.read_metadata(body.get("view") or {}).get(
            "reply_url"
        )
        what = "form" if body.get("type") == "view_submission" else "click"
        await Replier(bot.services.slack, user, url).say(
            f":warning: A {what} of yours could not be carried out (Warroom restarted while "
            "doing it, more than once). Check the incident, then try again."
        )
        return
    for entry in bot.replayables:
        if entry.matches(body):
            log.warning("carrying out a %s acknowledged before a restart", body.get("type"))
            await entry.carry_out(body)
            return
    log.error("a recorded %s matches no listener; dropped", body.get("type"))


async def _record_then_ack(
    bot: Bot,
    ack: AsyncAck,
    body: dict[str, Any],
    carry_out: Callable[[dict[str, Any]], Awaitable[None]],
    refused: dict[str, Any] | None = None,
    opens_form: bool = False,
) -> None:
    """Record the interaction in the inbox, acknowledge, then carry it out after the
    acknowledgment (in its turn: `InFlight.later`). When it cannot be recorded: acknowledge
    with `refused` (a form error) if given, else say privately that nothing was done. A
    request already recorded (a retry) is being carried out: ack only."""
    try:
        recorded = await bot.inbox.record_before_ack(interaction_key(body), INTERACTION, kept(body))
    except NotRecorded:
        if refused:
            await ack(**refused)
        else:
            await ack()
            await replier(bot, body).say(NOT_STORED)
        return
    await ack()
    if recorded is not None:
        bot.inflight.later(lambda: _finish(bot, recorded, carry_out, body), opens_form)


def on_button(
    bot: Bot,
    action_id: str | re.Pattern[str],
    subject: Subject,
    work: Work,
    opens_form: bool = False,
) -> None:
    """A button: recorded, acknowledged at once; then sight, then the work, answered
    privately. When it cannot be recorded the person is told nothing was done. A button that
    `opens_form` has its work taken before other queued work (the trigger expires in 3 s)."""

    async def carry_out(body: dict[str, Any]) -> None:
        reply = replier(bot, body)
        await run(reply, lambda: _through(bot, subject, body, reply, work))

    async def clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await _record_then_ack(bot, ack, body, carry_out, opens_form=opens_form)

    name = action_id if isinstance(action_id, str) else action_id.pattern
    bot.replayables.append(Replayable("block_actions", action_id, carry_out))
    _register(bot, bot.app.action(action_id), clicked, subject, f"clicked_{name}", "action")


# How long a form's `current` check may take before the acknowledgment: with the inbox's
# record (`Inbox.record_within`) it stays within Slack's 3 seconds.
CURRENT_WITHIN = 0.5
_pending_checks: set[asyncio.Task[dict[str, str]]] = set()


async def _current_errors(check: StateCheck, body: dict[str, Any]) -> dict[str, str]:
    """`check`'s errors, or none when it fails or is late: it only spares the person a
    refusal the work itself makes anyway (under the incident's lock). A late check is left
    to finish rather than cancelled (cancelling a query that does not answer can hang); while
    one is still running the database is slow, so no other check is started: they would
    queue ahead of the inbox's record of the request."""
    if _pending_checks:
        return {}
    task = asyncio.create_task(check(body))
    finished, _ = await asyncio.wait({task}, timeout=CURRENT_WITHIN)
    if not finished:
        _pending_checks.add(task)
        task.add_done_callback(_forget_check)
        return {}
    try:
        return task.result()
    except Exception:
        log.warning("a form's state check failed; the work decides", exc_info=True)
        return {}


def _forget_check(task: asyncio.Task[dict[str, str]]) -> None:
    _pending_checks.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a late failure is not worth a log line


def on_submit(
    bot: Bot,
    callback_id: str,
    subject: Subject,
    work: Work,
    check: FieldCheck | None = None,
    current: StateCheck | None = None,
) -> None:
    """A form: field errors (`check`, no database) inside the form, then errors against
    the incident as it is now (`current`, one bounded read, best effort); then recorded and
    acknowledged (or, when it cannot be recorded, a form error saying nothing was done); then
    sight, then the work, answered through the form's reply URL or by DM."""

    async def carry_out(body: dict[str, Any]) -> None:
        meta = views.read_metadata(body["view"])
        reply = Replier(bot.services.slack, body["user"]["id"], meta.get("reply_url"))
        await run(reply, lambda: _through(bot, subject, body, reply, work))

    async def submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        errors = check(body["view"]) if check else {}
        if not errors and current is not None:
            errors = await _current_errors(current, body)
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        field = _first_input(body["view"])
        refused = {"response_action": "errors", "errors": {field: NOT_STORED_FORM}} if field else {}
        await _record_then_ack(bot, ack, body, carry_out, refused)

    bot.replayables.append(Replayable("view_submission", callback_id, carry_out))
    _register(
        bot, bot.app.view(callback_id), submitted, subject, f"submitted_{callback_id}", "view"
    )


def on_shortcut(bot: Bot, callback_id: str, work: Work) -> None:
    """A shortcut; it names no incident (the message it is used on is the person's own view).
    Recorded like a button."""

    async def carry_out(body: dict[str, Any]) -> None:
        reply = replier(bot, body)
        await run(reply, lambda: _through(bot, NOTHING, body, reply, work))

    async def used(ack: AsyncAck, body: dict[str, Any]) -> None:
        await _record_then_ack(bot, ack, body, carry_out, opens_form=True)

    bot.replayables.append(Replayable("shortcut", callback_id, carry_out))
    _register(
        bot, bot.app.shortcut(callback_id), used, NOTHING, f"shortcut_{callback_id}", "shortcut"
    )


def on_event(bot: Bot, event_type: str, subject: Subject, work: EventWork) -> None:
    """An Events API delivery: nobody to answer, so what the person may not see is dropped."""

    async def received(body: dict[str, Any], event: dict[str, Any]) -> None:
        # Bolt acknowledges the delivery when this returns; the work runs after, in its turn.
        bot.inflight.later(lambda: handle(body, event))

    async def handle(body: dict[str, Any], event: dict[str, Any]) -> None:
        # A retry of a delivery already handled stops here.
        event_id = body.get("event_id")
        if event_id and not await first_delivery(bot, str(event_id)):
            log.info("event %s delivered again; ignored", event_id)
            return
        try:
            seen = await establish(bot, subject, body, str(event.get("user") or ""))
        except ServiceError:
            log.info("%s: not seen by its user; ignored", event_type)
            return
        if seen is not None:
            await work(seen, event)

    _register(bot, bot.app.event(event_type), received, subject, f"event_{event_type}", "event")


def verify(app: AsyncApp) -> None:
    """Refuse a listener registered on the Bolt app around the gate (it would skip sight)."""
    for listener in getattr(app, "_async_listeners", []):
        function = listener.ack_function
        if not hasattr(function, MARK):
            name = getattr(function, "__name__", repr(function))
            raise RuntimeError(
                f"Listener {name} was registered without app.slack.listeners.gate; register "
                "it with on_button, on_submit, on_shortcut, on_event or on_command."
            )
