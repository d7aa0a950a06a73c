"""Buttons whose value is a number (an incident, an action item): one way to register them.

Every such button does the same dance: acknowledge at once, read the number, then run the work
and tell the clicker privately what went wrong, if anything.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot

Work = Callable[[int, dict[str, Any], Replier], Awaitable[None]]


def replier(bot: Bot, body: dict[str, Any]) -> Replier:
    return Replier(bot.services.slack, body["user"]["id"], body.get("response_url"))


def number(body: dict[str, Any]) -> int | None:
    try:
        return int(body["actions"][0]["value"])
    except (KeyError, IndexError, ValueError, TypeError):
        return None


def on_button(bot: Bot, action_id: str, work: Work) -> None:
    async def clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        reply, value = replier(bot, body), number(body)
        if value is not None:
            await reply.run(lambda: work(value, body, reply))

    clicked.__name__ = f"clicked_{action_id}"
    bot.app.action(action_id)(bot.inflight.track(clicked))
