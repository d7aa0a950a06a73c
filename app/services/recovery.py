"""Finishing war rooms that a crash or a Slack outage left half-built, and topics and
headlines a refresh could not update.

Declaring is a sequence of Slack calls, each recorded on the incident row when it succeeds. If
the process dies (or Slack stays down) half-way, the row says what is missing; this sweep, run
on start-up and on every engine tick, finishes it; messages are the outbox's business. A lease
on the row (`repair_owner`, `repair_until`) keeps two replicas from building the same room.
The same sweep does the escalation planning a change recorded as owed but did not get to.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import col, select

from app.domain.lifecycle import Status
from app.services.context import Services
from app.services.escalations import Escalations
from app.services.ports import SlackError
from app.services.rooms import Rooms
from app.store.models import Incident

log = logging.getLogger(__name__)


class Recovery:
    def __init__(self, services: Services, rooms: Rooms, escalations: Escalations) -> None:
        self.services = services
        self.rooms = rooms
        self.escalations = escalations

    async def unfinished(self) -> tuple[list[int], list[int]]:
        """(incidents whose room is not built, incidents whose topic or headline are stale)."""
        # Leave a fresh declare to the request that is building it.
        grace = timedelta(seconds=self.services.policy.escalation.repair_after_seconds)
        cutoff = self.services.clock.now() - grace
        async with self.services.db.session() as session:
            unbuilt = await session.exec(
                select(Incident.id)
                .where(col(Incident.war_room_ready).is_(False))
                .where(col(Incident.status) != Status.CLOSED.value)
                .where(col(Incident.declared_at) <= cutoff)
                .order_by(col(Incident.id))
            )
            stale = await session.exec(
                select(Incident.id)
                .where(col(Incident.war_room_ready).is_(True))
                .where(col(Incident.published_version) < col(Incident.version))
                .order_by(col(Incident.id))
            )
            return [i for i in unbuilt.all() if i], [i for i in stale.all() if i]

    async def run(self) -> list[int]:
        """Repair what can be repaired now; returns the incidents completed."""
        repaired: list[int] = []
        grace = timedelta(seconds=self.services.policy.escalation.repair_after_seconds)
        for incident_id in await self.escalations.owed(self.services.clock.now() - grace):
            # The change was stored but its escalation plan was not (the process or the
            # database died in between): plan it now, from what was recorded as owed.
            log.warning("incident %s: planning escalations a change left owed", incident_id)
            await self.escalations.run_pending(incident_id)
        unbuilt, stale = await self.unfinished()
        for incident_id in unbuilt:
            if not await self.rooms.take_lease(incident_id):
                continue
            try:
                if await self.rooms.open_war_room(incident_id, claimed=True, repair=True):
                    repaired.append(incident_id)
            except SlackError as exc:
                log.warning("incident %s: repair deferred, Slack said %s", incident_id, exc.code)
            finally:
                await self.rooms.release_lease(incident_id)
        for incident_id in stale:
            if await self.rooms.refresh(incident_id, sweep=True):
                repaired.append(incident_id)
        return repaired
