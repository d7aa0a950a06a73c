"""The sandbox: the fake Slack, the real bot and the people in between.

A person acts in the web page (types a command, clicks a button, submits a form, pins a
message); `Sandbox` turns each act into what Slack would do: it changes the fake workspace where
a person's act changes it (a message, a pin), issues the `response_url` and `trigger_id` Slack
would issue, and sends the bot the request Slack would send (signed over HTTP, or an envelope
over Socket Mode). What the bot does in return reaches the fake over the Web API, and the page
reads it back from there.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

from app.bootstrap import Runtime, build
from app.config import Settings
from app.fake_slack import FakeSlack
from app.fake_slack.state import Channel, Message, Workspace
from app.sandbox.people import Cast, cast_for, seed
from app.sandbox.requests import Answer, JsonDict, SlackRequests, SocketRequests
from app.server import Listener, listen, prepare
from app.services.clock import AcceleratedClock

log = logging.getLogger(__name__)

BOT_USER = "UWARROOM"
TEAM = "TSANDBOX"
# The shortest real interval between two engine ticks, however fast the clock runs.
MIN_TICK_SECONDS = 0.2
COMMAND = "/incident"
SAVE_AFTER_SECONDS = 1.0


class Refused(ValueError):
    """What a person asked cannot be done (a message in an archived channel, say); the text
    is shown to them."""


@dataclass
class Ephemeral:
    """A message only one person sees: an answer through a response_url, or an
    acknowledgment's text."""

    id: str
    ts: str
    user: str
    channel: str
    text: str
    blocks: list[JsonDict] | None = None
    thread_ts: str | None = None


@dataclass
class Origin:
    """Where a response_url was issued: who did what, in which conversation."""

    user: str
    channel: str
    thread_ts: str | None = None


@dataclass
class SubmitResult:
    ok: bool
    errors: dict[str, str] = field(default_factory=dict)
    error: str = ""


def scaled_policy_settings(settings: Settings, speed: float) -> Settings:
    """Leases and the repair grace are about processes, not incidents: they keep their real
    length however fast the sandbox's clock runs."""
    escalation = settings.policy.escalation
    scaled = escalation.model_copy(
        update={
            "lease_seconds": max(1, round(escalation.lease_seconds * speed)),
            "repair_after_seconds": round(escalation.repair_after_seconds * speed),
        }
    )
    return replace(settings, policy=settings.policy.model_copy(update={"escalation": scaled}))


