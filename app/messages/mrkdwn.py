"""Slack mrkdwn escaping and the few trusted tokens the bot itself writes.

Only `&`, `<` and `>` are control characters in mrkdwn; every mention, link and broadcast needs
a literal `<`. Escaping those three in all user text is therefore what stops `<!channel>` from
pinging anyone. Values the bot builds itself (mentions of known IDs, date tokens, links) are
marked `Mrkdwn` so the template layer knows not to escape them again.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlparse
from zoneinfo import ZoneInfo

_ID = re.compile(r"^[UWCGDS][A-Z0-9]{2,}$")


class Mrkdwn(str):
    """A string that is already valid, safe mrkdwn."""

    __slots__ = ()


def escape(text: object) -> Mrkdwn:
    if isinstance(text, Mrkdwn):
        return text
    value = str(text)
    return Mrkdwn(value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def is_user_id(value: str) -> bool:
    """Whether `value` is a Slack user or user-group ID (not a name such as an alert source)."""
    return _ID.match(value) is not None


def user(user_id: str | None, fallback: str = "_unassigned_") -> Mrkdwn:
    if not user_id:
        return Mrkdwn(fallback)
    if not _ID.match(user_id):
        return escape(user_id)
    if user_id.startswith("S"):
        return Mrkdwn(f"<!subteam^{user_id}>")
    return Mrkdwn(f"<@{user_id}>")


def channel(channel_id: str | None, fallback: str = "_not created yet_") -> Mrkdwn:
    if not channel_id or not _ID.match(channel_id):
        return Mrkdwn(fallback)
    return Mrkdwn(f"<#{channel_id}>")


def date(moment: datetime | None, style: str = "{date_short_pretty} {time}") -> Mrkdwn:
    """A `<!date>` token: each reader sees their own time zone; the fallback is UTC."""
    if moment is None:
        return Mrkdwn("_unknown_")
    epoch = int(moment.timestamp())
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return Mrkdwn(f"<!date^{epoch}^{style}|{fallback}>")


def clock(moment: datetime | None, zone: str = "UTC") -> str:
    """A time of day in `zone` (the workspace's), for plain text: "14:30 CET". A time on
    another day than the promise's reader might assume is still unambiguous within a day."""
    if moment is None:
        return "unknown"
    return moment.astimezone(ZoneInfo(zone)).strftime("%H:%M %Z")


def due(moment: datetime | None, zone: str = "UTC") -> Mrkdwn:
    """A `<!date>` time of day: each reader sees it in their own time zone; the fallback is
    the time in `zone`."""
    if moment is None:
        return Mrkdwn("_unknown_")
    return Mrkdwn(f"<!date^{int(moment.timestamp())}^{{time}}|{clock(moment, zone)}>")


def link(url: str | None, label: str | None = None) -> Mrkdwn:
    """A link for a configured URL; plain text when it is not http(s)."""
    if not url:
        return Mrkdwn("_not configured_")
    parsed = urlparse(url)
    if parsed.scheme not in {"http", "https"} or "|" in url or ">" in url or "<" in url:
        return escape(url)
    if label:
        return Mrkdwn(f"<{url}|{escape(label)}>")
    return Mrkdwn(f"<{url}>")


def plain(text: object) -> str:
    """Text for places Slack shows verbatim (channel topics): no control characters at all."""
    return re.sub(r"[<>&\x00-\x1f]", "", str(text))
