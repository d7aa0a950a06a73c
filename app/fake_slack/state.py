"""Workspace state of the fake Slack server.

The fake keeps a small, explicit model of one Slack workspace (users, user groups,
conversations, messages, pins, views, files) so that the bot under test sees the same
consequences of its calls that it would see on Slack, and so that tests can assert on
what the bot did without parsing HTTP traffic.
"""

from __future__ import annotations

import random
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

JsonDict = dict[str, Any]

_ID_ALPHABET = string.ascii_uppercase + string.digits
PERMALINK_HOST = "https://fake.slack.test"


def tz_offset_seconds(tz: str) -> int:
    """Return the current UTC offset of a zone, as users.info reports it in `tz_offset`."""
    try:
        offset = datetime.now(ZoneInfo(tz)).utcoffset()
    except (ZoneInfoNotFoundError, ValueError):
        return 0
    return int(offset.total_seconds()) if offset else 0


@dataclass
class User:
    """A workspace member; the bot user is one too (with `is_bot`)."""

    id: str
    name: str
    real_name: str = ""
    display_name: str = ""
    tz: str = "UTC"
    is_bot: bool = False
    email: str | None = None
    deleted: bool = False

    def to_api(self, team_id: str) -> JsonDict:
        """Shape the user like users.info does, so the bot parses real-looking objects."""
        profile: JsonDict = {
            "real_name": self.real_name,
            "display_name": self.display_name,
            "real_name_normalized": self.real_name,
            "display_name_normalized": self.display_name,
        }
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": self.real_name,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": tz_offset_seconds(self.tz),
            "profile": profile,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "is_admin": False,
        }


@dataclass
class UserGroup:
    """A user group (subteam) that the bot may page, e.g. `@oncall`."""

    id: str
    handle: str
    name: str
    users: list[str] = field(default_factory=list)
    description: str = ""
    is_disabled: bool = False

    def to_api(self, team_id: str, include_users: bool) -> JsonDict:
        """Shape the group like usergroups.list does."""
        data: JsonDict = {
            "id": self.id,
            "team_id": team_id,
            "is_usergroup": True,
            "name": self.name,
            "handle": self.handle,
            "description": self.description,
            "date_delete": 1 if self.is_disabled else 0,
            "user_count": len(self.users),
        }
        if include_users:
            data["users"] = list(self.users)
        return data


@dataclass
class Channel:
    """A conversation: public or private channel, IM (`D…`) or group IM."""

    id: str
    name: str
    created: int
    creator: str
    is_private: bool = False
    is_im: bool = False
    is_mpim: bool = False
    is_archived: bool = False
    members: list[str] = field(default_factory=list)
    topic: str = ""
    topic_creator: str = ""
    topic_last_set: int = 0
    purpose: str = ""
    im_user: str | None = None

    def has_member(self, user_id: str) -> bool:
        """Tell membership; kept as a method so callers never depend on the container type."""
        return user_id in self.members

    def to_api(self, viewer: str, team_id: str) -> JsonDict:
        """Shape the conversation like conversations.info does, from `viewer`'s side."""
        if self.is_im:
            return self._im_api(viewer)
        return {
            "id": self.id,
            "name": self.name,
            "name_normalized": self.name,
            "is_channel": not self.is_mpim,
            "is_group": False,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_mpim,
            "is_archived": self.is_archived,
            "is_general": False,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "is_member": self.has_member(viewer),
            "created": self.created,
            "updated": self.created * 1000,
            "creator": self.creator,
            "unlinked": 0,
            "context_team_id": team_id,
            "previous_names": [],
            "num_members": len(self.members),
            "topic": {
                "value": self.topic,
                "creator": self.topic_creator,
                "last_set": self.topic_last_set,
            },
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
        }

    def _im_api(self, viewer: str) -> JsonDict:
        """IMs have no name and carry the other party's id in `user`."""
        return {
            "id": self.id,
            "created": self.created,
            "is_im": True,
            "is_org_shared": False,
            "user": self.im_user,
            "is_user_deleted": False,
            "is_archived": self.is_archived,
            "is_open": True,
            "is_member": self.has_member(viewer),
        }


