"""Messages people keep for the record: pinned in an incident channel, or marked with a
:pushpin: reaction, they join the incident's timeline at the time they were posted.

Slack delivers these through the Events API; the gate drops repeated deliveries by
`event_id` (after the acknowledgment), and the timeline keys each message by channel and ts,
so one message is one entry whether it is pinned, marked, or both.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.services.ports import SlackError
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.store import repo

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)
MARK = "pushpin"


def register(bot: Bot) -> None:
    # The gate drops what happens in a private incident's channel by someone who may not see it.
    async def pinned(seen: Seen, event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        message = item.get("message") or {}
        channel = event.get("channel_id") or item.get("channel")
        ts = message.get("ts") or item.get("ts")
        if item.get("type", "message") != "message" or not channel or not ts:
            return
        await keep(bot, channel, str(ts), seen.user, "pinned", message)

    gate.on_event(bot, "pin_added", gate.EVENT_CHANNEL, pinned)

    async def reacted(seen: Seen, event: dict[str, Any]) -> None:
        item = event.get("item") or {}
        if event.get("reaction") != MARK or item.get("type") != "message":
            return
        if item.get("channel") and item.get("ts"):
            await keep(bot, item["channel"], str(item["ts"]), seen.user, "marked")

    gate.on_event(bot, "reaction_added", gate.EVENT_CHANNEL, reacted)


async def keep(
    bot: Bot,
    channel: str,
    ts: str,
    by: str,
    how: str,
    message: dict[str, Any] | None = None,
) -> None:
    """Record the message on its incident's timeline; anything outside incident channels, and
    the bot's own pins (the Initial Notification), is not part of the story."""
    own_user = bot.services.bot_user_id or bot.identity.get("user_id", "")
    if by and by == own_user:
        return
    async with bot.db.session() as session:
        incident = await repo.by_channel(session, channel)
    if incident is None or incident.id is None or incident.notification_ts == ts:
        return
    slack = bot.services.slack
    try:
        if not message or "text" not in message:
            message = await slack.message_at(channel, ts) or {}
        permalink = await slack.permalink(channel, ts)
    except SlackError as exc:
        log.warning("incident %s: message %s not read (%s)", incident.id, ts, exc.code)
        message, permalink = message or {}, None
    author = message.get("user") or message.get("bot_id")
    added = await bot.timeline.keep_message(
        incident.id, channel, ts, author, str(message.get("text") or ""), permalink, by, how
    )
    if not added:
        log.info("incident %s: message %s already on the timeline", incident.id, ts)
