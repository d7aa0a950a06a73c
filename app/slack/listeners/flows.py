"""Steps shared by several surfaces (a command, a button and a form can all acknowledge)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.services.incidents import DeclareRequest, UpdateRequest
from app.slack import views

if TYPE_CHECKING:
    from app.slack.bot import Warroom
    from app.slack.reply import Replier


async def declare(warroom: Warroom, req: DeclareRequest) -> None:
    """Store the incident, then build its war room. A repeated request (same key) found the
    incident already stored: the request that stored it is building the room."""
    change = await warroom.incidents.declare(req)
    if change.changed:
        await warroom.war_room.open_war_room(change.incident.id)


async def acknowledge(warroom: Warroom, incident_id: int, user: str) -> None:
    change = await warroom.incidents.acknowledge(incident_id, user)
    await warroom.war_room.acknowledged(change.incident, user)


async def assign_role(warroom: Warroom, incident_id: int, role: Role, user: str, by: str) -> None:
    change = await warroom.incidents.assign_role(incident_id, role, user, by)
    if change.changed:
        await warroom.war_room.role_assigned(change.incident, role, user, by)


async def post_update(
    warroom: Warroom, incident_id: int, req: UpdateRequest, by: str, key: str | None = None
) -> None:
    change, update = await warroom.incidents.post_update(incident_id, req, by, key)
    await warroom.war_room.update_posted(change.incident, update)


async def quick_update(warroom: Warroom, incident_id: int, text: str, by: str) -> None:
    """`/incident update <text>`: keep the status, report the text as investigation status."""
    snap = await warroom.incidents.snapshot(incident_id)
    status = snap.status if snap.status.is_open else Status.INVESTIGATING
    await post_update(warroom, incident_id, UpdateRequest(status=status, investigation=text), by)


async def change_severity(warroom: Warroom, incident_id: int, severity: int, by: str) -> None:
    change = await warroom.incidents.change_severity(incident_id, severity, by)
    if change.changed and change.previous is not None:
        await warroom.war_room.severity_changed(change.incident, change.previous.severity, by)


async def mitigate(warroom: Warroom, incident_id: int, by: str) -> None:
    change = await warroom.incidents.mitigate(incident_id, by)
    await warroom.war_room.mitigated(change.incident, by)


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
