"""The fake Slack Web API server (`FakeSlack`), served over real HTTP with aiohttp.

The bot under test talks to it through an unmodified slack_sdk client pointed at
`fake.api_url`, so serialisation, retries and error handling are exercised for real;
tests then read the workspace state and the call log straight from the Python object.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from . import control, snapshot, socket_mode
from .args import ApiError, Args
from .faults import DEFAULT_SLOW_SECONDS, Fault, FaultPlan, Hold, http_fault
from .http_io import BadRequestBody, bearer_token, json_response, read_args, read_upload
from .methods import HANDLERS
from .ratelimit import RateLimiter
from .socket_mode import SocketHub
from .state import (
    Call,
    Channel,
    EphemeralMessage,
    JsonDict,
    Message,
    Pin,
    StoredFile,
    User,
    UserGroup,
    Workspace,
)

logger = logging.getLogger(__name__)

RESPONSE_URL_MAX_USES = 5
MAX_BODY_BYTES = 64 * 1024 * 1024
# Methods that only read: calling them changes nothing a watcher of the workspace would see.
READ_ONLY = frozenset(
    {
        "auth.test",
        "users.info",
        "users.list",
        "users.lookupByEmail",
        "usergroups.list",
        "usergroups.users.list",
        "conversations.info",
        "conversations.list",
        "conversations.members",
        "conversations.history",
        "conversations.replies",
        "chat.getPermalink",
        "pins.list",
        "bookmarks.list",
        "apps.connections.open",
    }
)

Outcome = tuple[int, JsonDict, dict[str, str]]


class FakeSlack:
    """A stateful, fault-injectable fake of the Slack Web API on a local port."""

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        bot_user_id: str = "UBOT",
        team_id: str = "T1",
        *,
        bot_name: str = "warroom",
        team_name: str = "Fake Workspace",
        seed: int | None = None,
        clock: Callable[[], float] | None = None,
        app_token: str = "xapp-test",
    ) -> None:
        self.bot_token = bot_token
        # The app-level token: apps.connections.open (Socket Mode) takes only this one.
        self.app_token = app_token
        self.workspace = Workspace(
            team_id=team_id,
            team_name=team_name,
            bot_user_id=bot_user_id,
            bot_name=bot_name,
            seed=seed,
            now=clock or time.time,
        )
        self.faults = FaultPlan()
        self.rate_limiter: RateLimiter | None = None
        self._calls: list[Call] = []
        self._responses: list[tuple[str, JsonDict]] = []
        self._response_urls: dict[str, int] = {}
        self._ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self._base_url = ""
        # Called with each Web API call before it is applied; True drops it unapplied.
        self.before_call: Callable[[Call], bool] | None = None
        self.sockets = SocketHub(self.workspace.app_id)
        # Bumped whenever the workspace may look different (see `on_change`).
        self.version = 0
        self._watchers: list[Callable[[int], None]] = []

    # lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port) and return the API URL."""
        if self._runner is not None:
            raise RuntimeError("FakeSlack is already started")
        runner = web.AppRunner(self._build_app(), access_log=None, shutdown_timeout=0.5)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._base_url = f"http://{bound_host}:{bound_port}"
        self.workspace.base_url = self._base_url
        return self.api_url

    async def stop(self) -> None:
        """Stop serving; pending slow calls are cut off, held ones released."""
        self.faults.release()
        await self.sockets.close()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/response/{response_id}", self._handle_response_url)
        app.router.add_post("/upload/{file_id}", self._handle_upload)
        app.router.add_get("/files/{file_id}/{name}", self._handle_download)
        app.router.add_get("/link/", self.sockets.handle)
        control.add_routes(app, self)
        return app

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`, once started."""
        if not self._base_url:
            raise RuntimeError("FakeSlack is not started")
        return self._base_url

    @property
    def api_url(self) -> str:
        """The base URL for slack_sdk; the trailing slash matters to urljoin."""
        return f"{self.base_url}/api/"

    # seeding --------------------------------------------------------------------------

    def add_user(
        self,
        user_id: str,
        name: str,
        real_name: str = "",
        tz: str = "UTC",
        *,
        display_name: str = "",
        email: str | None = None,
        is_bot: bool = False,
    ) -> JsonDict:
        """Add a workspace member; returns the users.info-shaped user."""
        user = User(
            id=user_id,
            name=name,
            real_name=real_name or name,
            display_name=display_name or name,
            tz=tz,
            is_bot=is_bot,
            email=email,
        )
        self.workspace.add_user(user)
        self.changed()
        return user.to_api(self.workspace.team_id)

    def add_usergroup(
        self, group_id: str, handle: str, users: Iterable[str] = (), name: str = ""
    ) -> JsonDict:
        """Add a user group (e.g. the on-call rota the bot pages)."""
        group = UserGroup(id=group_id, handle=handle, name=name or handle, users=list(users))
        self.workspace.add_usergroup(group)
        self.changed()
        return group.to_api(self.workspace.team_id, True)

    def add_channel(
        self,
        name: str,
        is_private: bool = False,
        members: Iterable[str] = (),
        bot_member: bool = False,
        *,
        topic: str = "",
        is_archived: bool = False,
    ) -> str:
        """Add an existing channel (not created by the bot); returns its id."""
        ws = self.workspace
        if ws.channel_named(name) is not None:
            raise ValueError(f"channel name already taken: {name}")
        people = list(dict.fromkeys(members))
        if bot_member and ws.bot_user_id not in people:
            people.append(ws.bot_user_id)
        channel = Channel(
            id=ws.new_id("C"),
            name=name,
            created=int(ws.now()),
            creator=people[0] if people else ws.bot_user_id,
            is_private=is_private,
            is_archived=is_archived,
            members=people,
            topic=topic,
        )
        ws.add_channel(channel)
        self.changed()
        return channel.id

    def add_message(
        self,
        channel_id: str,
        user: str,
        text: str,
        *,
        thread_ts: str | None = None,
        blocks: list[JsonDict] | None = None,
    ) -> Message:
        """Add a message written by someone (not through the API), e.g. a human's report."""
        ws = self.workspace
        if channel_id not in ws.channels:
            raise KeyError(channel_id)
        message = Message(
            ts=ws.next_ts(),
            channel=channel_id,
            user=user,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
        )
        ws.add_message(message)
        self.changed()
        return message

    def add_pin(self, channel_id: str, ts: str, user: str) -> Message:
        """Someone pins a message (as a person would in Slack; the bot uses pins.add).

        Raises KeyError for an unknown channel or message, ValueError when already pinned."""
        ws = self.workspace
        message = ws.find_message(channel_id, ts)
        if message is None:
            raise KeyError(f"{channel_id}/{ts}")
        if any(pin.ts == ts for pin in ws.pins[channel_id]):
            raise ValueError("already_pinned")
        ws.pins[channel_id].append(Pin(ts, int(ws.now()), user))
        self.changed()
        return message

    def add_reaction(self, channel_id: str, ts: str, user: str, name: str) -> Message:
        """Someone reacts to a message with :name: (once per person and name)."""
        message = self.workspace.find_message(channel_id, ts)
        if message is None:
            raise KeyError(f"{channel_id}/{ts}")
        users = message.reactions.setdefault(name.strip(":"), [])
        if user in users:
            raise ValueError("already_reacted")
        users.append(user)
        self.changed()
        return message

    def join(self, channel_id: str, user: str) -> Channel:
        """Someone joins a public channel (or is already in it)."""
        channel = self.workspace.channels[channel_id]
        if not channel.has_member(user):
            channel.members.append(user)
            self.changed()
        return channel

    def close_view(self, view_id: str) -> list[str]:
        """Someone closed a modal: it and the views pushed above it are gone."""
        closed = self.workspace.close_view(view_id)
        if closed:
            self.changed()
        return closed

    def delete_message(self, channel_id: str, ts: str) -> None:
        """A person deletes a message: it leaves the history and the pins (KeyError when
        unknown); replies to it stay where they were, as in Slack."""
        ws = self.workspace
        message = ws.index.pop((channel_id, ts))
        ws.history[channel_id].remove(message)
        if message.is_reply and message.thread_ts:
            ws.threads.get((channel_id, message.thread_ts), []).remove(message)
        ws.pins[channel_id] = [pin for pin in ws.pins[channel_id] if pin.ts != ts]

    def new_response_url(self) -> str:
        """A response_url on this server; posts to it land in `responses`."""
        response_id = f"R{next(self._ids):06d}"
        self._response_urls[response_id] = 0
        return f"{self.base_url}/response/{response_id}"

    def new_trigger_id(self, view_id: str | None = None) -> str:
        """A fresh trigger id; `view_id` says which modal stack views.push will extend."""
        trigger = f"{next(self._ids)}.{int(self.workspace.now())}.fake{next(self._ids):08x}"
        if view_id is not None:
            self.workspace.trigger_views[trigger] = view_id
        return trigger

    # Socket Mode ----------------------------------------------------------------------

    async def send_envelope(
        self, kind: str, payload: JsonDict, timeout: float = socket_mode.ACK_TIMEOUT
    ) -> JsonDict:
        """Send the connected app a Socket Mode envelope (`slash_commands`, `interactive`,
        `events_api`); returns its acknowledgment's payload ({} when it had none). Raises
        NotConnected, or TimeoutError without an acknowledgment in time."""
        return await self.sockets.send(kind, payload, timeout)

    # watching -------------------------------------------------------------------------

    def on_change(self, watcher: Callable[[int], None]) -> Callable[[], None]:
        """Call `watcher(version)` whenever the workspace may have changed: a Web API call
        that writes, a post to a response_url, an upload, seeding. Returns the way to stop."""
        self._watchers.append(watcher)
        return lambda: self._watchers.remove(watcher) if watcher in self._watchers else None

    def changed(self) -> None:
        """Tell the watchers that something changed."""
        self.version += 1
        for watcher in list(self._watchers):
            try:
                watcher(self.version)
            except Exception:  # a watcher's bug must not fail the call that changed things
                logger.exception("fake Slack change watcher failed")

    # inspection -----------------------------------------------------------------------

    def channel(self, channel_id: str) -> Channel:
        """A conversation by id (KeyError when unknown)."""
        return self.workspace.channels[channel_id]

    def channel_by_name(self, name: str) -> Channel | None:
        """A channel by name, archived ones included."""
        return self.workspace.channel_named(name.removeprefix("#"))

    def messages(self, channel_id: str) -> list[Message]:
        """Messages shown in the channel (top level and broadcast replies), oldest first."""
        return self.workspace.channel_messages(channel_id)

    def replies(self, channel_id: str, thread_ts: str) -> list[Message]:
        """Replies in a thread, oldest first, without the parent."""
        return self.workspace.thread_replies(channel_id, thread_ts)

    def bookmarks(self, channel_id: str) -> list[JsonDict]:
        """The channel's bookmarks (bookmarks.add), in the order they were added."""
        return [dict(b) for b in self.workspace.bookmarks.get(channel_id, [])]

    def pins(self, channel_id: str) -> list[str]:
        """Timestamps of pinned messages, in pin order."""
        return [pin.ts for pin in self.workspace.pins[channel_id]]

    @property
    def calls(self) -> list[Call]:
        """Every Web API call, in arrival order, including failed and faulted ones."""
        return self._calls

    def calls_to(self, method: str) -> list[Call]:
        """Calls of one method."""
        return [call for call in self._calls if call.method == method]

    @property
    def ephemeral(self) -> list[EphemeralMessage]:
        """Messages sent with chat.postEphemeral."""
        return self.workspace.ephemeral

    @property
    def responses(self) -> list[tuple[str, JsonDict]]:
        """(response id, JSON body) for each post to a response_url."""
        return self._responses

    @property
    def views(self) -> dict[str, JsonDict]:
        """Every view opened, pushed, updated or published, by view id (latest version)."""
        return self.workspace.views

    @property
    def home_views(self) -> dict[str, JsonDict]:
        """The published Home tab of each user."""
        return self.workspace.home_views

    @property
    def files(self) -> dict[str, StoredFile]:
        """Files by id, with their uploaded bytes in `content`."""
        return self.workspace.files

    # faults ---------------------------------------------------------------------------

    def fail(
        self,
        method: str,
        error: str = "name_taken",
        times: int = 1,
        *,
        channel: str | None = None,
    ) -> None:
        """The next `times` calls of `method` ("*" = any) answer ok=false with `error`; with
        `channel`, only calls to that conversation count."""
        self.faults.add(method, Fault("error", error=error), times, channel)

    def fail_http(
        self,
        method: str,
        status: int = 429,
        retry_after: int = 1,
        times: int = 1,
        *,
        channel: str | None = None,
    ) -> None:
        """The next `times` calls answer HTTP `status` (429 with a Retry-After header); with
        `channel`, only calls to that conversation count."""
        self.faults.add(method, http_fault(status, retry_after), times, channel)

    def hold(self, method: str, channel: str | None = None) -> Hold:
        """Calls of `method` ("*" = any) to `channel` (any conversation when None) wait,
        unanswered, until `hold.release()` (or `release`, `reset_faults`); the others go on.
        `hold.waiting` counts the calls waiting now, `hold.most` the most at once."""
        return self.faults.hold(method, channel)

    def release(self, method: str | None = None, channel: str | None = None) -> int:
        """Release the holds on `method` and `channel` (all when both are None)."""
        return self.faults.release(method, channel)

    def delay(self, method: str, seconds: float) -> None:
        """Every call of `method` ("*" = all) waits `seconds` first; 0 removes it."""
        self.faults.set_delay(method, seconds)

    def slow(self, method: str, seconds: float = DEFAULT_SLOW_SECONDS, times: int = 1) -> None:
        """The next `times` calls wait `seconds`, then answer normally."""
        self.faults.add(method, Fault("slow", seconds=seconds), times)

    def drop(self, method: str, times: int = 1, *, after_processing: bool = False) -> None:
        """Close the connection without answering; with after_processing the call
        takes effect first (a lost response, as when a proxy dies mid-flight)."""
        self.faults.add(method, Fault("drop", after_processing=after_processing), times)

    def fault_rate(
        self,
        rate: float,
        seed: int,
        kinds: Iterable[str] = ("429", "500", "slow", "drop"),
        *,
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        retry_after: int = 1,
        methods: Iterable[str] | None = None,
    ) -> None:
        """Random faults on every method (or `methods`) at `rate`, reproducible by seed."""
        self.faults.set_random(
            rate,
            seed,
            kinds,
            slow_seconds=slow_seconds,
            retry_after=retry_after,
            methods=methods,
        )

    def reset_faults(self) -> None:
        """Remove scripted faults, delays and random faults (rate limits stay as set)."""
        self.faults.reset()

    def enforce_rate_limits(self, scale: float = 1.0) -> None:
        """Apply Slack's per-method tiers, with every window multiplied by `scale`."""
        self.rate_limiter = RateLimiter(scale)

    def disable_rate_limits(self) -> None:
        """Stop enforcing rate limits (the default)."""
        self.rate_limiter = None

    def reset(self, *, state: bool = True, faults: bool = True, calls: bool = True) -> None:
        """Start over: conversations/views/files (users stay), faults and limits, call log."""
        if state:
            self.workspace.clear_conversations()
            self._responses.clear()
            self._response_urls.clear()
            self.changed()
        if faults:
            self.faults.reset()
            self.rate_limiter = None
        if calls:
            self._calls.clear()

    def dump_state(self) -> JsonDict:
        """Everything observable, as JSON, for out-of-process users."""
        return control.dump_state(self)

    def snapshot(self) -> JsonDict:
        """The workspace's content (people, conversations, pins, views, files) as JSON data,
        for `restore` in a later run."""
        return snapshot.dump(self.workspace)

    def restore(self, data: JsonDict) -> None:
        """Replace the workspace's content with a snapshot's (ValueError if unreadable)."""
        snapshot.load(self.workspace, data)
        self.changed()

    # HTTP handlers --------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        """One Web API call: record, apply faults, authenticate, limit, dispatch."""
        method = request.match_info["method"]
        try:
            args: dict[str, Any] | None = await read_args(request)
        except BadRequestBody:
            args = None
        token = bearer_token(request)
        if args is not None:
            arg_token = args.pop("token", None)
            token = token if token is not None else arg_token
        call = Call(method=method, args=dict(args or {}), ok=False, error=None, at=time.time())
        self._calls.append(call)
        if args is None:
            return self._finish(call, (200, {"ok": False, "error": "invalid_json"}, {}))
        if self.before_call is not None and self.before_call(call):
            # The observer stopped the world (a test killing the bot): nothing is applied.
            return self._drop(request, call, "stopped_before_processing")
        return await self._serve(request, call, args, token)

    async def _serve(
        self, request: web.Request, call: Call, args: dict[str, Any], token: str | None
    ) -> web.StreamResponse:
        await self.faults.wait_if_held(call.method, args)
        fault = self.faults.take(call.method, args)
        await self._wait(call.method, fault)
        if fault is not None and fault.kind == "drop" and not fault.after_processing:
            return self._drop(request, call, "connection_dropped")
        if fault is not None and fault.kind == "http":
            return self._finish(call, _http_outcome(fault))
        response = self._finish(call, self._dispatch(call.method, args, token, fault))
        if call.ok and call.method not in READ_ONLY:
            self.changed()
        if fault is not None and fault.kind == "drop":
            return self._drop(request, call, "dropped_after_processing")
        return response

    async def _wait(self, method: str, fault: Fault | None) -> None:
        seconds = self.faults.delay_for(method)
        if fault is not None and fault.kind == "slow":
            seconds += fault.seconds
        if seconds > 0:
            await asyncio.sleep(seconds)

    def _dispatch(
        self, method: str, args: dict[str, Any], token: str | None, fault: Fault | None
    ) -> Outcome:
        if method == "apps.connections.open":
            return self._connections_open(token)
        handler = HANDLERS.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.bot_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        if self.rate_limiter is not None:
            wait = self.rate_limiter.admit(method, args)
            if wait is not None:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(wait)}
        if fault is not None and fault.kind == "error":
            return 200, {"ok": False, "error": fault.error}, {}
        return self._run(method, args)

    def _connections_open(self, token: str | None) -> Outcome:
        """apps.connections.open: a WebSocket URL, for the app-level token only."""
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if token != self.app_token:
            error = "not_allowed_token_type" if token == self.bot_token else "invalid_auth"
            return 200, {"ok": False, "error": error}, {}
        return 200, {"ok": True, "url": self.sockets.new_url(self.base_url)}, {}

    def _run(self, method: str, args: dict[str, Any]) -> Outcome:
        try:
            body = HANDLERS[method](self.workspace, Args(args))
        except ApiError as exc:
            return 200, exc.body(), {}
        except Exception as exc:  # a bug in the fake must surface, not hang the bot
            logger.exception("fake Slack handler for %s failed", method)
            return 500, {"ok": False, "error": "fake_internal_error", "detail": repr(exc)}, {}
        return 200, {"ok": True, **body}, {}

    def _finish(self, call: Call, outcome: Outcome) -> web.Response:
        status, body, headers = outcome
        call.ok = bool(body.get("ok"))
        if call.ok:  # only a handler that ran answers ok: its effect is in the workspace now
            call.applied_at = time.time()
        call.error = body.get("error")
        call.status = status
        return json_response(body, status, headers)

    def _drop(self, request: web.Request, call: Call, reason: str) -> web.Response:
        """Abort the TCP connection so the client sees a disconnect, not an answer."""
        call.ok = False
        call.error = reason
        call.status = 0
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        """A response_url: JSON posts are recorded; at most 5 uses, like Slack."""
        response_id = request.match_info["response_id"]
        uses = self._response_urls.get(response_id)
        if uses is None:
            return web.Response(status=404, text="no_service")
        if uses >= RESPONSE_URL_MAX_USES:
            return web.Response(status=404, text="used_url")
        try:
            body = await request.json()
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        self._response_urls[response_id] = uses + 1
        self._responses.append((response_id, body))
        self.changed()
        return web.Response(text="ok")

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL from files.getUploadURLExternal: stores the bytes."""
        stored = self.workspace.files.get(request.match_info["file_id"])
        if stored is None:
            return web.Response(status=404, text="file_not_found")
        stored.content = await read_upload(request)
        self.changed()
        return web.Response(text=f"OK - {len(stored.content)}")

    async def _handle_download(self, request: web.Request) -> web.Response:
        """A file's `url_private`: its bytes, for a caller with the bot token (as on Slack)."""
        if bearer_token(request) != self.bot_token:
            return web.Response(status=403, text="invalid_auth")
        stored = self.workspace.files.get(request.match_info["file_id"])
        if stored is None or stored.content is None:
            return web.Response(status=404, text="file_not_found")
        return web.Response(
            body=stored.content,
            content_type="application/octet-stream",
            headers={"X-Content-Type-Options": "nosniff"},
        )


def _http_outcome(fault: Fault) -> Outcome:
    """The answer of an injected HTTP failure."""
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
    return fault.status, {"ok": False, "error": fault.error}, headers
