"""The buttons of a triage card (Declare, Attach to an incident, Dismiss) and their forms, and
the "Mark mitigated" button posted when every alert of an incident has cleared.

A card names an alert group, not an incident: anyone in the triage channel may act on it. The
incident a person attaches it to must be one they may see (checked by the service).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.slack import views
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot

DECLARE = "alert_declare"
ATTACH = "alert_attach"
DISMISS = "alert_dismiss"
MITIGATE = "alerts_mitigate"


def _group(body: dict[str, Any]) -> int | None:
    """The group named by the button's value, "<group>:<episode>"."""
    raw = str(gate.value_of(body) or "").split(":")[0]
    return int(raw) if raw.isdigit() else None


def register(bot: Bot) -> None:
    async def declare(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        group_id = _group(body)
        if group_id is None:
            return
        proposal = await bot.alerts.proposal(group_id)
        if proposal is None:
            await reply.say("This alert group has an incident already, or is gone.")
            return
        meta = views.metadata(alert_group=group_id)
        view = views.alert_declare_modal(
            bot.services.policy,
            meta,
            proposal.title,
            proposal.severity,
            proposal.service,
            proposal.description,
        )
        await bot.services.slack.open_view(body["trigger_id"], view)

    async def attach(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        group_id = _group(body)
        if group_id is None:
            return
        visible = [
            i
            for i in await bot.incidents.open_incidents()
            if await bot.services.access.can_see(i, seen.user)
        ]
        if not visible:
            await reply.say("There is no open incident to attach it to.")
            return
        view = views.alert_attach_modal(views.metadata(alert_group=group_id), visible)
        await bot.services.slack.open_view(body["trigger_id"], view)

    async def dismiss(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        group_id = _group(body)
        if group_id is None:
            return
        view = views.alert_dismiss_modal(views.metadata(alert_group=group_id))
        await bot.services.slack.open_view(body["trigger_id"], view)

    async def dismissed(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        group_id = views.read_metadata(body["view"]).get("alert_group")
        reason = (views.values(body["view"]).get("reason") or "").strip()
        if isinstance(group_id, int) and not await bot.alerts.dismiss(group_id, seen.user, reason):
            await reply.say("That alert group was dismissed or declared already.")

    async def attached(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        group_id = views.read_metadata(body["view"]).get("alert_group")
        incident = views.values(body["view"]).get("incident")
        if not isinstance(group_id, int) or not str(incident or "").isdigit():
            return
        if not await bot.alerts.attach(group_id, int(str(incident)), seen.user):
            await reply.say("That alert group has an incident already.")

    gate.on_button(bot, DECLARE, gate.NOTHING, declare, opens_form=True)
    gate.on_button(bot, ATTACH, gate.NOTHING, attach, opens_form=True)
    gate.on_button(bot, DISMISS, gate.NOTHING, dismiss, opens_form=True)
    gate.on_submit(bot, views.ALERT_DISMISS, gate.NOTHING, dismissed)
    gate.on_submit(bot, views.ALERT_ATTACH, gate.NOTHING, attached)
    gate.on_button(
        bot,
        MITIGATE,
        gate.INCIDENT_BUTTON,
        lambda seen, body, reply: bot.flows.mitigate(seen.incident_id, seen.user, reply.say),
    )