@dataclass
class MessageEdit:
    """One superseded version of a message, kept so tests can check what changed."""

    text: str
    blocks: list[JsonDict] | None
    edited_ts: str


@dataclass
class Message:
    """A message in a conversation (top level, thread reply or broadcast reply)."""

    ts: str
    channel: str
    user: str
    text: str = ""
    blocks: list[JsonDict] | None = None
    attachments: list[JsonDict] | None = None
    thread_ts: str | None = None
    reply_broadcast: bool = False
    files: list[str] = field(default_factory=list)
    edits: list[MessageEdit] = field(default_factory=list)
    reactions: dict[str, list[str]] = field(default_factory=dict)
    metadata: JsonDict | None = None
    bot_id: str | None = None
    options: JsonDict = field(default_factory=dict)

    @property
    def is_reply(self) -> bool:
        """A reply is in a thread it did not start."""
        return self.thread_ts is not None and self.thread_ts != self.ts

    @property
    def edited(self) -> bool:
        """Whether chat.update ever changed this message."""
        return bool(self.edits)

    def to_api(self, team_id: str, replies: list[Message] | None = None) -> JsonDict:
        """Shape the message like conversations.history does."""
        data: JsonDict = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        data["team"] = team_id
        if self.bot_id:
            data["bot_id"] = self.bot_id
        if self.blocks is not None:
            data["blocks"] = self.blocks
        if self.attachments:
            data["attachments"] = self.attachments
        if self.metadata:
            data["metadata"] = self.metadata
        self._add_thread_fields(data, replies)
        self._add_extras(data)
        return data

    def _add_thread_fields(self, data: JsonDict, replies: list[Message] | None) -> None:
        """Parents get reply counters, replies their parent ts, broadcasts a subtype."""
        if self.is_reply:
            data["thread_ts"] = self.thread_ts
            data["parent_user_id"] = ""
            if self.reply_broadcast:
                data["subtype"] = "thread_broadcast"
            return
        if replies:
            data["thread_ts"] = self.ts
            data["reply_count"] = len(replies)
            data["reply_users"] = sorted({m.user for m in replies})
            data["reply_users_count"] = len(data["reply_users"])
            data["latest_reply"] = replies[-1].ts

    def _add_extras(self, data: JsonDict) -> None:
        """Edits and reactions only appear when present, as on Slack."""
        if self.edits:
            data["edited"] = {"user": self.user, "ts": self.edits[-1].edited_ts}
        if self.reactions:
            data["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)}
                for name, users in self.reactions.items()
            ]


@dataclass
class Pin:
    """A pinned message reference."""

    ts: str
    created: int
    created_by: str


@dataclass
class EphemeralMessage:
    """A chat.postEphemeral message: seen by one user, never stored in the channel."""

    channel: str
    user: str
    text: str
    blocks: list[JsonDict] | None
    thread_ts: str | None
    message_ts: str


@dataclass
class StoredFile:
    """A file uploaded through the external upload flow."""

    id: str
    name: str
    length: int
    user: str
    created: int
    title: str = ""
    content: bytes | None = None
    channels: list[str] = field(default_factory=list)

    def to_api(self, permalink_host: str, base_url: str) -> JsonDict:
        """Shape the file like files.completeUploadExternal does."""
        size = len(self.content) if self.content is not None else self.length
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.name,
            "title": self.title or self.name,
            "mimetype": "application/octet-stream",
            "filetype": self.name.rsplit(".", 1)[-1] if "." in self.name else "binary",
            "user": self.user,
            "size": size,
            "is_public": False,
            "url_private": f"{base_url}/files/{self.id}/{self.name}",
            "permalink": f"{permalink_host}/files/{self.user}/{self.id}/{self.name}",
            "channels": list(self.channels),
        }


