"""The one door to the Slack Web API: the adapter behind `app.services.ports.SlackPort`.

Services call these methods through the port and never see slack_sdk. Slack's quirks are
handled here once: `name_taken` suffixes, 100-user invite batches, `already_in_channel`, topic
length, channel lookup by name with pagination, user-group expansion, and rate limits: calls are
paced to Slack's published limits (`slack_limits`) and a 429 is waited out, both at the priority
gate, where the calls of a newly declared incident go first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.async_handler import AsyncRetryHandler, RetryState
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.web.async_client import AsyncWebClient

from app.integrations.priority_gate import STRAIGHT, Pass, PriorityGate
from app.integrations.slack_limits import Limit, limit_for, method_of
from app.messages.blocks import Message
from app.services.ports import ErrorKind, Person, SlackError, priority, waiting_for_slack
from app.services.slack_auth import SlackAuth
from app.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

MAX_TOPIC = 250
INVITE_BATCH = 100
MAX_NAME_ATTEMPTS = 20
# How many times one call waits out a 429 before giving up with `ratelimited`.
MAX_RATE_LIMITED = 3
GROUP_CACHE_SECONDS = 60.0
PER_USER_INVITE_ERRORS = frozenset(
    {"user_not_found", "cant_invite", "cant_invite_self", "user_is_restricted", "user_disabled"}
)


METADATA_EVENT = "warroom_message"


# Set by the gateway around one attempt: what to do before slack_sdk sends the call again.
_NEXT_ATTEMPT: ContextVar[Callable[[], Awaitable[None]] | None] = ContextVar(
    "slack_next_attempt", default=None
)


async def _before_next_attempt() -> None:
    again = _NEXT_ATTEMPT.get()
    if again is not None:
        await again()


class _EachAttemptPaced(AsyncRetryHandler):
    """A slack_sdk retry handler whose every new attempt takes its own token first."""

    async def prepare_for_next_attempt_async(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        await super().prepare_for_next_attempt_async(
            state=state, request=request, response=response, error=error
        )
        await _before_next_attempt()


class _ServerErrorRetries(_EachAttemptPaced, AsyncServerErrorRetryHandler):
    """slack_sdk's retry of 5xx answers, paced."""


class _ConnectionErrorRetries(_EachAttemptPaced, AsyncConnectionErrorRetryHandler):
    """slack_sdk's retry of dropped connections, paced."""


def make_client(token: str | None, base_url: str, timeout: int = 10) -> AsyncWebClient:
    """A Web API client that retries server errors and dropped connections. Rate limits (429)
    are the gateway's: it paces calls and waits 429s out through its priority gate; a retry
    slack_sdk makes goes through the gate again (a dropped call may have reached Slack)."""
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,
        retry_handlers=[
            _ServerErrorRetries(max_retry_count=2),
            _ConnectionErrorRetries(max_retry_count=2),
        ],
    )


def bucket(method: str, args: dict[str, Any]) -> str:
    """What Slack counts a call against: chat.postMessage per channel, the rest per method."""
    if method == "chat.postMessage":
        return f"{method}:{args.get('channel', '')}"
    return method


def retry_after(response: Any) -> float | None:
    """Seconds Slack asks to wait (a 429's `Retry-After`, 1 when missing); None if not a 429."""
    if getattr(response, "status_code", None) != 429:
        return None
    headers = getattr(response, "headers", None) or {}
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return max(0.0, float(value[0] if isinstance(value, list) else value))
            except ValueError:
                break
    return 1.0


def pacing_limits(scale: float) -> Callable[[str], Limit | None]:
    """A bucket's limit: Slack's published one with its window times `scale` (0: not paced)."""
    return lambda key: limit_for(method_of(key), scale)


