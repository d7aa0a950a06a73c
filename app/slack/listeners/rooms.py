"""Channel events: a room that takes posts again, and someone arriving in a war room.

A room takes posts again when Slack says a channel was unarchived, or that Warroom was added
back to a (private) channel. The messages an incident held for it go out at once, in order,
and the topic, pin and headline Slack refused are redone, instead of at the next retry.

Anyone else joining an incident's channel gets the catch-up by DM (`CatchUps.on_join`: at most
once a person per 30 minutes, not for bots nor the people running the incident).

These events are registered with the `NOTHING` subject and look the incident up by the channel
themselves: the bot joining has no acting person who must see the incident, nor has the
unarchiving (nothing is shown to anyone), and the catch-up establishes sight of its own
(`Access.can_see`) before anything is recorded or sent, so a person who may not see a private
incident gets nothing.
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
        user, channel = event.get("user"), event.get("channel")
        if own_user and user == own_user:
            await works_again(bot, channel, "Warroom added")
        elif isinstance(user, str) and isinstance(channel, str) and user and channel:
            await bot.flows.catch_up_on_join(channel, user)

    gate.on_event(bot, "member_joined_channel", gate.NOTHING, joined)


async def works_again(bot: Bot, channel: object, why: str) -> None:
    if not isinstance(channel, str) or not channel:
        return
    incidents = await bot.flows.room_works_again(channel)
    if incidents:
        log.info("%s takes posts again (%s): incidents %s", channel, why, incidents)
