"""The workspace as JSON and back, so a fake that runs for people (the sandbox) keeps its
channels, messages, pins, views and files across restarts, as the bot's database keeps the
incidents that point at them.

Open modal stacks and used trigger ids are not kept: a restart closes every modal, as
reloading Slack does.
"""

from __future__ import annotations

import base64
from dataclasses import asdict, fields
from typing import Any

from .state import (
    Channel,
    EphemeralMessage,
    JsonDict,
    Message,
    MessageEdit,
    Pin,
    StoredFile,
    User,
    UserGroup,
    Workspace,
)

FORMAT = 1


def dump(ws: Workspace) -> JsonDict:
    """Everything the workspace holds, as JSON-ready data."""
    return {
        "format": FORMAT,
        "users": [asdict(u) for u in ws.users.values()],
        "usergroups": [asdict(g) for g in ws.usergroups.values()],
        "channels": [asdict(c) for c in ws.channels.values()],
        "messages": [asdict(m) for m in _all_messages(ws)],
        "pins": {channel: [asdict(p) for p in pins] for channel, pins in ws.pins.items()},
        "bookmarks": ws.bookmarks,
        "views": ws.views,
        "home_views": ws.home_views,
        "view_revisions": ws.view_revisions,
        "files": [_file(f) for f in ws.files.values()],
        "ephemeral": [asdict(e) for e in ws.ephemeral],
    }


def _all_messages(ws: Workspace) -> list[Message]:
    return [m for channel in ws.channels for m in ws.history.get(channel, [])]


def _file(stored: StoredFile) -> JsonDict:
    data = asdict(stored)
    data["content"] = None if stored.content is None else base64.b64encode(stored.content).decode()
    return data


def _only_fields(cls: type, data: dict[str, Any]) -> dict[str, Any]:
    known = {f.name for f in fields(cls)}
    return {k: v for k, v in data.items() if k in known}


def load(ws: Workspace, data: JsonDict) -> None:
    """Replace the workspace's content with a dump's. Raises ValueError for a dump this
    version cannot read."""
    if data.get("format") != FORMAT:
        raise ValueError(f"unknown workspace format {data.get('format')!r}")
    ws.clear_conversations()
    for user in data["users"]:
        ws.add_user(User(**_only_fields(User, user)))
    for group in data["usergroups"]:
        ws.add_usergroup(UserGroup(**_only_fields(UserGroup, group)))
    for raw in data["channels"]:
        channel = ws.add_channel(Channel(**_only_fields(Channel, raw)))
        if channel.is_im and channel.im_user:
            ws.ims[channel.im_user] = channel.id
    for raw in data["messages"]:
        raw = _only_fields(Message, raw)
        raw["edits"] = [MessageEdit(**e) for e in raw.get("edits") or []]
        if raw["channel"] in ws.channels:
            ws.add_message(Message(**raw))
    for channel, pins in data["pins"].items():
        if channel in ws.channels:
            ws.pins[channel] = [Pin(**p) for p in pins]
    for channel, bookmarks in (data.get("bookmarks") or {}).items():
        if channel in ws.channels:
            ws.bookmarks[channel] = list(bookmarks)
    ws.views.update(data["views"])
    ws.home_views.update(data["home_views"])
    ws.view_revisions.update(data["view_revisions"])
    for raw in data["files"]:
        raw = _only_fields(StoredFile, raw)
        content = raw.get("content")
        raw["content"] = None if content is None else base64.b64decode(content)
        stored = StoredFile(**raw)
        ws.files[stored.id] = stored
    ws.ephemeral.extend(EphemeralMessage(**e) for e in data["ephemeral"])
    ws.remember_ids([*ws.users, *ws.usergroups, *ws.channels, *ws.views, *ws.files])
    ws.after_ts(max((m.ts for m in _all_messages(ws)), key=float, default="0"))
