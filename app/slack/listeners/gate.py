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

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck

from app.domain.snapshot import IncidentSnapshot
from app.services.errors import ServiceError, no_item
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
) -> None:
    listener.__name__ = listener.__qualname__ = re.sub(r"\W", "_", name)
    tracked = bot.inflight.track(listener)
    setattr(tracked, MARK, subject)
    decorator(tracked)


def on_command(bot: Bot, command: str, handle: Callable[[AsyncAck, dict[str, Any]], Any]) -> None:
    """The slash command: its table names the incident per subcommand (see `dispatch`)."""

    async def received(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle(ack, body)

    _register(bot, bot.app.command(command), received, COMMAND, f"command{command}")


def on_button(bot: Bot, action_id: str | re.Pattern[str], subject: Subject, work: Work) -> None:
    """A button: acknowledged at once; then sight, then the work, answered privately."""

    async def clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        reply = replier(bot, body)
        await reply.run(lambda: _through(bot, subject, body, reply, work))

    name = action_id if isinstance(action_id, str) else action_id.pattern
    _register(bot, bot.app.action(action_id), clicked, subject, f"clicked_{name}")


def on_submit(
    bot: Bot, callback_id: str, subject: Subject, work: Work, check: FieldCheck | None = None
) -> None:
    """A form: field errors (`check`, no database) inside the form; then sight, then the work,
    answered through the form's reply URL or by DM."""

    async def submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        errors = check(body["view"]) if check else {}
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        meta = views.read_metadata(body["view"])
        reply = Replier(bot.services.slack, body["user"]["id"], meta.get("reply_url"))
        await reply.run(lambda: _through(bot, subject, body, reply, work))

    _register(bot, bot.app.view(callback_id), submitted, subject, f"submitted_{callback_id}")


def on_shortcut(bot: Bot, callback_id: str, work: Work) -> None:
    """A shortcut; it names no incident (the message it is used on is the person's own view)."""

    async def used(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        reply = replier(bot, body)
        await reply.run(lambda: _through(bot, NOTHING, body, reply, work))

    _register(bot, bot.app.shortcut(callback_id), used, NOTHING, f"shortcut_{callback_id}")


def on_event(bot: Bot, event_type: str, subject: Subject, work: EventWork) -> None:
    """An Events API delivery: nobody to answer, so what the person may not see is dropped."""

    async def received(body: dict[str, Any], event: dict[str, Any]) -> None:
        # Bolt acknowledged the delivery already; a retry of one already handled stops here.
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

    _register(bot, bot.app.event(event_type), received, subject, f"event_{event_type}")


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
