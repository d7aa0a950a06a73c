"""Steps shared by several surfaces (a command, a button and a form can all acknowledge).

Each flow: the use case (state change + queued messages, one transaction), the escalation
plan, then delivery of the queued messages and a refresh of topic and headline. When Slack does
not take the messages, the person is told they are saved and will follow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.messages import blocks
from app.services.escalations import describe_key
from app.services.incidents import DeclareRequest, ResolveRequest, UpdateRequest
from app.services.outbox import Outgoing, enqueue
from app.slack import views
from app.slack.gateway import SlackError

if TYPE_CHECKING:
    from app.slack.bot import Warroom
    from app.slack.reply import Replier


async def publish(warroom: Warroom, incident_id: int, reply: Replier | None) -> None:
    """Deliver the incident's queued messages and refresh its topic and headline."""
    report = await warroom.outbox.deliver(incident_id)
    if report.failed and reply is not None:
        await reply.say(
            ":hourglass: Saved. Slack is not taking messages right now "
            f"({report.errors[0]}); Warroom will post them as soon as it does."
        )
    await warroom.war_room.refresh(incident_id)


async def declare(warroom: Warroom, req: DeclareRequest) -> None:
    """Store the incident, then build its war room. A repeated request (same key) found the
    incident already stored: the request that stored it is building the room."""
    change = await warroom.incidents.declare(req)
    if change.changed:
        await warroom.escalations.plan_declared(change.incident.id)
        await warroom.war_room.open_war_room(change.incident.id)
        # Page the severity's audience and send the commander's brief now, not at the next tick.
        await warroom.engine.fire_due(change.incident.id)
        await warroom.outbox.deliver(change.incident.id)


async def acknowledge(
    warroom: Warroom, incident_id: int, user: str, reply: Replier | None = None
) -> None:
    await warroom.incidents.acknowledge(incident_id, user)
    await warroom.escalations.on_acknowledged(incident_id)
    await publish(warroom, incident_id, reply)


async def assign_role(
    warroom: Warroom,
    incident_id: int,
    role: Role,
    user: str,
    by: str,
    reply: Replier | None = None,
) -> None:
    change = await warroom.incidents.assign_role(incident_id, role, user, by)
    if not change.changed:
        return
    await publish(warroom, incident_id, reply)
    if change.incident.channel_id:
        await _invite(warroom, incident_id, [user])


async def _invite(warroom: Warroom, incident_id: int, users: list[str]) -> None:
    snap = await warroom.incidents.snapshot(incident_id)
    try:
        await warroom.war_room.invite(snap, users)
    except SlackError as exc:
        await warroom.war_room.problem(snap, f"Could not invite everyone yet ({exc.code}).")


async def post_update(
    warroom: Warroom,
    incident_id: int,
    req: UpdateRequest,
    by: str,
    key: str | None = None,
    reply: Replier | None = None,
) -> None:
    await warroom.incidents.post_update(incident_id, req, by, key)
    await warroom.escalations.on_progress(incident_id)
    await publish(warroom, incident_id, reply)


async def quick_update(
    warroom: Warroom, incident_id: int, text: str, by: str, reply: Replier | None = None
) -> None:
    """`/incident update <text>`: keep the status, report the text as investigation status."""
    snap = await warroom.incidents.snapshot(incident_id)
    status = snap.status if snap.status.is_open else Status.INVESTIGATING
    req = UpdateRequest(status=status, investigation=text)
    await post_update(warroom, incident_id, req, by, reply=reply)


async def change_severity(
    warroom: Warroom, incident_id: int, severity: int, by: str, reply: Replier | None = None
) -> None:
    change = await warroom.incidents.change_severity(incident_id, severity, by)
    if not change.changed:
        return
    await warroom.escalations.on_severity_changed(incident_id)
    await publish(warroom, incident_id, reply)
    if change.incident.channel_id:
        await _invite(warroom, incident_id, await warroom.war_room.audience(severity))
    await warroom.engine.fire_due(incident_id)  # page the new audience now


async def mitigate(
    warroom: Warroom, incident_id: int, by: str, reply: Replier | None = None
) -> None:
    await warroom.incidents.mitigate(incident_id, by)
    await warroom.escalations.on_progress(incident_id)
    await publish(warroom, incident_id, reply)


async def resolve(
    warroom: Warroom, incident_id: int, req: ResolveRequest, by: str, reply: Replier | None = None
) -> None:
    await warroom.incidents.resolve(incident_id, req, by)
    await warroom.escalations.on_resolved(incident_id)
    await publish(warroom, incident_id, reply)


async def retro_held(warroom: Warroom, incident_id: int, by: str, reply: Replier) -> None:
    if not await warroom.escalations.retro_held(incident_id, by):
        await reply.say(f"The retrospective of incident #{incident_id} was already recorded.")
        return
    text = f":white_check_mark: Retrospective held (recorded by <@{by}>)."
    await _queue(warroom, incident_id, [Outgoing("channel", blocks.simple(text))])
    await publish(warroom, incident_id, reply)


async def post_retro_agenda(warroom: Warroom, incident_id: int, reply: Replier) -> None:
    snap = await warroom.incidents.snapshot(incident_id)
    await _queue(warroom, incident_id, warroom.war_room.say.retro_agenda(snap))
    await publish(warroom, incident_id, reply)


async def _queue(warroom: Warroom, incident_id: int, items: list[Outgoing]) -> None:
    async with warroom.db.session() as session:
        enqueue(session, incident_id, warroom.services.clock.now(), items)


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
    # Refuse before the form is filled in, not after (the submission is checked again).
    action = {views.UPDATE: "update", views.RESOLVE: "resolve"}.get(kind, "roles")
    await warroom.services.permissions.check(
        action, reply.user, snap.declared_by, snap.roles.values(), incident_id
    )
    meta = views.metadata(incident=incident_id, reply_url=reply.response_url)
    if kind == views.UPDATE:
        view = views.update_modal(snap, meta)
    elif kind == views.RESOLVE:
        view = views.resolve_modal(snap, meta)
    else:
        view = views.roles_modal(snap, warroom.services.policy, meta)
    await warroom.services.slack.open_view(trigger_id, view)
