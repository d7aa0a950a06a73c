"""The interfaces the use cases need from the outside world, and the errors they understand.

Services depend on these, never on an adapter: `app.integrations.slack_web.SlackGateway`
implements `SlackPort` over the Slack Web API, the scheduler implements `Firing`, and a test
or another chat platform can bring its own.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from enum import IntEnum, StrEnum
from typing import Any, Protocol

from app.messages.blocks import Message

TRANSIENT = frozenset(
    {"ratelimited", "internal_error", "service_unavailable", "fatal_error", "request_timeout"}
)
# The token itself is refused: nothing will work until it does again.
CREDENTIAL = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)
# The conversation cannot take the message: archived, deleted, or the bot is not in it.
ROOM = frozenset({"is_archived", "channel_not_found", "not_in_channel"})
# The message a reply or an edit points at is gone (someone deleted it).
GONE = frozenset({"thread_not_found", "message_not_found"})


class ErrorKind(StrEnum):
    """What a Slack error means for the work that hit it."""

    TRANSIENT = "transient"  # try again later: rate limits, outages, lost connections
    CREDENTIAL = "credential"  # the token is refused: hold everything until it works
    ROOM = "room"  # the conversation is archived, gone, or the bot was removed
    GONE_THREAD = "gone_thread"  # the message replied to (or edited) was deleted
    INVALID_MESSAGE = "invalid_message"  # Slack refuses this request for good


# A private answer to the person who asked (a response_url, an ephemeral message, a DM, a line
# on a terminal): what a use case says back does not depend on where the request came from.
Say = Callable[[str], Awaitable[None]]


class Priority(IntEnum):
    """Which Slack calls go first when a method is out of budget (rate-limited): lower first.
    Calls carry the priority of the work they run in (see `urgent`)."""

    URGENT = 0  # building the war room of an incident just declared, and its first pages
    NORMAL = 1  # everything else: commands, reminders, refreshes, repair sweeps


_PRIORITY: ContextVar[Priority] = ContextVar("slack_priority", default=Priority.NORMAL)


def priority() -> Priority:
    """The priority of the Slack calls made here and now."""
    return _PRIORITY.get()


@contextmanager
def urgent() -> Iterator[None]:
    """Slack calls made inside (and in tasks started inside) go before the others when their
    method is out of budget."""
    token = _PRIORITY.set(Priority.URGENT)
    try:
        yield
    finally:
        _PRIORITY.reset(token)


# How the work running here waits for Slack's budget (see `waiting_for_slack`).
SlackWait = Callable[[], AbstractAsyncContextManager[None]]
_SLACK_WAIT: ContextVar[SlackWait | None] = ContextVar("slack_wait", default=None)


@contextmanager
def on_slack_wait(hook: SlackWait) -> Iterator[None]:
    """Inside, a call that must wait for Slack's budget waits inside `hook()` (the work's
    runner gives its turn to other work meanwhile)."""
    token = _SLACK_WAIT.set(hook)
    try:
        yield
    finally:
        _SLACK_WAIT.reset(token)


@asynccontextmanager
async def waiting_for_slack() -> AsyncIterator[None]:
    """Wrap a wait for Slack's budget (a paced or rate-limited method): the runner of the
    work, if it set a hook, lets other work run meanwhile."""
    hook = _SLACK_WAIT.get()
    if hook is None:
        yield
        return
    async with hook():
        yield


class SlackError(Exception):
    """A Web API call failed; `code` is Slack's error string (or 'http_<status>'), `detail`
    what the connection said when there was no answer (e.g. the host could not be resolved)."""

    def __init__(self, method: str, code: str, detail: str = "") -> None:
        super().__init__(f"{method}: {code}")
        self.method = method
        self.code = code
        self.detail = detail

    @property
    def reason(self) -> str:
        return self.detail or self.code

    @property
    def transient(self) -> bool:
        """Worth retrying later: rate limits, Slack's own failures, lost connections."""
        return self.code in TRANSIENT or self.code.startswith(
            ("http_5", "http_429", "connection_error")
        )

    @property
    def kind(self) -> ErrorKind:
        if self.transient:
            return ErrorKind.TRANSIENT
        if self.code in CREDENTIAL:
            return ErrorKind.CREDENTIAL
        if self.code in ROOM:
            return ErrorKind.ROOM
        if self.code in GONE:
            return ErrorKind.GONE_THREAD
        return ErrorKind.INVALID_MESSAGE

    @property
    def retryable(self) -> bool:
        """The same request may work later without anyone changing it: a transient failure,
        or a refused token (work is held until Slack accepts it again)."""
        return self.kind in (ErrorKind.TRANSIENT, ErrorKind.CREDENTIAL)

    @property
    def uncertain(self) -> bool:
        """The request may have reached Slack and been carried out: look before retrying."""
        return self.code.startswith("connection_error")


@dataclass(frozen=True)
class Person:
    """A workspace member as far as the use cases care: may they hold a role?"""

    id: str
    name: str
    is_bot: bool = False
    deleted: bool = False