class Sandbox:
    """The fake workspace, the bot serving it, and the acts of the people in it."""

    def __init__(
        self,
        settings: Settings,
        speed: float = 1.0,
        state_file: Path | None = None,
        socket_mode: bool = False,
    ) -> None:
        self.state_file = state_file
        # Deliver Slack's requests over Socket Mode (the manifest's default) instead of HTTP.
        self.socket_mode = socket_mode
        saved = _read_state(state_file)
        # Time never goes backwards across restarts, even after a run at a higher speed.
        start = max(time.time(), float(saved.get("clock") or 0))
        self.clock = AcceleratedClock(speed, start=datetime.fromtimestamp(start, UTC))
        self.cast: Cast = cast_for(settings.policy)
        self.fake = FakeSlack(
            bot_token=f"xoxb-sandbox-{secrets.token_hex(12)}",
            bot_user_id=BOT_USER,
            team_id=TEAM,
            bot_name="warroom",
            team_name="Warroom sandbox",
            clock=self.clock.epoch,
            app_token=f"xapp-sandbox-{secrets.token_hex(12)}",
        )
        self.signing_secret = secrets.token_hex(24)
        settings = replace(settings, policy=self.cast.policy)
        self.settings = scaled_policy_settings(settings, speed)
        self.runtime: Runtime | None = None
        self.listener: Listener | None = None
        self.socket_handler: AsyncSocketModeHandler | None = None
        self.requests: SlackRequests | None = None
        # trigger_id -> the person whose act issued it (the modals it opens are theirs)
        self.triggers: dict[str, str] = {}
        self.origins: dict[str, Origin] = {}
        self.ephemera: list[Ephemeral] = []
        self._responses_seen = 0
        self._save_timer: asyncio.TimerHandle | None = None
        self._writing: asyncio.Future[None] | None = None
        if saved:
            self._restore(saved)
            self._responses_seen = len(self.fake.responses)
        self._stop_watching: Callable[[], None] | None = self.fake.on_change(self._watch)
        seed(self.fake, self.cast, [self.settings.announce or "incidents", "general"])
        # Set once the bot answers: before, the page shows the workspace but acts wait.
        self.ready = False

    @property
    def workspace(self) -> Workspace:
        return self.fake.workspace

    @property
    def speed(self) -> float:
        return self.clock.speed

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Seed and start the fake, migrate the database, start the bot and its engine."""
        await self.fake.start("127.0.0.1", 0)
        self.settings = replace(
            self.settings,
            bot_token=self.fake.bot_token,
            signing_secret="" if self.socket_mode else self.signing_secret,
            app_token=self.fake.app_token if self.socket_mode else "",
            api_url=self.fake.api_url,
            # The sandbox's Slack enforces no rate limits: pacing would only slow people down.
            slack_pacing=0.0,
        )
        self.runtime = build(self.settings, clock=self.clock)
        await prepare(self.runtime)
        if self.socket_mode:
            # As `warroom serve` connects: the app token opens a WebSocket to the fake.
            self.socket_handler = AsyncSocketModeHandler(self.runtime.app, self.settings.app_token)
            await self.socket_handler.connect_async()
            await self.fake.sockets.wait_connected(10)
            self.requests = SocketRequests(self.fake, TEAM, self.workspace.app_id)
        else:
            self.listener = await listen(self.runtime, "127.0.0.1", 0)
            self.requests = SlackRequests(
                f"http://127.0.0.1:{self.listener.port}/slack/events",
                self.signing_secret,
                TEAM,
                self.workspace.app_id,
            )
        await self.runtime.engine.tick()
        tick = self.settings.policy.escalation.tick_seconds
        self.runtime.engine.start(interval=max(MIN_TICK_SECONDS, tick / self.speed))
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        if self._stop_watching is not None:
            self._stop_watching()
        if self._save_timer is not None:
            self._save_timer.cancel()
        if self._writing is not None:
            await self._writing
        if self.state_file is not None:
            await asyncio.to_thread(_write_atomically, self.state_file, self._state_text())
        if self.socket_handler is not None:
            await self.socket_handler.close_async()
        if self.listener is not None:
            await self.listener.close()
        if self.runtime is not None:
            await self.runtime.close(grace=5)
        if self.requests is not None:
            await self.requests.close()
        await self.fake.stop()

    def _requests(self) -> SlackRequests:
        if self.requests is None:
            raise RuntimeError("the sandbox is not started")
        return self.requests

    # --- what the fake hears back -------------------------------------------------------

    # --- keeping the workspace across runs -------------------------------------------

    def _restore(self, saved: JsonDict) -> None:
        try:
            self.fake.restore(saved["workspace"])
            self.ephemera = [Ephemeral(**e) for e in saved.get("ephemera") or []]
        except (KeyError, TypeError, ValueError) as exc:
            log.warning("sandbox: %s not restored (%s); starting afresh", self.state_file, exc)
            self.fake.reset()
            self.ephemera = []

    def _state_text(self) -> str:
        state = {
            "clock": self.clock.epoch(),
            "workspace": self.fake.snapshot(),
            "ephemera": [asdict(e) for e in self.ephemera],
        }
        return json.dumps(state, separators=(",", ":"))

    def _save_soon(self) -> None:
        """Write the workspace a second after a change (once for a burst of changes)."""
        if self.state_file is None or self._save_timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._save_timer = loop.call_later(SAVE_AFTER_SECONDS, self._save)

    def _save(self) -> None:
        self._save_timer = None
        if self._writing is not None and not self._writing.done():
            self._save_soon()  # the previous write is still going: this one comes after
            return
        assert self.state_file is not None
        text = self._state_text()
        self._writing = asyncio.ensure_future(
            asyncio.to_thread(_write_atomically, self.state_file, text)
        )

    def _watch(self, _version: int) -> None:
        """Posts to response_urls become messages only their person sees; every change is
        saved."""
        self._save_soon()
        responses = self.fake.responses
        fresh, self._responses_seen = responses[self._responses_seen :], len(responses)
        for response_id, body in fresh:
            origin = self.origins.get(response_id)
            if origin is None:
                continue
            if body.get("response_type") == "in_channel":
                self.fake.add_message(
                    origin.channel,
                    BOT_USER,
                    str(body.get("text") or ""),
                    thread_ts=origin.thread_ts,
                    blocks=body.get("blocks"),
                )
                continue
            self._ephemeral(origin, str(body.get("text") or ""), body.get("blocks"))

    def _ephemeral(self, origin: Origin, text: str, blocks: list[JsonDict] | None) -> None:
        ts = self.workspace.next_ts()
        self.ephemera.append(
            Ephemeral(
                id=f"E{ts}",
                ts=ts,
                user=origin.user,
                channel=origin.channel,
                text=text,
                blocks=blocks if isinstance(blocks, list) else None,
                thread_ts=origin.thread_ts,
            )
        )

    def _issue(self, user: str, channel: str, view_id: str | None = None) -> tuple[str, str]:
        """A response_url and a trigger_id for a person's act, as Slack issues them."""
        url = self.fake.new_response_url()
        self.origins[url.rsplit("/", 1)[1]] = Origin(user, channel)
        trigger = self.fake.new_trigger_id(view_id)
        self.triggers[trigger] = user
        return url, trigger

    # --- who and where ------------------------------------------------------------------

    def person(self, user: str) -> JsonDict:
        found = self.workspace.users.get(user)
        if found is None or found.is_bot or found.deleted:
            raise Refused("Pick who you are first.")
        return {"id": found.id, "username": found.name, "name": found.name, "team_id": TEAM}

    def can_see(self, user: str, channel: Channel) -> bool:
        if channel.is_im:
            return channel.im_user == user
        if channel.is_private or channel.is_mpim:
            return channel.has_member(user)
        return True

    def conversation(self, user: str, channel_id: str) -> Channel:
        channel = self.workspace.channels.get(channel_id)
        if channel is None or not self.can_see(user, channel):
            raise Refused("That conversation does not exist.")
        return channel

    def channel_name(self, channel: Channel) -> str:
        return "directmessage" if channel.is_im else channel.name

    # --- acts ---------------------------------------------------------------------------

    async def command(self, user: str, channel_id: str, typed: str) -> Answer:
        """`/incident …` typed in a conversation: sent as Slack sends a slash command."""
        who = self.person(user)
        channel = self.conversation(user, channel_id)
        name, _, rest = typed.strip().partition(" ")
        if name != COMMAND:
            raise Refused(f"{name or typed} is not a command here: only {COMMAND} is installed.")
        url, trigger = self._issue(user, channel.id)
        answer = await self._requests().command(
            text=to_slack_text(rest.strip(), self.workspace),
            user=user,
            user_name=who["name"],
            channel=channel.id,
            channel_name=self.channel_name(channel),
            response_url=url,
            trigger_id=trigger,
        )
        self._acknowledged(answer, Origin(user, channel.id))
        return answer

    def _acknowledged(self, answer: Answer, origin: Origin) -> None:
        """An acknowledgment with a body is shown to the person, as Slack shows it."""
        if answer.status != 200:
            self._ephemeral(origin, f"Warroom answered HTTP {answer.status}.", None)
        elif answer.body.get("text") or answer.body.get("blocks"):
            blocks = answer.body.get("blocks")
            self._ephemeral(origin, str(answer.body.get("text") or ""), blocks)
        else:
            return
        self.fake.changed()

    def say(self, user: str, channel_id: str, typed: str, thread_ts: str | None = None) -> str:
        """A plain message (or a thread reply); returns its ts."""
        self.person(user)
        channel = self.conversation(user, channel_id)
        if channel.is_archived:
            raise Refused("This channel has been archived.")
        if channel.is_im:
            raise Refused("Sending messages to this app has been turned off.")
        if not typed.strip():
            raise Refused("Type something first.")
        if thread_ts is not None:
            parent = self.workspace.find_message(channel.id, thread_ts)
            if parent is None or parent.is_reply:
                raise Refused("That thread is gone.")
        self.fake.join(channel.id, user)
        text = to_slack_text(typed, self.workspace)
        return self.fake.add_message(channel.id, user, text, thread_ts=thread_ts).ts

    def _message(self, user: str, channel_id: str, ts: str) -> tuple[Channel, Message]:
        channel = self.conversation(user, channel_id)
        message = self.workspace.find_message(channel.id, ts)
        if message is None:
            raise Refused("That message is gone.")
        return channel, message

    async def pin(self, user: str, channel_id: str, ts: str) -> None:
        """Pin a message; the bot hears `pin_added` when it is in the channel."""
        self.person(user)
        channel, message = self._message(user, channel_id, ts)
        if channel.is_archived:
            raise Refused("This channel has been archived.")
        try:
            self.fake.add_pin(channel.id, message.ts, user)
        except ValueError:
            raise Refused("That message is already pinned.") from None
        if channel.has_member(BOT_USER):
            event = {
                "type": "pin_added",
                "user": user,
                "channel_id": channel.id,
                "item": {
                    "type": "message",
                    "channel": channel.id,
                    "created": int(self.clock.epoch()),
                    "created_by": user,
                    "message": self.workspace.message_api(message),
                },
                "event_ts": self.workspace.next_ts(),
            }
            await self._event(event)

    async def react(self, user: str, channel_id: str, ts: str, name: str) -> None:
        """React to a message; the bot hears `reaction_added` when it is in the channel."""
        self.person(user)
        channel, message = self._message(user, channel_id, ts)
        name = name.strip(":")
        if not re.fullmatch(r"[a-z0-9_+-]{1,64}", name):
            raise Refused("That is not an emoji name.")
        try:
            self.fake.add_reaction(channel.id, message.ts, user, name)
        except ValueError:
            raise Refused("You already reacted with that.") from None
        if channel.has_member(BOT_USER):
            event = {
                "type": "reaction_added",
                "user": user,
                "reaction": name,
                "item_user": message.user,
                "item": {"type": "message", "channel": channel.id, "ts": message.ts},
                "event_ts": self.workspace.next_ts(),
            }
            await self._event(event)

    async def open_home(self, user: str) -> None:
        """The person opens the app's Home tab: `app_home_opened`."""
        self.person(user)
        im = self.workspace.open_im(user)
        event: JsonDict = {
            "type": "app_home_opened",
            "user": user,
            "channel": im.id,
            "tab": "home",
            "event_ts": self.workspace.next_ts(),
        }
        if user in self.workspace.home_views:
            event["view"] = self.workspace.home_views[user]
        await self._event(event)

    async def _event(self, event: JsonDict) -> None:
        answer = await self._requests().event(event, int(self.clock.epoch()))
        if answer.status != 200:
            log.warning("the bot answered %s to a %s event", answer.status, event["type"])

    async def click(
        self, user: str, where: JsonDict, block_id: str, action_id: str, **chosen: Any
    ) -> None:
        """A click on a button (or a choice in a select) in a message, an ephemeral message,
        the Home tab or a modal: `block_actions`, with the element as the bot sent it."""
        who = self.person(user)
        kind = where.get("kind")
        payload: JsonDict = {"type": "block_actions", "user": who, "state": {"values": {}}}
        if kind == "message":
            channel, message = self._message(user, str(where.get("channel")), str(where.get("ts")))
            blocks = message.blocks or []
            url, trigger = self._issue(user, channel.id)
            payload.update(
                container={
                    "type": "message",
                    "message_ts": message.ts,
                    "channel_id": channel.id,
                    "is_ephemeral": False,
                },
                channel={"id": channel.id, "name": self.channel_name(channel)},
                message=self.workspace.message_api(message),
                response_url=url,
            )
            if message.is_reply:
                self.origins[url.rsplit("/", 1)[1]].thread_ts = message.thread_ts
        elif kind == "ephemeral":
            shown = self._ephemeral_for(user, str(where.get("id")))
            channel = self.conversation(user, shown.channel)
            blocks = shown.blocks or []
            url, trigger = self._issue(user, channel.id)
            payload.update(
                container={
                    "type": "message",
                    "message_ts": shown.ts,
                    "channel_id": channel.id,
                    "is_ephemeral": True,
                },
                channel={"id": channel.id, "name": self.channel_name(channel)},
                response_url=url,
            )
        elif kind == "view":
            view = self._view_for(user, str(where.get("view_id")))
            blocks = view.get("blocks") or []
            trigger = self.fake.new_trigger_id(view["id"] if view["type"] == "modal" else None)
            self.triggers[trigger] = user
            payload.update(container={"type": "view", "view_id": view["id"]}, view=view)
        else:
            raise Refused("Nothing to click there.")
        element = find_element(blocks, block_id, action_id)
        if element is None:
            raise Refused("That button is gone.")
        payload["trigger_id"] = trigger
        payload["actions"] = [self._action(element, block_id, chosen)]
        answer = await self._requests().interaction(payload)
        if answer.status != 200:
            origin = Origin(user, str(payload.get("channel", {}).get("id") or ""))
            if origin.channel:
                self._acknowledged(answer, origin)

    def _action(self, element: JsonDict, block_id: str, chosen: dict[str, Any]) -> JsonDict:
        action: JsonDict = {
            "type": element["type"],
            "action_id": element["action_id"],
            "block_id": block_id,
            "action_ts": f"{time.time():.6f}",
        }
        if element["type"] == "button":
            action["text"] = element.get("text")
            for key in ("value", "style", "url"):
                if key in element:
                    action[key] = element[key]
            return action
        entry = state_entry(element, chosen.get("value"), self.workspace)
        entry.pop("type", None)
        action.update(entry)
        return action

    def _ephemeral_for(self, user: str, ephemeral_id: str) -> Ephemeral:
        for shown in self.ephemera_for(user):
            if shown.id == ephemeral_id:
                return shown
        raise Refused("That message is gone.")

    def _view_for(self, user: str, view_id: str) -> JsonDict:
        view = self.workspace.views.get(view_id)
        if view is None:
            raise Refused("That form is closed.")
        if view["type"] == "home":
            if self.workspace.home_views.get(user, {}).get("id") != view_id:
                raise Refused("That is someone else's Home.")
            return view
        if self.modal_owner(view_id) != user or self.workspace.open_stack(view_id) is None:
            raise Refused("That form is closed.")
        return view

    def modal_owner(self, view_id: str) -> str | None:
        stack = self.workspace.open_stack(view_id)
        if not stack:
            return None
        trigger = self.workspace.view_triggers.get(stack[0])
        return self.triggers.get(trigger or "")

    async def submit(self, user: str, view_id: str, values: dict[str, Any]) -> SubmitResult:
        """The person submits a modal: required fields are checked as Slack checks them, then
        `view_submission` goes to the bot; its `response_action` decides what the form does."""
        who = self.person(user)
        view = self._view_for(user, view_id)
        if view["type"] != "modal":
            raise Refused("Only forms can be submitted.")
        state, errors = form_state(view, values, self.workspace)
        if errors:
            return SubmitResult(ok=False, errors=errors)
        trigger = self.fake.new_trigger_id(view_id)
        self.triggers[trigger] = user
        payload = {
            "type": "view_submission",
            "user": who,
            "trigger_id": trigger,
            "view": {**view, "state": {"values": state}},
            "response_urls": [],
        }
        answer = await self._requests().interaction(payload)
        if answer.status != 200:
            return SubmitResult(ok=False, error=f"Warroom answered HTTP {answer.status}.")
        action = answer.body.get("response_action")
        if action == "errors":
            raw = answer.body.get("errors") or {}
            return SubmitResult(ok=False, errors={str(k): str(v) for k, v in raw.items()})
        if action == "update" and isinstance(answer.body.get("view"), dict):
            self._replace_view(view_id, answer.body["view"])
            return SubmitResult(ok=True)
        stack = self.workspace.open_stack(view_id) or [view_id]
        self.fake.close_view(stack[0] if action == "clear" else view_id)
        return SubmitResult(ok=True)

    def _replace_view(self, view_id: str, spec: JsonDict) -> None:
        view = self.workspace.views[view_id]
        for key in ("title", "submit", "close", "blocks", "private_metadata", "callback_id"):
            if key in spec:
                view[key] = spec[key]
        view["hash"] = f"{time.time():.6f}.sandbox"
        self.fake.changed()

    async def close_modal(self, user: str, view_id: str) -> None:
        """The person cancels a modal (Slack tells the bot only with notify_on_close)."""
        who = self.person(user)
        view = self._view_for(user, view_id)
        stack = self.workspace.open_stack(view_id) or [view_id]
        self.fake.close_view(view_id)
        if view.get("notify_on_close"):
            payload = {
                "type": "view_closed",
                "user": who,
                "view": view,
                "is_cleared": view_id == stack[0],
            }
            await self._requests().interaction(payload)

    # --- reading ------------------------------------------------------------------------

    def ephemera_for(self, user: str, channel: str | None = None) -> list[Ephemeral]:
        shown = [
            Ephemeral(
                id=f"P{e.message_ts}",
                ts=e.message_ts,
                user=e.user,
                channel=e.channel,
                text=e.text,
                blocks=e.blocks,
                thread_ts=e.thread_ts,
            )
            for e in self.workspace.ephemeral
            if e.user == user
        ]
        shown += [e for e in self.ephemera if e.user == user]
        return [e for e in shown if channel is None or e.channel == channel]

    def modal_for(self, user: str) -> JsonDict | None:
        """The top view of the person's open modal, if any."""
        for stack in reversed(self.workspace.view_stacks):
            if stack and self.modal_owner(stack[0]) == user:
                view = self.workspace.views.get(stack[-1])
                if view is not None:
                    return {**view, "depth": len(stack)}
        return None