@dataclass
class Call:
    """One Web API call as the fake saw it, recorded even when it failed.

    `at` is when the request arrived; `applied_at` is when the call took effect on the
    workspace (after any delay the fault plan adds), and stays None for a call that was
    refused, failed or dropped unapplied: what people in Slack see changes at `applied_at`.
    """

    method: str
    args: JsonDict
    ok: bool
    error: str | None
    at: float
    status: int = 200
    applied_at: float | None = None

    def to_json(self) -> JsonDict:
        """Serialise for the HTTP control surface."""
        return {
            "method": self.method,
            "args": self.args,
            "ok": self.ok,
            "error": self.error,
            "at": self.at,
            "status": self.status,
            "applied_at": self.applied_at,
        }


class TimestampClock:
    """Issue message timestamps from real time, strictly increasing and unique.

    Slack `ts` values identify messages, so two messages posted in the same microsecond
    must still differ; the clock steps forward by one microsecond when needed.
    """

    def __init__(self, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._last = 0

    def after(self, ts: str) -> None:
        """Never issue `ts` or anything before it."""
        seconds, _, micros = ts.partition(".")
        self._last = max(self._last, int(seconds) * 1_000_000 + int(micros.ljust(6, "0")[:6]))

    def next(self) -> str:
        """Return the next ts as Slack formats it: seconds, a dot, six digits."""
        micros = max(int(self._now() * 1_000_000), self._last + 1)
        self._last = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


class Workspace:
    """All state of the fake workspace, with the lookups the API handlers need."""

    def __init__(
        self,
        *,
        team_id: str,
        team_name: str,
        bot_user_id: str,
        bot_name: str,
        seed: int | None = None,
        now: Callable[[], float] = time.time,
    ) -> None:
        # The workspace's time (epoch seconds): message timestamps, creation times. Real time
        # unless the fake is given a clock of its own (a sandbox running faster than life).
        self.now = now
        self.team_id = team_id
        self.team_name = team_name
        self.bot_user_id = bot_user_id
        self.bot_id = "B" + bot_user_id.lstrip("U")[:10].ljust(10, "0")
        self.app_id = "A" + bot_user_id.lstrip("U")[:10].ljust(10, "0")
        self.base_url = ""
        self._rng = random.Random(seed)
        self._clock = TimestampClock(now)
        self._issued_ids: set[str] = set()
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, UserGroup] = {}
        self.add_user(User(id=bot_user_id, name=bot_name, real_name=bot_name, is_bot=True))
        self.clear_conversations()

    def clear_conversations(self) -> None:
        """Forget everything the bot created, keeping the directory (users, groups)."""
        self.channels: dict[str, Channel] = {}
        self.channel_ids_by_name: dict[str, str] = {}
        self.ims: dict[str, str] = {}
        self.history: dict[str, list[Message]] = {}
        self.threads: dict[tuple[str, str], list[Message]] = {}
        self.index: dict[tuple[str, str], Message] = {}
        self.pins: dict[str, list[Pin]] = {}
        # bookmarks.add: each conversation's bookmarks, as Slack returns them.
        self.bookmarks: dict[str, list[JsonDict]] = {}
        self.views: dict[str, JsonDict] = {}
        self.home_views: dict[str, JsonDict] = {}
        self.view_revisions: dict[str, int] = {}
        self.view_stacks: list[list[str]] = []
        self.used_triggers: set[str] = set()
        self.trigger_views: dict[str, str] = {}
        # The trigger each modal was opened (or pushed) with: who it was shown to.
        self.view_triggers: dict[str, str] = {}
        self.files: dict[str, StoredFile] = {}
        self.ephemeral: list[EphemeralMessage] = []

    # ids and time -------------------------------------------------------------------

    def new_id(self, prefix: str, length: int = 10) -> str:
        """Issue a Slack-looking id (`C0A1B2C3D4`), never the same twice."""
        while True:
            candidate = prefix + "".join(self._rng.choices(_ID_ALPHABET, k=length))
            if candidate not in self._issued_ids:
                self._issued_ids.add(candidate)
                return candidate

    def next_ts(self) -> str:
        """Issue the next message timestamp."""
        return self._clock.next()

    def remember_ids(self, ids: list[str]) -> None:
        """Ids issued before (a restored workspace): never issued again."""
        self._issued_ids.update(ids)

    def after_ts(self, ts: str) -> None:
        """Message timestamps from now on come after `ts` (a restored workspace's last)."""
        self._clock.after(ts)

    # directory ---------------------------------------------------------------------

    def add_user(self, user: User) -> User:
        """Register a user; re-adding an id replaces it so tests can tweak profiles."""
        self.users[user.id] = user
        return user

    def add_usergroup(self, group: UserGroup) -> UserGroup:
        """Register a user group."""
        self.usergroups[group.id] = group
        return group

    # conversations -----------------------------------------------------------------

    def add_channel(self, channel: Channel) -> Channel:
        """Register a conversation and index it by name."""
        self.channels[channel.id] = channel
        if channel.name:
            self.channel_ids_by_name[channel.name] = channel.id
        self.history[channel.id] = []
        self.pins[channel.id] = []
        return channel

    def channel_named(self, name: str) -> Channel | None:
        """Find a named channel (archived ones too: their names stay taken)."""
        channel_id = self.channel_ids_by_name.get(name)
        return self.channels.get(channel_id) if channel_id else None

    def open_im(self, user_id: str) -> Channel:
        """Return the bot's IM with a user, creating it once; Slack reuses the same id."""
        existing = self.ims.get(user_id)
        if existing:
            return self.channels[existing]
        channel = Channel(
            id=self.new_id("D"),
            name="",
            created=int(self.now()),
            creator=self.bot_user_id,
            is_im=True,
            members=[self.bot_user_id, user_id],
            im_user=user_id,
        )
        self.ims[user_id] = channel.id
        return self.add_channel(channel)

    def close_view(self, view_id: str) -> list[str]:
        """A person closed a modal (or it was submitted and not kept open): the view and the
        ones pushed above it leave their stack. Returns the ids closed, top first."""
        for stack in self.view_stacks:
            if view_id in stack:
                closed = stack[stack.index(view_id) :]
                del stack[stack.index(view_id) :]
                if not stack:
                    self.view_stacks.remove(stack)
                return closed[::-1]
        return []

    def open_stack(self, view_id: str) -> list[str] | None:
        """The modal stack a view is in, bottom first, while it is open."""
        return next((stack for stack in self.view_stacks if view_id in stack), None)

    # messages ----------------------------------------------------------------------

    def add_message(self, message: Message) -> Message:
        """Store a message in channel history and, for replies, in its thread."""
        self.history[message.channel].append(message)
        self.index[(message.channel, message.ts)] = message
        if message.is_reply and message.thread_ts is not None:
            self.threads.setdefault((message.channel, message.thread_ts), []).append(message)
        return message

    def find_message(self, channel_id: str, ts: str | None) -> Message | None:
        """Find any message (top level or reply) by its exact ts."""
        if not ts:
            return None
        return self.index.get((channel_id, ts))

    def thread_replies(self, channel_id: str, parent_ts: str) -> list[Message]:
        """Replies of a thread, oldest first, without the parent."""
        return list(self.threads.get((channel_id, parent_ts), []))

    def channel_messages(self, channel_id: str) -> list[Message]:
        """What the channel shows: top-level messages and broadcast replies, oldest first."""
        return [m for m in self.history[channel_id] if not m.is_reply or m.reply_broadcast]

    def message_api(self, message: Message) -> JsonDict:
        """Shape a message, adding thread counters when it is a parent."""
        replies = None if message.is_reply else self.threads.get((message.channel, message.ts))
        data = message.to_api(self.team_id, replies)
        if message.files:
            data["files"] = [
                self.files[file_id].to_api(PERMALINK_HOST, self.base_url)
                for file_id in message.files
                if file_id in self.files
            ]
            data["upload"] = False
        return data

    def channel_api(self, channel: Channel) -> JsonDict:
        """Shape a channel as the bot sees it."""
        return channel.to_api(self.bot_user_id, self.team_id)

    def permalink(self, channel_id: str, message: Message) -> str:
        """Build a permalink in Slack's format (`p` + ts without the dot)."""
        link = f"{PERMALINK_HOST}/archives/{channel_id}/p{message.ts.replace('.', '')}"
        if message.is_reply:
            link += f"?thread_ts={message.thread_ts}&cid={channel_id}"
        return link
