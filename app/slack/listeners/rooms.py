"""A room that takes posts again: Slack says a channel was unarchived, or that Warroom was
added back to a (private) channel. The messages an incident held for it go out at once, in
order, and the topic, pin and headline Slack refused are redone, instead of at the next retry.

These events have no acting person who must see the incident (the bot itself joined, or the
unarchiving needs no sight to be acted on: nothing is shown to anyone), so they are registered
with the `NOTHING` subject and look the incident up by the channel themselves.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.slack.listeners import gate
from app.slack.listeners.gate import Seen

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)

# Public channels send `channel_unarchive`, private ones `group_unarchive`.
UNARCHIVED = ("channel_unarchive", "group_unarchive")


def register(bot: Bot) -> None:
    async def unarchived(seen: Seen, event: dict[str, Any]) -> None:
        await works_again(bot, event.get("channel"), event.get("type", "unarchived"))

    for event_type in UNARCHIVED:
        gate.on_event(bot, event_type, gate.NOTHING, unarchived)

    async def joined(seen: Seen, event: dict[str, Any]) -> None:
        own_user = bot.services.bot_user_id or bot.identity.get("user_id", "")
        if own_user and event.get("user") == own_user:  # someone else joining changes nothing
            await works_again(bot, event.get("channel"), "Warroom added")

    gate.on_event(bot, "member_joined_channel", gate.NOTHING, joined)


async def works_again(bot: Bot, channel: object, why: str) -> None:
    if not isinstance(channel, str) or not channel:
        return
    incidents = await bot.flows.room_works_again(channel)
    if incidents:
        log.info("%s takes posts again (%s): incidents %s", channel, why, incidents)
