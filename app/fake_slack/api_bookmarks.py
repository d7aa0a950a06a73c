"""bookmarks.* methods of the fake Web API (https://docs.slack.dev/reference/methods/bookmarks.add).

Slack's bookmarks API accepts one type, `link`: a title and a link, shown in the channel's
header. A conversation holds at most 100 bookmarks.
"""

from __future__ import annotations

from .api_common import Handler, get_channel, require_active, require_member
from .args import ApiError, Args
from .state import JsonDict, Workspace

MAX_BOOKMARKS = 100


def bookmarks_add(ws: Workspace, args: Args) -> JsonDict:
    """bookmarks.add: `channel_id`, `title`, `type` (only `link`) and `link` are required."""
    channel = get_channel(ws, args, "channel_id")
    if channel.is_private and not channel.has_member(ws.bot_user_id):
        raise ApiError("channel_not_found")
    require_active(channel)
    require_member(ws, channel)
    title = (args.text("title") or "").strip()
    if not title:
        raise ApiError("invalid_arguments")
    if args.text("type") != "link":
        raise ApiError("invalid_bookmark_type")
    link = (args.text("link") or "").strip()
    if not link.startswith(("http://", "https://")):
        raise ApiError("invalid_link")
    bookmarks = ws.bookmarks.setdefault(channel.id, [])
    if len(bookmarks) >= MAX_BOOKMARKS:
        raise ApiError("too_many_bookmarks")
    now = int(ws.now())
    bookmark: JsonDict = {
        "id": ws.new_id("Bk"),
        "channel_id": channel.id,
        "title": title,
        "link": link,
        "emoji": args.text("emoji"),
        "icon_url": None,
        "type": "link",
        "entity_id": None,
        "date_created": now,
        "date_updated": 0,
        "rank": chr(ord("a") + len(bookmarks) % 26),
        "last_updated_by_user_id": ws.bot_user_id,
        "last_updated_by_team_id": ws.team_id,
        "shortcut_id": None,
        "app_id": ws.app_id,
    }
    bookmarks.append(bookmark)
    return {"bookmark": dict(bookmark)}


def bookmarks_list(ws: Workspace, args: Args) -> JsonDict:
    """bookmarks.list: the channel's bookmarks, in the order they were added."""
    channel = get_channel(ws, args, "channel_id")
    if channel.is_private and not channel.has_member(ws.bot_user_id):
        raise ApiError("channel_not_found")
    return {"bookmarks": [dict(b) for b in ws.bookmarks.get(channel.id, [])]}


HANDLERS: dict[str, Handler] = {
    "bookmarks.add": bookmarks_add,
    "bookmarks.list": bookmarks_list,
}
