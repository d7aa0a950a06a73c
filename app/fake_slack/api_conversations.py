"""conversations.* methods of the fake Web API."""

from __future__ import annotations

import string

from .api_common import (
    Handler,
    get_channel,
    page_body,
    require_active,
    require_member,
    visible_channel,
)
from .args import ApiError, Args, paginate
from .state import Channel, JsonDict, Message, Workspace

MAX_NAME = 80
MAX_TOPIC = 250
MAX_INVITES = 100
_NAME_CHARS = frozenset(string.ascii_lowercase + string.digits + "-_")
_TYPES = frozenset({"public_channel", "private_channel", "im", "mpim"})


def check_channel_name(ws: Workspace, name: str) -> None:
    """Apply Slack's channel-name rules in Slack's order of errors."""
    if not name:
        raise ApiError("invalid_name_required")
    if len(name) > MAX_NAME:
        raise ApiError("invalid_name_maxlength")
    if any(char not in _NAME_CHARS for char in name):
        raise ApiError("invalid_name_specials")
    if all(char in "-_" for char in name):
        raise ApiError("invalid_name_punctuation")
    if ws.channel_named(name) is not None:
        raise ApiError("name_taken")


def create(ws: Workspace, args: Args) -> JsonDict:
    """conversations.create: new channel with the bot as creator and only member."""
    name = args.text("name") or ""
    check_channel_name(ws, name)
    channel = Channel(
        id=ws.new_id("C"),
        name=name,
        created=int(ws.now()),
        creator=ws.bot_user_id,
        is_private=args.flag("is_private"),
        members=[ws.bot_user_id],
    )
    ws.add_channel(channel)
    return {"channel": ws.channel_api(channel)}


def _invitees(ws: Workspace, args: Args, channel: Channel) -> list[str]:
    """Validate conversations.invite's `users` and return those not yet members."""
    users = args.ids("users")
    if not users:
        raise ApiError("no_user")
    if len(users) > MAX_INVITES:
        raise ApiError("too_many_users")
    if ws.bot_user_id in users:
        raise ApiError("cant_invite_self")
    if any(user not in ws.users for user in users):
        raise ApiError("user_not_found")
    fresh = [user for user in dict.fromkeys(users) if not channel.has_member(user)]
    if not fresh:
        raise ApiError("already_in_channel")
    return fresh


def invite(ws: Workspace, args: Args) -> JsonDict:
    """conversations.invite: adds the users who are not members yet."""
    channel = get_channel(ws, args)
    require_active(channel)
    require_member(ws, channel)
    if channel.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    channel.members.extend(_invitees(ws, args, channel))
    return {"channel": ws.channel_api(channel)}


def join(ws: Workspace, args: Args) -> JsonDict:
    """conversations.join: bots may join public channels only."""
    channel = get_channel(ws, args)
    if channel.is_private or channel.is_im or channel.is_mpim:
        raise ApiError("method_not_supported_for_channel_type")
    require_active(channel)
    body: JsonDict = {}
    if channel.has_member(ws.bot_user_id):
        body["warning"] = "already_in_channel"
        body["response_metadata"] = {"warnings": ["already_in_channel"]}
    else:
        channel.members.append(ws.bot_user_id)
    return {"channel": ws.channel_api(channel), **body}


def set_topic(ws: Workspace, args: Args) -> JsonDict:
    """conversations.setTopic: 250 characters at most, bot must be a member."""
    channel = visible_channel(ws, args)
    require_active(channel)
    require_member(ws, channel)
    topic = args.text("topic") or ""
    if len(topic) > MAX_TOPIC:
        raise ApiError("too_long")
    channel.topic = topic
    channel.topic_creator = ws.bot_user_id
    channel.topic_last_set = int(ws.now())
    return {"channel": ws.channel_api(channel)}


def archive(ws: Workspace, args: Args) -> JsonDict:
    """conversations.archive: members only, once."""
    channel = visible_channel(ws, args)
    if channel.is_im:
        raise ApiError("method_not_supported_for_channel_type")
    if channel.is_archived:
        raise ApiError("already_archived")
    require_member(ws, channel)
    channel.is_archived = True
    return {}


def info(ws: Workspace, args: Args) -> JsonDict:
    """conversations.info."""
    return {"channel": ws.channel_api(visible_channel(ws, args))}


def _listed(ws: Workspace, channel: Channel, types: set[str], exclude_archived: bool) -> bool:
    """Whether conversations.list shows this conversation for the requested types."""
    if exclude_archived and channel.is_archived:
        return False
    if channel.is_im:
        return "im" in types
    if channel.is_mpim:
        return "mpim" in types and channel.has_member(ws.bot_user_id)
    if channel.is_private:
        return "private_channel" in types and channel.has_member(ws.bot_user_id)
    return "public_channel" in types


