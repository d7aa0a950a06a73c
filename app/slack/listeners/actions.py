"""Buttons on incident messages and the "Declare incident" message shortcut."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from app.messages import mrkdwn
from app.slack import views
from app.slack.listeners import gate, modals
from app.slack.listeners.gate import Seen
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot

SHORTCUT = "declare_from_message"


def register(bot: Bot) -> None:
    gate.on_button(
        bot,
        "incident_ack",
        gate.INCIDENT_BUTTON,
        lambda seen, body, reply: bot.flows.acknowledge(seen.incident_id, seen.user, reply.say),
    )
    gate.on_button(
        bot,
        "incident_update",
        gate.INCIDENT_BUTTON,
        lambda seen, body, reply: modals.open_form(
            bot, views.UPDATE, seen.incident_id, body["trigger_id"], reply
        ),
        opens_form=True,
    )
    gate.on_button(
        bot,
        "incident_resolve",
        gate.INCIDENT_BUTTON,
        lambda seen, body, reply: modals.open_form(
            bot, views.RESOLVE, seen.incident_id, body["trigger_id"], reply
        ),
        opens_form=True,
    )
    gate.on_button(
        bot,
        "retro_held",
        gate.INCIDENT_BUTTON,
        lambda seen, body, reply: bot.flows.retro_held(seen.incident_id, seen.user, reply.say),
    )

    async def snooze(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        try:
            minutes = int(body["actions"][0]["value"].split(":")[1])
        except (KeyError, IndexError, ValueError):
            return
        until = await bot.flows.snooze(seen.incident_id, minutes, seen.user)
        await reply.say(
            f"Update reminder snoozed until {mrkdwn.date(until, '{time}')}: the next update "
            "is promised by then."
        )

    gate.on_button(bot, re.compile(r"^reminder_snooze_\d+$"), gate.INCIDENT_BUTTON_PREFIX, snooze)

    async def declare_from_message(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        message = body.get("message") or {}
        channel = (body.get("channel") or {}).get("id")
        meta = views.metadata(
            reply_url=body.get("response_url"),
            source_channel=channel,
            source_ts=message.get("ts"),
        )
        text = (message.get("text") or "")[:3000]
        await bot.services.slack.open_view(
            body["trigger_id"], views.declare_modal(bot.services.policy, meta, text)
        )

    gate.on_shortcut(bot, SHORTCUT, declare_from_message)