class SlackGateway:
    """Implements `SlackPort` over slack_sdk's AsyncWebClient (and its retry handlers).

    `pacing` scales every window of Slack's published limits (1.0: Slack's own; 0: no pacing,
    only 429s are waited out). One gateway serves the whole process, so its pacing covers
    everything the process sends with the bot token.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        auth: SlackAuth | None = None,
        pacing: float = 1.0,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        # Each attempt's outcome is counted, a 429's Retry-After observed.
        self.metrics = metrics or Metrics()
        self.gate = PriorityGate(pacing_limits(pacing))
        # Whether Slack accepts the token: while it does not, calls are held (see SlackAuth).
        self.auth = auth or SlackAuth(announce=False)
        self._probe_lock = asyncio.Lock()
        self._channel_ids: dict[str, str] = {}
        self._user_names: dict[str, str] = {}
        self._groups: dict[str, tuple[float, list[str]]] = {}

    async def _call(self, method: str, **kwargs: Any) -> dict[str, Any]:
        return await self._request(method, json=kwargs)

    async def _form(self, method: str, **params: Any) -> dict[str, Any]:
        """Methods Slack only reads form-encoded (lookups, pagination)."""
        return await self._request(method, params=params)

    async def _request(self, method: str, **how: Any) -> dict[str, Any]:
        """One Web API call; every failure becomes a SlackError with Slack's code.

        Each attempt takes its turn at the priority gate: a token of the method's (or the
        channel's) budget, waiting while it is spent, urgent calls first. A 429 is waited out
        there too (at most `MAX_RATE_LIMITED` times). While Slack refuses the
        token, calls fail at once with the refusal (no request is sent), except that
        `auth.test` is tried on a backoff to find out when it works again.
        """
        if self.auth.paused and method != "auth.test":
            await self._probe()
            if self.auth.problem is not None:
                raise SlackError(method, self.auth.problem)
        key = bucket(method, how.get("json") or how.get("params") or {})
        rank, ticket, refused = priority(), self.gate.ticket(), 0
        while True:
            if self.gate.must_wait(key):
                # Out of budget: the work waiting here lets other work run meanwhile.
                async with waiting_for_slack():
                    held: Pass = await self.gate.acquire(key, rank, ticket)
            else:
                held = await self.gate.acquire(key, rank, ticket)

            async def again() -> None:
                # slack_sdk is about to send this call once more: the next attempt is a call too.
                nonlocal held
                self.gate.release(key, held)
                held = STRAIGHT
                held = await self.gate.acquire(key, rank, ticket)

            wait: float | None = None
            attempt = _NEXT_ATTEMPT.set(again)
            try:
                response = await self.client.api_call(method, **how)
            except SlackApiError as exc:
                wait = retry_after(exc.response)
                if wait is not None:
                    self.metrics.slack_rate_limited(method, wait)
                if wait is None or refused >= MAX_RATE_LIMITED:
                    code = exc.response.get("error") or f"http_{exc.response.status_code}"
                    if wait is None:
                        self.metrics.slack_call(method, str(code))
                    error = SlackError(method, str(code))
                    if error.kind is ErrorKind.CREDENTIAL:
                        self.auth.refused(error.code)
                    raise error from None
                refused += 1
                continue
            except (TimeoutError, aiohttp.ClientError) as exc:
                self.metrics.slack_call(method, "transport")
                detail = str(exc) or ("timed out" if isinstance(exc, TimeoutError) else "")
                raise SlackError(
                    method, f"connection_error ({type(exc).__name__})", detail or type(exc).__name__
                ) from None
            finally:
                _NEXT_ATTEMPT.reset(attempt)
                self.gate.release(key, held, wait)
            self.metrics.slack_call(method, "ok")
            if method == "auth.test":
                self.auth.accepted()
            return dict(response.data)  # type: ignore[arg-type]

    async def _probe(self) -> None:
        """Try the token again (once for all the calls waiting), when the backoff allows."""
        async with self._probe_lock:
            if not self.auth.probe_due():
                return
            self.auth.probing()
            try:
                await self.auth_test()
            except SlackError as exc:
                log.debug("token still refused: %s", exc.code)

    # --- identity -------------------------------------------------------------------------

    async def auth_test(self) -> dict[str, Any]:
        return await self._form("auth.test")

    # --- channels -------------------------------------------------------------------------

    async def create_channel(self, name_for: Callable[[int], str], private: bool) -> dict[str, Any]:
        """Create a channel, trying name_for(1), name_for(2)… while Slack says `name_taken`."""
        for attempt in range(1, MAX_NAME_ATTEMPTS + 1):
            name = name_for(attempt)
            try:
                data = await self._call("conversations.create", name=name, is_private=private)
            except SlackError as exc:
                if exc.code == "name_taken":
                    continue
                raise
            channel: dict[str, Any] = data["channel"]
            self._channel_ids[channel["name"]] = channel["id"]
            return channel
        raise SlackError("conversations.create", "name_taken")

    async def find_channel(self, name_or_id: str) -> str | None:
        """A channel ID from a name (with or without '#') or an ID; cached once found."""
        name = name_or_id.lstrip("#")
        if name[:1] in {"C", "G"} and name.isupper():
            return name
        if name in self._channel_ids:
            return self._channel_ids[name]
        cursor = ""
        while True:
            data = await self._form(
                "conversations.list",
                types="public_channel,private_channel",
                exclude_archived="true",
                limit=200,
                cursor=cursor,
            )
            for channel in data.get("channels", []):
                self._channel_ids.setdefault(channel["name"], channel["id"])
            if name in self._channel_ids:
                return self._channel_ids[name]
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return None

    async def members(self, channel: str) -> list[str]:
        """Every member of a channel (paginated)."""
        users: list[str] = []
        cursor = ""
        while True:
            data = await self._form(
                "conversations.members", channel=channel, limit=200, cursor=cursor
            )
            users.extend(data.get("members", []))
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return users

    async def channel_info(self, channel: str) -> dict[str, Any]:
        return dict((await self._form("conversations.info", channel=channel))["channel"])

    async def join(self, channel: str) -> None:
        await self._call("conversations.join", channel=channel)

    async def invite(self, channel: str, users: Iterable[str]) -> list[str]:
        """Invite users in batches of 100; return the IDs Slack refused."""
        wanted = list(dict.fromkeys(u for u in users if u))
        refused: list[str] = []
        for start in range(0, len(wanted), INVITE_BATCH):
            batch = wanted[start : start + INVITE_BATCH]
            try:
                await self._call("conversations.invite", channel=channel, users=",".join(batch))
            except SlackError as exc:
                if exc.code == "already_in_channel":
                    continue
                if exc.retryable:
                    raise  # an outage or a refused token: the caller tries again later
                if len(batch) > 1 and exc.code in PER_USER_INVITE_ERRORS:
                    # One bad ID fails the whole batch: invite one by one to get the rest in.
                    for user in batch:
                        refused.extend(await self.invite(channel, [user]))
                    continue
                log.warning("invite of %d user(s) to %s failed: %s", len(batch), channel, exc.code)
                refused.extend(batch)
        return refused

    async def set_topic(self, channel: str, topic: str) -> None:
        await self._call("conversations.setTopic", channel=channel, topic=topic[:MAX_TOPIC])

    async def archive(self, channel: str) -> None:
        await self._call("conversations.archive", channel=channel)

    # --- messages -------------------------------------------------------------------------

    async def post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
    ) -> str:
        """Post and return the message ts. Never parses links or names in user text.

        `key` travels as message metadata so `find_posted` can tell, after a crash, whether
        this very message already went out.
        """
        kwargs: dict[str, Any] = {
            "channel": channel,
            **message.as_kwargs(),
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
            if broadcast:
                kwargs["reply_broadcast"] = True
        if key:
            kwargs["metadata"] = {"event_type": METADATA_EVENT, "event_payload": {"key": key}}
        data = await self._call("chat.postMessage", **kwargs)
        return str(data["ts"])

    async def find_posted(
        self, channel: str, key: str, oldest: str = "0", thread_ts: str | None = None
    ) -> str | None:
        """The ts of the bot's message carrying `key`, if it was posted; None otherwise.

        Reading history needs membership; the bot posts to public channels without joining,
        so it joins one first when Slack says so.
        """
        try:
            return await self._find_posted(channel, key, oldest, thread_ts)
        except SlackError as exc:
            if exc.code != "not_in_channel":
                raise
        await self.join(channel)
        return await self._find_posted(channel, key, oldest, thread_ts)

    async def _find_posted(
        self, channel: str, key: str, oldest: str, thread_ts: str | None
    ) -> str | None:
        method = "conversations.replies" if thread_ts else "conversations.history"
        params: dict[str, Any] = {
            "channel": channel,
            "oldest": oldest,
            "limit": 200,
            "include_all_metadata": "true",
        }
        if thread_ts:
            params["ts"] = thread_ts
        cursor = ""
        while True:
            data = await self._form(method, **params, cursor=cursor)
            for message in data.get("messages", []):
                payload = (message.get("metadata") or {}).get("event_payload") or {}
                if payload.get("key") == key:
                    return str(message["ts"])
            cursor = (data.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                return None

    async def update(self, channel: str, ts: str, message: Message) -> None:
        await self._call("chat.update", channel=channel, ts=ts, **message.as_kwargs())

    async def ephemeral(self, channel: str, user: str, message: Message) -> None:
        await self._call("chat.postEphemeral", channel=channel, user=user, **message.as_kwargs())

    async def dm(self, user: str, message: Message) -> str:
        return await self.post(user, message)

    async def pin(self, channel: str, ts: str) -> None:
        try:
            await self._call("pins.add", channel=channel, timestamp=ts)
        except SlackError as exc:
            if exc.code != "already_pinned":
                raise

    async def add_bookmark(self, channel: str, title: str, url: str) -> str:
        data = await self._call(
            "bookmarks.add", channel_id=channel, title=title, type="link", link=url
        )
        return str((data.get("bookmark") or {}).get("id", ""))

    async def permalink(self, channel: str, ts: str) -> str | None:
        try:
            data = await self._form("chat.getPermalink", channel=channel, message_ts=ts)
        except SlackError:
            return None
        return data.get("permalink")

    async def respond(self, response_url: str, message: Message, ephemeral: bool = True) -> None:
        """Answer through a response_url (works in channels the bot is not in)."""
        body = {
            **message.as_kwargs(),
            "response_type": "ephemeral" if ephemeral else "in_channel",
            "replace_original": False,
        }
        timeout = aiohttp.ClientTimeout(total=10)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.post(response_url, json=body) as response,
        ):
            if response.status >= 400:
                raise SlackError("response_url", f"http_{response.status}")

    async def message_at(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message with this exact ts: from history, else from its thread (a reply)."""
        data = await self._form(
            "conversations.history",
            channel=channel,
            latest=ts,
            oldest=ts,
            inclusive="true",
            limit=1,
        )
        for message in data.get("messages", []):
            if message.get("ts") == ts:
                return dict(message)
        try:
            data = await self._form("conversations.replies", channel=channel, ts=ts, limit=200)
        except SlackError as exc:
            if exc.code == "thread_not_found":
                return None
            raise
        return next((dict(m) for m in data.get("messages", []) if m.get("ts") == ts), None)

    async def upload(
        self, channel: str, filename: str, title: str, content: bytes, comment: str = ""
    ) -> str:
        """Share a file in a channel (Slack's external upload: reserve, send bytes, complete);
        returns the file id."""
        data = await self._form(
            "files.getUploadURLExternal", filename=filename, length=len(content)
        )
        url, file_id = str(data["upload_url"]), str(data["file_id"])
        timeout = aiohttp.ClientTimeout(total=30)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.post(url, data=content) as response,
            ):
                if response.status >= 400:
                    raise SlackError("files.upload", f"http_{response.status}")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise SlackError("files.upload", f"connection_error ({type(exc).__name__})") from None
        await self._call(
            "files.completeUploadExternal",
            files=[{"id": file_id, "title": title}],
            channel_id=channel,
            initial_comment=comment,
        )
        return file_id

    # --- people ---------------------------------------------------------------------------

    async def usergroup_members(self, group: str) -> list[str]:
        """Members of a user group, cached for a minute: a declare needs them twice (invites
        and pages) and the method is rate-limited at ~20 calls a minute."""
        cached = self._groups.get(group)
        if cached and time.monotonic() - cached[0] < GROUP_CACHE_SECONDS:
            return list(cached[1])
        data = await self._form("usergroups.users.list", usergroup=group)
        users = list(data.get("users", []))
        self._groups[group] = (time.monotonic(), users)
        return users

    async def expand(self, ids: Iterable[str]) -> list[str]:
        """User IDs for a mix of users and user groups (S…), without repeats."""
        ids = list(dict.fromkeys(ids))
        groups = [i for i in ids if i.startswith("S")]
        members = await asyncio.gather(*(self.usergroup_members(g) for g in groups))
        users = [i for i in ids if not i.startswith("S")]
        for group_members in members:
            users.extend(group_members)
        return list(dict.fromkeys(users))

    async def user_name(self, user: str) -> str:
        """A display name for plain-text places (topics); the ID when Slack does not know it."""
        if user in self._user_names:
            return self._user_names[user]
        try:
            found = await self.person(user)
        except SlackError:
            return user
        return found.name if found else user

    async def person(self, user: str) -> Person | None:
        try:
            data = await self._form("users.info", user=user)
        except SlackError as exc:
            if exc.code in {"user_not_found", "user_not_visible"}:
                return None
            raise
        member = data["user"]
        profile = member.get("profile") or {}
        name = str(
            profile.get("display_name")
            or profile.get("real_name")
            or member.get("real_name")
            or member.get("name")
            or user
        )
        self._user_names[user] = name
        return Person(
            id=user,
            name=name,
            is_bot=bool(member.get("is_bot")) or user == "USLACKBOT",
            deleted=bool(member.get("deleted")),
        )

    # --- views ----------------------------------------------------------------------------

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None:
        await self._call("views.open", trigger_id=trigger_id, view=view)

    async def publish_home(self, user: str, view: dict[str, Any]) -> None:
        await self._call("views.publish", user_id=user, view=view)