def _read_state(path: Path | None) -> JsonDict:
    """What an earlier run saved ({} when nothing was, or it cannot be read)."""
    if path is None or not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("sandbox: %s cannot be read (%s); starting afresh", path, exc)
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def find_element(blocks: list[JsonDict], block_id: str, action_id: str) -> JsonDict | None:
    """The interactive element with this action_id in the block with this block_id (an
    actions block's element, or a section's accessory)."""
    for block in blocks:
        if str(block.get("block_id") or "") != block_id and block.get("block_id") is not None:
            continue
        candidates = list(block.get("elements") or [])
        if isinstance(block.get("accessory"), dict):
            candidates.append(block["accessory"])
        for element in candidates:
            if isinstance(element, dict) and element.get("action_id") == action_id:
                return element
    return None


_PLAIN_INPUTS = {"plain_text_input", "email_text_input", "url_text_input", "number_input"}


def _options(element: JsonDict) -> list[JsonDict]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _listed(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    return [str(v) for v in (value if isinstance(value, list) else [value])]


def initial_of(element: JsonDict) -> Any:
    """What an element holds before anyone touches it (its `initial_*` field), as a value
    `state_entry` reads."""
    if "initial_option" in element:
        option = element["initial_option"]
        return option.get("value") if isinstance(option, dict) else None
    if "initial_options" in element:
        return [o.get("value") for o in element["initial_options"] if isinstance(o, dict)]
    for key in (
        "initial_value",
        "initial_user",
        "initial_users",
        "initial_conversation",
        "initial_conversations",
        "initial_channel",
        "initial_channels",
        "initial_date",
        "initial_time",
        "initial_date_time",
    ):
        if key in element:
            return element[key]
    return None


def state_entry(element: JsonDict, value: Any, ws: Workspace) -> JsonDict:
    """Slack's `state.values` entry for an element given what the person chose; anything not
    offered (an unknown option, user or channel) counts as nothing chosen."""
    kind = str(element.get("type"))
    entry: JsonDict = {"type": kind}
    chosen = _listed(value)
    options = {str(o.get("value")): o for o in _options(element)}
    people = [v for v in chosen if v in ws.users and not ws.users[v].is_bot]
    rooms = [v for v in chosen if v in ws.channels]
    if kind in _PLAIN_INPUTS:
        entry["value"] = str(value) if value not in (None, "") else None
    elif kind in {"static_select", "external_select", "radio_buttons"}:
        entry["selected_option"] = options.get(chosen[0]) if chosen else None
    elif kind in {"multi_static_select", "multi_external_select", "checkboxes"}:
        entry["selected_options"] = [options[v] for v in chosen if v in options]
    elif kind == "users_select":
        entry["selected_user"] = people[0] if people else None
    elif kind == "multi_users_select":
        entry["selected_users"] = people
    elif kind == "conversations_select":
        entry["selected_conversation"] = rooms[0] if rooms else None
    elif kind == "multi_conversations_select":
        entry["selected_conversations"] = rooms
    elif kind == "channels_select":
        entry["selected_channel"] = rooms[0] if rooms else None
    elif kind == "multi_channels_select":
        entry["selected_channels"] = rooms
    elif kind == "datepicker":
        entry["selected_date"] = _matching(r"\d{4}-\d{2}-\d{2}", value)
    elif kind == "timepicker":
        entry["selected_time"] = _matching(r"\d{2}:\d{2}", value)
    elif kind == "datetimepicker":
        stamp = _matching(r"\d{1,12}", value)
        entry["selected_date_time"] = int(stamp) if stamp else None
    else:
        entry["value"] = None if value is None else str(value)
    return entry


def _matching(pattern: str, value: Any) -> str | None:
    text = "" if value is None else str(value)
    return text if re.fullmatch(pattern, text) else None


def _chosen(entry: JsonDict) -> bool:
    return any(v not in (None, "", []) for k, v in entry.items() if k != "type")


REQUIRED = "This field is required."


def form_state(
    view: JsonDict, values: dict[str, Any], ws: Workspace
) -> tuple[JsonDict, dict[str, str]]:
    """The `state.values` of a submitted modal, and Slack's own errors (a required field left
    empty, text longer or shorter than the element allows) keyed by block_id."""
    state: JsonDict = {}
    errors: dict[str, str] = {}
    for block in view.get("blocks") or []:
        if block.get("type") != "input" or not isinstance(block.get("element"), dict):
            continue
        element = block["element"]
        block_id = str(block.get("block_id") or "")
        # As in Slack, an input the person left alone submits its initial value.
        given = values[block_id] if block_id in values else initial_of(element)
        entry = state_entry(element, given, ws)
        state[block_id] = {str(element.get("action_id") or ""): entry}
        if not _chosen(entry):
            if not block.get("optional"):
                errors[block_id] = REQUIRED
            continue
        text = entry.get("value")
        if isinstance(text, str):
            longest = element.get("max_length")
            shortest = element.get("min_length")
            if isinstance(longest, int) and len(text) > longest:
                errors[block_id] = f"Use {longest} characters or fewer."
            elif isinstance(shortest, int) and len(text) < shortest:
                errors[block_id] = f"Use at least {shortest} characters."
    return state, errors


_USER_REF = re.compile(r"(?<![\w@/.&])@([A-Za-z0-9](?:[\w.-]*[A-Za-z0-9_])?)")
_CHANNEL_REF = re.compile(r"(?<![\w&#/])#([a-z0-9](?:[a-z0-9_-]*[a-z0-9_])?)")


def to_slack_text(typed: str, ws: Workspace) -> str:
    """What Slack sends for typed text: `&`, `<` and `>` escaped, and (the command's
    `should_escape`) `@name` and `#channel` of people and channels that exist turned into
    `<@U…|name>`, `<!subteam^S…|@handle>` and `<#C…|name>`."""
    text = typed.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    by_name = {u.name.lower(): u for u in ws.users.values() if not u.deleted}
    groups = {g.handle.lower(): g for g in ws.usergroups.values()}

    def person(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.lower() in by_name:
            found = by_name[name.lower()]
            return f"<@{found.id}|{found.name}>"
        if name.lower() in groups:
            group = groups[name.lower()]
            return f"<!subteam^{group.id}|@{group.handle}>"
        return match.group(0)

    def channel(match: re.Match[str]) -> str:
        found = ws.channel_named(match.group(1))
        if found is None or found.is_im or found.is_private:
            return match.group(0)
        return f"<#{found.id}|{found.name}>"

    return _CHANNEL_REF.sub(channel, _USER_REF.sub(person, text))
