"""`/incident …`: parse the text, acknowledge at once, then do the work and answer privately."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.services.errors import InvalidInput
from app.services.incidents import DeclareRequest, validate_declare
from app.slack import views
from app.slack.grammar import Command, CommandError, parse
from app.slack.listeners import flows, review
from app.slack.reply import Replier, error_text

if TYPE_CHECKING:
    from app.slack.bot import Warroom

log = logging.getLogger(__name__)


WITH_NUMBER = {
    "update": "/incident update #42 <text>",
    "role": "/incident role commander @person 42",
    "severity": "/incident severity sev1 42",
    "retro_done": "/incident retro done 42",
    "note": "/incident note #42 <text>",
    "action": "/incident action #42 <text> @owner due 2025-12-01",
    "close": "/incident close 42",
}


def register(warroom: Warroom) -> None:
    @warroom.app.command("/incident")
    @warroom.inflight.track
    async def incident_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle(warroom, ack, body)


async def handle(warroom: Warroom, ack: AsyncAck, body: dict[str, Any]) -> None:
    user = body.get("user_id", "")
    reply = Replier(warroom.services.slack, user, body.get("response_url"))
    try:
        command = parse(body.get("text") or "")
    except CommandError as exc:
        await ack(text=":no_entry_sign: " + error_text(exc))
        return
    if command.name == "help":
        await ack(text=help_text(warroom, command))
        return
    if command.name == "declare" and command.severity is not None:
        req = DeclareRequest(
            title=command.text,
            severity=command.severity,
            declared_by=user,
            request_key=f"command:{body.get('trigger_id')}" if body.get("trigger_id") else None,
            source_channel_id=body.get("channel_id"),
            reply_url=body.get("response_url"),
        )
        try:
            validate_declare(req, warroom.services.clock.now())
        except InvalidInput as exc:
            await ack(text=":no_entry_sign: " + error_text(exc))
            return
        await ack()
        await reply.run(lambda: flows.declare(warroom, req))
        return
    await ack()
    await reply.run(lambda: dispatch(warroom, command, body, reply))


def help_text(warroom: Warroom, command: Command) -> str:
    text = warroom.services.renderer.render(
        "help.md.j2", severities=warroom.services.policy.severities
    )
    if command.text:
        from app.messages.mrkdwn import escape

        text = f"Unknown command `{escape(command.text[:50])}`.\n" + text
    return text


async def dispatch(
    warroom: Warroom, command: Command, body: dict[str, Any], reply: Replier
) -> None:
    user = body.get("user_id", "")
    if command.name == "declare":
        meta = views.metadata(reply_url=body.get("response_url"), channel=body.get("channel_id"))
        await warroom.services.slack.open_view(
            body["trigger_id"], views.declare_modal(warroom.services.policy, meta)
        )
        return
    if command.name == "list":
        await reply.say(await list_text(warroom, user))
        return
    if command.name in review.GLOBAL:
        await review.dispatch_global(warroom, command, user, reply)
        return
    incident_id = command.incident or await warroom.incidents.in_channel(body.get("channel_id", ""))
    if incident_id is None:
        await reply.say(
            f"Run `/incident {command.name}` in an incident channel, or add the number: "
            f"`{WITH_NUMBER.get(command.name, f'/incident {command.name} 42')}`."
        )
        return
    # A private incident does not exist for people outside its channel.
    snap = await warroom.incidents.snapshot(incident_id)
    await warroom.services.permissions.require_sight(snap, user)
    if command.name == "ack":
        await flows.acknowledge(warroom, incident_id, user, reply)
    elif command.name == "role":
        assert command.role and command.user
        await flows.assign_role(warroom, incident_id, command.role, command.user, user, reply)
    elif command.name in {"roles", "resolve"} or (command.name == "update" and not command.text):
        kind = {"roles": views.ROLES, "resolve": views.RESOLVE}.get(command.name, views.UPDATE)
        await flows.open_modal(warroom, kind, incident_id, body["trigger_id"], reply)
    elif command.name == "update":
        await flows.quick_update(warroom, incident_id, command.text, user, reply)
    elif command.name == "severity":
        assert command.severity
        await flows.change_severity(warroom, incident_id, command.severity, user, reply)
    elif command.name == "mitigate":
        await flows.mitigate(warroom, incident_id, user, reply)
    elif command.name == "status":
        await reply.say(warroom.war_room.render("status_summary.md.j2", snap))
    elif command.name == "escalations":
        await reply.say(await flows.escalations_text(warroom, incident_id))
    elif command.name == "retro":
        await flows.post_retro_agenda(warroom, incident_id, reply)
    elif command.name == "retro_done":
        await flows.retro_held(warroom, incident_id, user, reply)
    elif command.name in review.COMMANDS:
        await review.dispatch(warroom, command, incident_id, user, reply)


async def list_text(warroom: Warroom, user: str) -> str:
    permissions = warroom.services.permissions
    incidents = await permissions.visible(await warroom.incidents.open_incidents(), user)
    return warroom.services.renderer.render(
        "incident_list.md.j2", incidents=incidents, now=warroom.services.clock.now()
    )
