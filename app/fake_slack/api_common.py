"""Checks shared by several fake Web API methods.

Slack applies the same rules across methods (a private channel the bot is not in looks
missing, archived channels refuse writes, threads need an existing parent); keeping those
rules in one place keeps every method consistent with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .args import ApiError, Args
from .limits import Surface, validate_blocks
from .state import Channel, JsonDict, Message, Workspace

Handler = Callable[[Workspace, Args], JsonDict]
MAX_TEXT = 40_000


def get_channel(ws: Workspace, args: Args, key: str = "channel") -> Channel:
    """The conversation named by an id argument, else `channel_not_found`."""
    channel = ws.channels.get(args.text(key) or "")
    if channel is None:
        raise ApiError("channel_not_found")
    return channel


def visible_channel(ws: Workspace, args: Args, key: str = "channel") -> Channel:
    """Like get_channel, but private channels without the bot do not exist for it."""
    channel = get_channel(ws, args, key)
    if channel.is_private and not channel.has_member(ws.bot_user_id):
        raise ApiError("channel_not_found")
    return channel


def require_member(ws: Workspace, channel: Channel) -> None:
    """Most channel writes need the bot inside the channel."""
    if not channel.has_member(ws.bot_user_id):
        raise ApiError("not_in_channel")


def require_active(channel: Channel) -> None:
    """Archived channels are read-only."""
    if channel.is_archived:
        raise ApiError("is_archived")


def resolve_target(ws: Workspace, ref: str | None) -> Channel:
    """Resolve chat.* `channel`: a conversation id, a user id (their IM) or a #name."""
    if not ref:
        raise ApiError("channel_not_found")
    channel = ws.channels.get(ref)
    if channel is not None:
        return channel
    if ref in ws.users:
        return ws.open_im(ref)
    named = ws.channel_named(ref.removeprefix("#"))
    if named is None:
        raise ApiError("channel_not_found")
    return named


def require_can_post(ws: Workspace, channel: Channel) -> None:
    """Public channels accept posts from outside (chat:write.public); private ones do not."""
    require_active(channel)
    if (channel.is_private or channel.is_mpim) and not channel.has_member(ws.bot_user_id):
        raise ApiError("not_in_channel")


def read_blocks(args: Args, surface: Surface) -> list[JsonDict] | None:
    """Decode `blocks` (JSON string or list) and enforce Block Kit limits."""
    blocks = args.structured("blocks", "invalid_blocks_format")
    if blocks is None:
        return None
    if not isinstance(blocks, list):
        raise ApiError("invalid_blocks_format")
    problems = validate_blocks(blocks, surface)
    if problems:
        raise ApiError(
            "invalid_blocks",
            errors=[p.removeprefix("[ERROR] ") for p in problems],
            response_metadata={"messages": problems},
        )
    return blocks


def read_attachments(args: Args) -> list[JsonDict] | None:
    """Decode legacy `attachments`; stored as given."""
    attachments = args.structured("attachments", "invalid_attachments")
    if attachments is None:
        return None
    if not isinstance(attachments, list):
        raise ApiError("invalid_attachments")
    return attachments


def read_content(args: Args) -> tuple[str | None, list[JsonDict] | None, list[JsonDict] | None]:
    """Text, blocks and attachments of a message write, with Slack's content errors."""
    text = args.text("text") or args.text("markdown_text")
    blocks = read_blocks(args, "message")
    attachments = read_attachments(args)
    if not text and not blocks and not attachments:
        raise ApiError("no_text")
    if text and len(text) > MAX_TEXT:
        raise ApiError("msg_too_long")
    return text, blocks, attachments


def thread_parent(ws: Workspace, channel: Channel, thread_ts: str | None) -> Message | None:
    """The parent a reply goes under; it must be an existing top-level message."""
    if not thread_ts:
        return None
    parent = ws.find_message(channel.id, thread_ts)
    if parent is None or parent.is_reply:
        raise ApiError("thread_not_found")
    return parent


def page_body(key: str, items: list[Any], next_cursor: str) -> JsonDict:
    """A paginated answer with Slack's response_metadata."""
    return {key: items, "response_metadata": {"next_cursor": next_cursor}}