class SlackPort(Protocol):
    """What the use cases ask of Slack. Every failure raises `SlackError`."""

    async def auth_test(self) -> dict[str, Any]: ...

    async def create_channel(
        self, name_for: Callable[[int], str], private: bool
    ) -> dict[str, Any]: ...

    async def find_channel(self, name_or_id: str) -> str | None: ...

    async def members(self, channel: str) -> list[str]: ...

    async def channel_info(self, channel: str) -> dict[str, Any]: ...

    async def join(self, channel: str) -> None: ...

    async def invite(self, channel: str, users: Iterable[str]) -> list[str]: ...

    async def set_topic(self, channel: str, topic: str) -> None: ...

    async def archive(self, channel: str) -> None: ...

    async def post(
        self,
        channel: str,
        message: Message,
        thread_ts: str | None = None,
        broadcast: bool = False,
        key: str | None = None,
    ) -> str: ...

    async def find_posted(
        self, channel: str, key: str, oldest: str = "0", thread_ts: str | None = None
    ) -> str | None: ...

    async def update(self, channel: str, ts: str, message: Message) -> None: ...

    async def ephemeral(self, channel: str, user: str, message: Message) -> None: ...

    async def dm(self, user: str, message: Message) -> str: ...

    async def pin(self, channel: str, ts: str) -> None: ...

    async def add_bookmark(self, channel: str, title: str, url: str) -> str:
        """Add a link to the channel's bookmarks bar; returns the bookmark's ID."""
        ...

    async def permalink(self, channel: str, ts: str) -> str | None: ...

    async def respond(
        self, response_url: str, message: Message, ephemeral: bool = True
    ) -> None: ...

    async def message_at(self, channel: str, ts: str) -> dict[str, Any] | None: ...

    async def upload(
        self, channel: str, filename: str, title: str, content: bytes, comment: str = ""
    ) -> str: ...

    async def expand(self, ids: Iterable[str]) -> list[str]: ...

    async def user_name(self, user: str) -> str: ...

    async def person(self, user: str) -> Person | None:
        """The member with this ID; None when Slack knows no such user."""
        ...

    async def open_view(self, trigger_id: str, view: dict[str, Any]) -> None: ...

    async def publish_home(self, user: str, view: dict[str, Any]) -> None: ...


class Firing(Protocol):
    """The escalation engine, as the use cases see it: fire what is due now, not at the next
    tick (a declare pages its audience at once)."""

    async def fire_due(self, incident_id: int) -> object: ...

    async def tick(self) -> object: ...


class PagerErrorKind(StrEnum):
    """What a pager provider's refusal means for the call that hit it."""

    TRANSIENT = "transient"  # 429, 5xx, a timeout, a lost connection: retry with backoff
    CREDENTIAL = "credential"  # the key is refused or missing: tell people, keep retrying slowly
    INVALID = "invalid"  # the provider says the request itself is wrong: do not retry


class PagerError(Exception):
    """A call to a pager provider failed. `detail` is safe to show: it never holds a key."""

    def __init__(self, kind: PagerErrorKind, detail: str, status: int | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status


@dataclass(frozen=True)
class PageCall:
    """One call to make to a target's provider, with everything the provider is told."""

    target: str
    action: str  # app.domain.paging.PageAction
    dedup_key: str
    summary: str
    severity: int
    incident_id: int
    message: str = ""
    # The war room and the announcement, as (url, text).
    links: tuple[tuple[str, str], ...] = ()
    details: tuple[tuple[str, str], ...] = ()


class PagerPort(Protocol):
    """What the use cases ask of the pager providers. Failures raise `PagerError`."""

    def configured(self, target: str) -> bool:
        """Whether the target's secret is set in this environment."""
        ...

    async def send(self, call: PageCall) -> str:
        """Make the call; returns what the provider answered (kept as the call's outcome)."""
        ...


class StatusPageErrorKind(StrEnum):
    """What a status page provider's refusal means for the call that hit it."""

    TRANSIENT = "transient"  # 429, 5xx, a timeout, a lost connection: retry with backoff
    CREDENTIAL = "credential"  # the key is refused or missing: tell Comms, keep retrying slowly
    INVALID = "invalid"  # the provider says the request itself is wrong: do not retry


class StatusPageError(Exception):
    """A call to a status page provider failed. `detail` is safe to show: never a key.
    `uncertain`: the request may have been carried out (no answer came back); look before
    creating again."""

    def __init__(
        self,
        kind: StatusPageErrorKind,
        detail: str,
        status: int | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.status = status
        self.uncertain = uncertain


@dataclass(frozen=True)
class StatusCall:
    """One published update, as a status page provider is told it.

    `remote_id` is the provider's incident id once the incident exists there (None: create
    it). `components` maps Warroom's component ids to impacts (`app.domain.statuspage.Impact`
    values); on resolution every component named is set back to "operational"."""

    incident_id: int
    remote_id: str | None
    name: str
    status: str  # app.domain.statuspage.PublicStatus value
    body: str
    components: tuple[tuple[str, str], ...] = ()
    # Marks the provider incident as Warroom's, so a create whose answer was lost is found.
    marker: str = ""


class StatusPagePort(Protocol):
    """What the use cases ask of a hosted status page (Atlassian Statuspage). Failures raise
    `StatusPageError`."""

    def configured(self) -> bool:
        """Whether the key is set in this environment."""
        ...

    async def publish(self, call: StatusCall) -> str:
        """Create the provider incident (remote_id None) or add an update to it, and set the
        components' statuses; returns the provider's incident id."""
        ...

    async def find(self, call: StatusCall) -> str | None:
        """The provider incident a lost create made for this call (by its marker), if any."""
        ...
