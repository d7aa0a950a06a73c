"""What the page shows one person: the people, their conversations, the one they have open
(messages, threads, pins, the answers only they see), their Home tab and their open form.

Texts and blocks go to the page as the bot sent them (mrkdwn and Block Kit); the page renders
them, escaping everything, as Slack's clients do.
"""

from __future__ import annotations

from typing import Any

from app.fake_slack.state import Channel, Message
from app.sandbox.requests import JsonDict
from app.sandbox.world import BOT_USER, Ephemeral, Sandbox


def state(sandbox: Sandbox, viewer: str, channel_id: str | None) -> JsonDict:
    ws = sandbox.workspace
    known = viewer in ws.users and not ws.users[viewer].is_bot
    people = [
        {
            "id": user.id,
            "name": user.name,
            "real_name": user.real_name,
            "is_bot": user.is_bot,
            "functions": sandbox.cast.people[user.id].functions
            if user.id in sandbox.cast.people
            else [],
        }
        for user in ws.users.values()
        if not user.deleted
    ]
    data: JsonDict = {
        "version": sandbox.fake.version,
        "clock": {"now": sandbox.clock.epoch(), "speed": sandbox.speed},
        "team": ws.team_name,
        "bot": BOT_USER,
        "people": people,
        "groups": [{"id": g.id, "handle": g.handle} for g in ws.usergroups.values()],
        "channels": [],
        "open": None,
        "home": None,
        "modal": None,
    }
    if not known:
        return data
    visible = [c for c in ws.channels.values() if sandbox.can_see(viewer, c)]
    data["channels"] = [_channel(sandbox, c, viewer) for c in sorted(visible, key=_order)]
    if channel_id and any(c.id == channel_id for c in visible):
        data["open"] = _conversation(sandbox, ws.channels[channel_id], viewer)
    home = ws.home_views.get(viewer)
    data["home"] = home
    data["modal"] = sandbox.modal_for(viewer)
    return data


def _order(channel: Channel) -> tuple[int, str]:
    return (1 if channel.is_im or channel.is_mpim else 0, channel.name)


def _channel(sandbox: Sandbox, channel: Channel, viewer: str) -> JsonDict:
    kind = "im" if channel.is_im else "mpim" if channel.is_mpim else "channel"
    # The only direct messages in the sandbox are the bot's, with the viewer.
    name = sandbox.workspace.users[BOT_USER].name if channel.is_im else channel.name
    return {
        "id": channel.id,
        "name": name,
        "kind": kind,
        "private": channel.is_private,
        "archived": channel.is_archived,
        "member": channel.has_member(viewer),
        "topic": channel.topic,
        "last": _last_ts(sandbox, channel),
    }


def _last_ts(sandbox: Sandbox, channel: Channel) -> str:
    history = sandbox.workspace.history.get(channel.id) or []
    return history[-1].ts if history else ""


def _conversation(sandbox: Sandbox, channel: Channel, viewer: str) -> JsonDict:
    ws = sandbox.workspace
    pinned = [pin.ts for pin in ws.pins.get(channel.id, [])]
    messages = [_message(sandbox, m, pinned) for m in ws.channel_messages(channel.id)]
    threads: dict[str, list[JsonDict]] = {}
    for (channel_id, parent), replies in ws.threads.items():
        if channel_id == channel.id:
            threads[parent] = [_message(sandbox, m, pinned) for m in replies]
    pins = []
    for ts in reversed(pinned):
        message = ws.find_message(channel.id, ts)
        if message is not None:
            pins.append(_message(sandbox, message, pinned))
    return {
        **_channel(sandbox, channel, viewer),
        "members": list(channel.members),
        "messages": messages,
        "threads": threads,
        "pins": pins,
        "ephemeral": [_ephemeral(e) for e in sandbox.ephemera_for(viewer, channel.id)],
    }


def _message(sandbox: Sandbox, message: Message, pinned: list[str]) -> JsonDict:
    ws = sandbox.workspace
    replies = [] if message.is_reply else ws.thread_replies(message.channel, message.ts)
    files = [ws.files[f] for f in message.files if f in ws.files]
    data: dict[str, Any] = {
        "ts": message.ts,
        "user": message.user,
        "text": message.text,
        "blocks": message.blocks,
        "thread_ts": message.thread_ts if message.is_reply else None,
        "broadcast": message.reply_broadcast,
        "reply_count": len(replies),
        "edited": message.edited,
        "pinned": message.ts in pinned,
        "reactions": [{"name": n, "users": list(u)} for n, u in message.reactions.items() if u],
        "files": [
            {
                "id": f.id,
                "name": f.name,
                "title": f.title or f.name,
                "size": len(f.content or b""),
            }
            for f in files
        ],
    }
    return data


def _ephemeral(shown: Ephemeral) -> JsonDict:
    return {
        "id": shown.id,
        "ts": shown.ts,
        "text": shown.text,
        "blocks": shown.blocks,
        "thread_ts": shown.thread_ts,
    }
