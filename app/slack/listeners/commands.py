"""`/incident …`: parse the text, acknowledge at once, then do the work and answer privately."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.services.errors import InvalidInput
from app.services.incidents import DeclareRequest, validate_declare
from app.slack import views
from app.slack.grammar import Command, CommandError, parse
from app.slack.listeners import modals, review
from app.slack.reply import Replier, error_text

if TYPE_CHECKING:
    from app.slack.context import Bot

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


def register(bot: Bot) -> None:
    @bot.app.command("/incident")
    @bot.inflight.track
    async def incident_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await handle(bot, ack, body)


async def handle(bot: Bot, ack: AsyncAck, body: dict[str, Any]) -> None:
    user = body.get("user_id", "")
    reply = Replier(bot.services.slack, user, body.get("response_url"))
    try:
        command = parse(body.get("text") or "")
    except CommandError as exc:
        await ack(text=":no_entry_sign: " + error_text(exc))
        return
    if command.name == "help":
        await ack(text=help_text(bot, command))
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
            validate_declare(req, bot.services.clock.now())
        except InvalidInput as exc:
            await ack(text=":no_entry_sign: " + error_text(exc))
            return
        await ack()
        await reply.run(lambda: bot.flows.declare(req))
        return
    await ack()
    await reply.run(lambda: dispatch(bot, command, body, reply))


def help_text(bot: Bot, command: Command) -> str:
    text = bot.services.renderer.render("help.md.j2", severities=bot.services.policy.severities)
    if command.text:
        from app.messages.mrkdwn import escape

        text = f"Unknown command `{escape(command.text[:50])}`.\n" + text
    return text


async def dispatch(bot: Bot, command: Command, body: dict[str, Any], reply: Replier) -> None:
    user = body.get("user_id", "")
    if command.name == "declare":
        meta = views.metadata(reply_url=body.get("response_url"), channel=body.get("channel_id"))
        await bot.services.slack.open_view(
            body["trigger_id"], views.declare_modal(bot.services.policy, meta)
        )
        return
    if command.name == "list":
        await reply.say(await list_text(bot, user))
        return
    if command.name in review.GLOBAL:
        await review.dispatch_global(bot, command, user, reply)
        return
    incident_id = command.incident or await bot.incidents.in_channel(body.get("channel_id", ""))
    if incident_id is None:
        await reply.say(
            f"Run `/incident {command.name}` in an incident channel, or add the number: "
            f"`{WITH_NUMBER.get(command.name, f'/incident {command.name} 42')}`."
        )
        return
    # A private incident does not exist for people outside its channel.
    snap = await bot.incidents.snapshot(incident_id)
    await bot.services.access.require_sight(snap, user)
    if command.name == "ack":
        await bot.flows.acknowledge(incident_id, user, reply.say)
    elif command.name == "role":
        assert command.role and command.user
        await bot.flows.assign_role(incident_id, command.role, command.user, user, reply.say)
    elif command.name in {"roles", "resolve"} or (command.name == "update" and not command.text):
        kind = {"roles": views.ROLES, "resolve": views.RESOLVE}.get(command.name, views.UPDATE)
        await modals.open_form(bot, kind, incident_id, body["trigger_id"], reply)
    elif command.name == "update":
        await bot.flows.quick_update(incident_id, command.text, user, reply.say)
    elif command.name == "severity":
        assert command.severity
        await bot.flows.change_severity(incident_id, command.severity, user, reply.say)
    elif command.name == "mitigate":
        await bot.flows.mitigate(incident_id, user, reply.say)
    elif command.name == "status":
        await reply.say(bot.rooms.render("status_summary.md.j2", snap))
    elif command.name == "escalations":
        await reply.say(await bot.flows.escalations_text(incident_id))
    elif command.name == "retro":
        await bot.flows.post_retro_agenda(incident_id, reply.say)
    elif command.name == "retro_done":
        await bot.flows.retro_held(incident_id, user, reply.say)
    elif command.name in review.COMMANDS:
        await review.dispatch(bot, command, incident_id, user, reply)


async def list_text(bot: Bot, user: str) -> str:
    permissions = bot.services.access
    incidents = await permissions.visible(await bot.incidents.open_incidents(), user)
    return bot.services.renderer.render(
        "incident_list.md.j2", incidents=incidents, now=bot.services.clock.now()
    )
