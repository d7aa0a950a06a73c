"""The use cases as a person triggers them, callable from any entry point (a slash command, a
button, a form, an alert webhook, the sandbox, the CLI).

Each flow: the change (state plus queued messages, one transaction), the escalation plan, then
delivery of the queued messages and a refresh of topic and headline. The private answer goes
through a plain `say` callback, so the caller decides where it lands; when Slack does not take
the messages, the person is told they are saved and will follow.
"""

from __future__ import annotations

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.messages import blocks
from app.services.context import Services
from app.services.escalations import Escalations, describe_key
from app.services.incidents import DeclareRequest, Incidents, ResolveRequest, UpdateRequest
from app.services.outbox import Outbox, Outgoing, enqueue
from app.services.ports import Firing, Say, SlackError
from app.services.rooms import Rooms


class Flows:
    def __init__(
        self,
        services: Services,
        incidents: Incidents,
        rooms: Rooms,
        escalations: Escalations,
        outbox: Outbox,
        firing: Firing,
    ) -> None:
        self.services = services
        self.incidents = incidents
        self.rooms = rooms
        self.escalations = escalations
        self.outbox = outbox
        self.firing = firing

    async def publish(self, incident_id: int, say: Say | None) -> None:
        """Deliver the incident's queued messages and refresh its topic and headline."""
        report = await self.outbox.deliver(incident_id)
        if report.held and say is not None:
            await say(
                f":hourglass: Saved. Slack is refusing Warroom's token ({report.held}); the "
                "messages are kept and go out as soon as Slack accepts it again."
            )
        elif report.room and say is not None:
            await say(
                f":hourglass: Saved. Warroom cannot post in the incident's channels right now "
                f"({report.room}); the commander was told what fixes it, and the messages "
                "follow in order once it is fixed."
            )
        elif report.failed and say is not None:
            await say(
                ":hourglass: Saved. Slack is not taking messages right now "
                f"({report.errors[0]}); Warroom will post them as soon as it does."
            )
        await self.rooms.refresh(incident_id)

    async def declare(self, req: DeclareRequest) -> None:
        """Store the incident, then build its war room. A repeated request (same key) found the
        incident already stored: the request that stored it is building the room."""
        change = await self.incidents.declare(req)
        if change.changed:
            await self.escalations.plan_declared(change.incident.id)
            await self.rooms.open_war_room(change.incident.id)
            # Page the severity's audience and send the commander's brief now, not at the
            # next tick.
            await self.firing.fire_due(change.incident.id)
            await self.outbox.deliver(change.incident.id)

    async def acknowledge(self, incident_id: int, user: str, say: Say | None = None) -> None:
        await self.incidents.acknowledge(incident_id, user)
        await self.escalations.on_acknowledged(incident_id)
        await self.publish(incident_id, say)

    async def assign_role(
        self, incident_id: int, role: Role, user: str, by: str, say: Say | None = None
    ) -> None:
        change = await self.incidents.assign_role(incident_id, role, user, by)
        if not change.changed:
            return
        await self.publish(incident_id, say)
        if change.incident.channel_id:
            await self._invite(incident_id, [user])

    async def _invite(self, incident_id: int, users: list[str]) -> None:
        snap = await self.incidents.snapshot(incident_id)
        try:
            await self.rooms.invite(snap, users)
        except SlackError as exc:
            await self.rooms.problem(snap, f"Could not invite everyone yet ({exc.code}).")

    async def post_update(
        self,
        incident_id: int,
        req: UpdateRequest,
        by: str,
        key: str | None = None,
        say: Say | None = None,
    ) -> None:
        await self.incidents.post_update(incident_id, req, by, key)
        await self.escalations.on_progress(incident_id)
        await self.publish(incident_id, say)

    async def quick_update(
        self, incident_id: int, text: str, by: str, say: Say | None = None
    ) -> None:
        """`/incident update <text>`: keep the status, report the text as investigation
        status."""
        snap = await self.incidents.snapshot(incident_id)
        status = snap.status if snap.status.is_open else Status.INVESTIGATING
        req = UpdateRequest(status=status, investigation=text)
        await self.post_update(incident_id, req, by, say=say)

    async def change_severity(
        self, incident_id: int, severity: int, by: str, say: Say | None = None
    ) -> None:
        change = await self.incidents.change_severity(incident_id, severity, by)
        if not change.changed:
            return
        await self.escalations.on_severity_changed(incident_id)
        await self.publish(incident_id, say)
        if change.incident.channel_id:
            await self._invite(incident_id, await self.rooms.audience(severity))
        await self.firing.fire_due(incident_id)  # page the new audience now

    async def mitigate(self, incident_id: int, by: str, say: Say | None = None) -> None:
        await self.incidents.mitigate(incident_id, by)
        await self.escalations.on_progress(incident_id)
        await self.publish(incident_id, say)

    async def resolve(
        self, incident_id: int, req: ResolveRequest, by: str, say: Say | None = None
    ) -> None:
        await self.incidents.resolve(incident_id, req, by)
        await self.escalations.on_resolved(incident_id)
        await self.publish(incident_id, say)

    async def retro_held(self, incident_id: int, by: str, say: Say) -> None:
        if not await self.escalations.retro_held(incident_id, by):
            await say(f"The retrospective of incident #{incident_id} was already recorded.")
            return
        text = f":white_check_mark: Retrospective held (recorded by <@{by}>)."
        await self._queue(incident_id, [Outgoing("channel", blocks.simple(text))])
        await self.publish(incident_id, say)

    async def post_retro_agenda(self, incident_id: int, say: Say) -> None:
        snap = await self.incidents.snapshot(incident_id)
        await self._queue(incident_id, self.rooms.announcements.retro_agenda(snap))
        await self.publish(incident_id, say)

    async def _queue(self, incident_id: int, items: list[Outgoing]) -> None:
        async with self.services.db.session() as session:
            enqueue(session, incident_id, self.services.clock.now(), items)

    async def escalations_text(self, incident_id: int) -> str:
        snap = await self.incidents.snapshot(incident_id)
        rows = [
            {**row.model_dump(), "label": describe_key(row.key)}
            for row in await self.escalations.rows(incident_id)
        ]
        return self.rooms.render("escalations_status.md.j2", snap, rows=rows)
