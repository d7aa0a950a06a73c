"""Buttons on incident messages and the "Declare incident" message shortcut."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.messages import mrkdwn
from app.slack import views
from app.slack.listeners import flows
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.bot import Warroom

SHORTCUT = "declare_from_message"


def _incident_id(body: dict[str, Any]) -> int | None:
    try:
        return int(body["actions"][0]["value"])
    except (KeyError, IndexError, ValueError, TypeError):
        return None


def register(warroom: Warroom) -> None:
    app = warroom.app

    def replier(body: dict[str, Any]) -> Replier:
        return Replier(warroom.services.slack, body["user"]["id"], body.get("response_url"))

    @app.action("incident_ack")
    @warroom.inflight.track
    async def ack_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        incident_id, reply = _incident_id(body), replier(body)
        if incident_id is not None:
            await reply.run(
                lambda: flows.acknowledge(warroom, incident_id, body["user"]["id"], reply)
            )

    @app.action("incident_update")
    @warroom.inflight.track
    async def update_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        incident_id, reply = _incident_id(body), replier(body)
        if incident_id is not None:
            await reply.run(
                lambda: flows.open_modal(
                    warroom, views.UPDATE, incident_id, body["trigger_id"], reply
                )
            )

    @app.action("incident_resolve")
    @warroom.inflight.track
    async def resolve_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        incident_id, reply = _incident_id(body), replier(body)
        if incident_id is not None:
            await reply.run(
                lambda: flows.open_modal(
                    warroom, views.RESOLVE, incident_id, body["trigger_id"], reply
                )
            )

    @app.action(re.compile(r"^reminder_snooze_\d+$"))
    @warroom.inflight.track
    async def snooze_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        reply = replier(body)
        try:
            incident, minutes = (int(x) for x in body["actions"][0]["value"].split(":"))
        except (KeyError, IndexError, ValueError):
            return

        async def snooze() -> None:
            until = await warroom.escalations.snooze(incident, minutes, body["user"]["id"])
            await reply.say(f"Update reminder snoozed until {mrkdwn.date(until, '{time}')}.")

        await reply.run(snooze)

    @app.action("retro_held")
    @warroom.inflight.track
    async def retro_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        incident_id, reply = _incident_id(body), replier(body)
        if incident_id is not None:
            await reply.run(
                lambda: flows.retro_held(warroom, incident_id, body["user"]["id"], reply)
            )

    @app.shortcut(SHORTCUT)
    @warroom.inflight.track
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
            lambda: warroom.services.slack.open_view(
                body["trigger_id"], views.declare_modal(warroom.services.policy, meta, text)
            )
        )
