"""chat.* methods of the fake Web API."""

from __future__ import annotations

from .api_common import (
    Handler,
    get_channel,
    read_attachments,
    read_blocks,
    read_content,
    require_active,
    require_can_post,
    resolve_target,
    thread_parent,
)
from .args import ApiError, Args
from .state import EphemeralMessage, JsonDict, Message, MessageEdit, Workspace

_POST_OPTIONS = ("unfurl_links", "unfurl_media", "mrkdwn", "link_names", "parse", "username")


def _options(args: Args) -> JsonDict:
    """Presentation flags are kept so tests can check, e.g., that unfurling was disabled."""
    return {key: args.raw(key) for key in _POST_OPTIONS if args.raw(key) is not None}


def post_message(ws: Workspace, args: Args) -> JsonDict:
    """chat.postMessage to a channel id, an IM id, a user id (their IM) or a #name."""
    channel = resolve_target(ws, args.text("channel"))
    require_can_post(ws, channel)
    text, blocks, attachments = read_content(args)
    parent = thread_parent(ws, channel, args.text("thread_ts"))
    message = Message(
        ts=ws.next_ts(),
        channel=channel.id,
        user=ws.bot_user_id,
        text=text or "",
        blocks=blocks,
        attachments=attachments,
        thread_ts=parent.ts if parent else None,
        reply_broadcast=bool(parent) and args.flag("reply_broadcast"),
        metadata=args.structured("metadata", "invalid_metadata_format"),
        bot_id=ws.bot_id,
        options=_options(args),
    )
    ws.add_message(message)
    return {"channel": channel.id, "ts": message.ts, "message": ws.message_api(message)}


def _updated_content(args: Args, message: Message) -> tuple[str, list[JsonDict] | None]:
    """New text/blocks; omitted fields keep their old value, as chat.update does."""
    text = args.text("text")
    blocks = read_blocks(args, "message")
    attachments = read_attachments(args)
    if text is None and blocks is None and attachments is None:
        raise ApiError("no_text")
    if text is not None and len(text) > 40_000:
        raise ApiError("msg_too_long")
    if attachments is not None:
        message.attachments = attachments
    return (message.text if text is None else text), (message.blocks if blocks is None else blocks)


def update(ws: Workspace, args: Args) -> JsonDict:
    """chat.update: only the bot's own messages; the old version goes to `edits`."""
    channel = get_channel(ws, args)
    message = ws.find_message(channel.id, args.text("ts"))
    if message is None:
        raise ApiError("message_not_found")
    if message.user != ws.bot_user_id:
        raise ApiError("cant_update_message")
    require_active(channel)
    text, blocks = _updated_content(args, message)
    message.edits.append(MessageEdit(message.text, message.blocks, ws.next_ts()))
    message.text, message.blocks = text, blocks
    return {
        "channel": channel.id,
        "ts": message.ts,
        "text": message.text,
        "message": ws.message_api(message),
    }


def post_ephemeral(ws: Workspace, args: Args) -> JsonDict:
    """chat.postEphemeral: the user must be in the conversation; nothing is stored there."""
    channel = resolve_target(ws, args.text("channel"))
    require_can_post(ws, channel)
    user = args.text("user") or ""
    if user not in ws.users:
        raise ApiError("user_not_found")
    if not channel.has_member(user):
        raise ApiError("user_not_in_channel")
    text, blocks, _attachments = read_content(args)
    ts = ws.next_ts()
    ws.ephemeral.append(
        EphemeralMessage(channel.id, user, text or "", blocks, args.text("thread_ts"), ts)
    )
    return {"message_ts": ts}


def get_permalink(ws: Workspace, args: Args) -> JsonDict:
    """chat.getPermalink: Slack-shaped link for an existing message."""
    channel = get_channel(ws, args)
    message = ws.find_message(channel.id, args.text("message_ts"))
    if message is None:
        raise ApiError("message_not_found")
    return {"channel": channel.id, "permalink": ws.permalink(channel.id, message)}


HANDLERS: dict[str, Handler] = {
    "chat.postMessage": post_message,
    "chat.update": update,
    "chat.postEphemeral": post_ephemeral,
    "chat.getPermalink": get_permalink,
}
