"""Buttons on incident messages and the "Declare incident" message shortcut."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.messages import mrkdwn
from app.slack import views
from app.slack.listeners import buttons, modals
from app.slack.listeners.buttons import on_button
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot

SHORTCUT = "declare_from_message"


def register(bot: Bot) -> None:
    app = bot.app

    def replier(body: dict[str, Any]) -> Replier:
        return buttons.replier(bot, body)

    def user(body: dict[str, Any]) -> str:
        return str(body["user"]["id"])

    on_button(
        bot,
        "incident_ack",
        lambda i, body, reply: bot.flows.acknowledge(i, user(body), reply.say),
    )
    on_button(
        bot,
        "incident_update",
        lambda i, body, reply: modals.open_form(bot, views.UPDATE, i, body["trigger_id"], reply),
    )
    on_button(
        bot,
        "incident_resolve",
        lambda i, body, reply: modals.open_form(bot, views.RESOLVE, i, body["trigger_id"], reply),
    )
    on_button(
        bot,
        "retro_held",
        lambda i, body, reply: bot.flows.retro_held(i, user(body), reply.say),
    )

    @app.action(re.compile(r"^reminder_snooze_\d+$"))
    @bot.inflight.track
    async def snooze_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        reply = replier(body)
        try:
            incident, minutes = (int(x) for x in body["actions"][0]["value"].split(":"))
        except (KeyError, IndexError, ValueError):
            return

        async def snooze() -> None:
            until = await bot.escalations.snooze(incident, minutes, body["user"]["id"])
            await reply.say(f"Update reminder snoozed until {mrkdwn.date(until, '{time}')}.")

        await reply.run(snooze)

    @app.shortcut(SHORTCUT)
    @bot.inflight.track
    async def declare_from_message(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        meta = views.metadata(
            reply_url=body.get("response_url"),
            source_channel=channel,
            source_ts=message.get("ts"),
        )
        text = (message.get("text") or "")[:3000]
        reply = replier(body)
        await reply.run(
            lambda: bot.services.slack.open_view(
                body["trigger_id"], views.declare_modal(bot.services.policy, meta, text)
            )
        )
