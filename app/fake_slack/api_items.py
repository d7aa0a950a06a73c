"""pins.* and reactions.* methods of the fake Web API."""

from __future__ import annotations

from .api_common import Handler, require_member, visible_channel
from .args import ApiError, Args
from .state import Channel, JsonDict, Message, Pin, Workspace


def _target(ws: Workspace, args: Args) -> tuple[Channel, Message]:
    """The channel and message an item method points at (`channel` + `timestamp`)."""
    channel = visible_channel(ws, args)
    require_member(ws, channel)
    message = ws.find_message(channel.id, args.text("timestamp"))
    if message is None:
        raise ApiError("message_not_found")
    return channel, message


def pins_add(ws: Workspace, args: Args) -> JsonDict:
    """pins.add: once per message."""
    channel, message = _target(ws, args)
    pins = ws.pins[channel.id]
    if any(pin.ts == message.ts for pin in pins):
        raise ApiError("already_pinned")
    pins.append(Pin(message.ts, int(ws.now()), ws.bot_user_id))
    return {}


def pins_remove(ws: Workspace, args: Args) -> JsonDict:
    """pins.remove."""
    channel, message = _target(ws, args)
    pins = ws.pins[channel.id]
    kept = [pin for pin in pins if pin.ts != message.ts]
    if len(kept) == len(pins):
        raise ApiError("no_pin")
    ws.pins[channel.id] = kept
    return {}


def pins_list(ws: Workspace, args: Args) -> JsonDict:
    """pins.list: newest pin first, as Slack lists them."""
    channel = visible_channel(ws, args)
    items = []
    for pin in reversed(ws.pins[channel.id]):
        message = ws.find_message(channel.id, pin.ts)
        if message is None:
            continue
        items.append(
            {
                "type": "message",
                "created": pin.created,
                "created_by": pin.created_by,
                "channel": channel.id,
                "message": ws.message_api(message),
            }
        )
    return {"items": items}


def reactions_add(ws: Workspace, args: Args) -> JsonDict:
    """reactions.add: one reaction per name per user."""
    _channel, message = _target(ws, args)
    name = (args.text("name") or "").strip(":")
    if not name:
        raise ApiError("invalid_name")
    users = message.reactions.setdefault(name, [])
    if ws.bot_user_id in users:
        raise ApiError("already_reacted")
    users.append(ws.bot_user_id)
    return {}


HANDLERS: dict[str, Handler] = {
    "pins.add": pins_add,
    "pins.remove": pins_remove,
    "pins.list": pins_list,
    "reactions.add": reactions_add,
}