def list_conversations(ws: Workspace, args: Args) -> JsonDict:
    """conversations.list: paginated, oldest first; private ones only when the bot is in."""
    types = set(args.ids("types")) or {"public_channel"}
    if not types <= _TYPES:
        raise ApiError("invalid_types")
    exclude = args.flag("exclude_archived")
    chosen = [c for c in ws.channels.values() if _listed(ws, c, types, exclude)]
    page, next_cursor = paginate(chosen, args)
    return page_body("channels", [ws.channel_api(c) for c in page], next_cursor)


def members(ws: Workspace, args: Args) -> JsonDict:
    """conversations.members: paginated member ids."""
    channel = visible_channel(ws, args)
    page, next_cursor = paginate(channel.members, args)
    return page_body("members", page, next_cursor)


def open_conversation(ws: Workspace, args: Args) -> JsonDict:
    """conversations.open: the bot's IM with one user (stable id), or a group IM."""
    if args.text("channel"):
        return {"channel": ws.channel_api(get_channel(ws, args)), "already_open": True}
    users = [u for u in args.ids("users") if u != ws.bot_user_id]
    if not users:
        raise ApiError("users_list_not_supplied")
    if any(user not in ws.users for user in users):
        raise ApiError("user_not_found")
    if len(users) == 1:
        return {"channel": ws.channel_api(ws.open_im(users[0]))}
    return {"channel": ws.channel_api(_open_mpim(ws, users))}


def _open_mpim(ws: Workspace, users: list[str]) -> Channel:
    """Group IMs are identified by their member set, so reopening returns the same one."""
    wanted = {ws.bot_user_id, *users}
    for channel in ws.channels.values():
        if channel.is_mpim and set(channel.members) == wanted:
            return channel
    names = [ws.users[u].name for u in sorted(wanted)]
    channel = Channel(
        id=ws.new_id("G"),
        name="mpdm-" + "--".join(names) + "-1",
        created=int(ws.now()),
        creator=ws.bot_user_id,
        is_mpim=True,
        members=[ws.bot_user_id, *users],
    )
    return ws.add_channel(channel)


def _readable(ws: Workspace, args: Args) -> Channel:
    """History needs the bot in the conversation (public channels included)."""
    channel = visible_channel(ws, args)
    require_member(ws, channel)
    return channel


def _ts_bound(args: Args, name: str, default: float) -> float:
    """Read `oldest`/`latest`; garbage is Slack's `invalid_ts_<name>`."""
    raw = args.text(name)
    if raw is None:
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ApiError(f"invalid_ts_{name}") from exc


def _in_range(ws: Workspace, channel: Channel, args: Args) -> list[Message]:
    """Channel messages newest first within `oldest`/`latest` (exclusive unless inclusive)."""
    oldest = _ts_bound(args, "oldest", 0.0)
    latest = _ts_bound(args, "latest", float("inf"))
    inclusive = args.flag("inclusive")
    chosen = []
    for message in reversed(ws.channel_messages(channel.id)):
        ts = float(message.ts)
        if oldest < ts < latest or (inclusive and ts in (oldest, latest)):
            chosen.append(message)
    return chosen


def history(ws: Workspace, args: Args) -> JsonDict:
    """conversations.history: newest first, paginated, thread replies left out."""
    channel = _readable(ws, args)
    shown = _in_range(ws, channel, args)
    page, next_cursor = paginate(shown, args, default_limit=100, max_limit=999)
    body = page_body("messages", [ws.message_api(m) for m in page], next_cursor)
    body["has_more"] = bool(next_cursor)
    body["pin_count"] = len(ws.pins.get(channel.id, []))
    return body


def replies(ws: Workspace, args: Args) -> JsonDict:
    """conversations.replies: the parent first, then its replies, oldest first."""
    channel = _readable(ws, args)
    message = ws.find_message(channel.id, args.text("ts"))
    if message is None:
        raise ApiError("thread_not_found")
    parent_ts = message.thread_ts if message.is_reply and message.thread_ts else message.ts
    parent = ws.find_message(channel.id, parent_ts) or message
    thread = [parent, *ws.thread_replies(channel.id, parent.ts)]
    page, next_cursor = paginate(thread, args, default_limit=1000)
    body = page_body("messages", [ws.message_api(m) for m in page], next_cursor)
    body["has_more"] = bool(next_cursor)
    return body


HANDLERS: dict[str, Handler] = {
    "conversations.create": create,
    "conversations.invite": invite,
    "conversations.join": join,
    "conversations.setTopic": set_topic,
    "conversations.archive": archive,
    "conversations.info": info,
    "conversations.list": list_conversations,
    "conversations.members": members,
    "conversations.open": open_conversation,
    "conversations.history": history,
    "conversations.replies": replies,
}
