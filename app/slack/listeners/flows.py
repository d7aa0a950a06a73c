"""Steps shared by several surfaces (a command, a button and a form can all acknowledge)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.messages import blocks
from app.services.escalations import describe_key
from app.services.incidents import DeclareRequest, ResolveRequest, UpdateRequest
from app.slack import views

if TYPE_CHECKING:
    from app.slack.bot import Warroom
    from app.slack.reply import Replier


async def declare(warroom: Warroom, req: DeclareRequest) -> None:
    """Store the incident, then build its war room. A repeated request (same key) found the
    incident already stored: the request that stored it is building the room."""
    change = await warroom.incidents.declare(req)
    if change.changed:
        await warroom.escalations.plan_declared(change.incident.id)
        await warroom.war_room.open_war_room(change.incident.id)
        await warroom.engine.tick()  # page the severity's audience now, not at the next tick


async def acknowledge(warroom: Warroom, incident_id: int, user: str) -> None:
    change = await warroom.incidents.acknowledge(incident_id, user)
    await warroom.escalations.on_acknowledged(incident_id)
    await warroom.war_room.acknowledged(change.incident, user)


async def assign_role(warroom: Warroom, incident_id: int, role: Role, user: str, by: str) -> None:
    change = await warroom.incidents.assign_role(incident_id, role, user, by)
    if change.changed:
        await warroom.war_room.role_assigned(change.incident, role, user, by)


async def post_update(
    warroom: Warroom, incident_id: int, req: UpdateRequest, by: str, key: str | None = None
) -> None:
    change, update = await warroom.incidents.post_update(incident_id, req, by, key)
    await warroom.escalations.on_progress(incident_id)
    await warroom.war_room.update_posted(change.incident, update)


async def quick_update(warroom: Warroom, incident_id: int, text: str, by: str) -> None:
    """`/incident update <text>`: keep the status, report the text as investigation status."""
    snap = await warroom.incidents.snapshot(incident_id)
    status = snap.status if snap.status.is_open else Status.INVESTIGATING
    await post_update(warroom, incident_id, UpdateRequest(status=status, investigation=text), by)


async def change_severity(warroom: Warroom, incident_id: int, severity: int, by: str) -> None:
    change = await warroom.incidents.change_severity(incident_id, severity, by)
    if change.changed and change.previous is not None:
        await warroom.escalations.on_severity_changed(incident_id)
        await warroom.war_room.severity_changed(change.incident, change.previous.severity, by)
        await warroom.engine.tick()  # page the new audience now


async def mitigate(warroom: Warroom, incident_id: int, by: str) -> None:
    change = await warroom.incidents.mitigate(incident_id, by)
    await warroom.escalations.on_progress(incident_id)
    await warroom.war_room.mitigated(change.incident, by)


async def resolve(warroom: Warroom, incident_id: int, req: ResolveRequest, by: str) -> None:
    change = await warroom.incidents.resolve(incident_id, req, by)
    await warroom.escalations.on_resolved(incident_id)
    await warroom.war_room.resolved(change.incident)


async def retro_held(warroom: Warroom, incident_id: int, by: str, reply: Replier) -> None:
    if await warroom.escalations.retro_held(incident_id, by):
        snap = await warroom.incidents.snapshot(incident_id)
        if snap.channel_id:
            await warroom.services.slack.post(
                snap.channel_id,
                blocks.simple(f":white_check_mark: Retrospective held (recorded by <@{by}>)."),
            )
    else:
        await reply.say(f"The retrospective of incident #{incident_id} was already recorded.")


async def escalations_text(warroom: Warroom, incident_id: int) -> str:
    snap = await warroom.incidents.snapshot(incident_id)
    rows = [
        {**row.model_dump(), "label": describe_key(row.key)}
        for row in await warroom.escalations.rows(incident_id)
    ]
    return warroom.war_room.render("escalations_status.md.j2", snap, rows=rows)


async def open_modal(
    warroom: Warroom,
    kind: str,
    incident_id: int,
    trigger_id: str,
    reply: Replier,
) -> None:
    """Open the update, resolve or roles form for an incident."""
    snap = await warroom.incidents.snapshot(incident_id)
    if kind != views.ROLES and not snap.status.is_open:
        await reply.say(f"Incident #{incident_id} is {snap.status.value}.")
        return
    meta = views.metadata(incident=incident_id, reply_url=reply.response_url)
    if kind == views.UPDATE:
        view = views.update_modal(snap, meta)
    elif kind == views.RESOLVE:
        view = views.resolve_modal(snap, meta)
    else:
        view = views.roles_modal(snap, warroom.services.policy, meta)
    await warroom.services.slack.open_view(trigger_id, view)


async def post_retro_agenda(warroom: Warroom, incident_id: int) -> None:
    snap = await warroom.incidents.snapshot(incident_id)
    hours = warroom.services.policy.escalation.retro_within_hours
    text = warroom.war_room.render("retro_agenda.md.j2", snap, hours=hours)
    await warroom.war_room.to_channel_and_thread(incident_id, blocks.simple(text))
