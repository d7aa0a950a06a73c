"""Finishing war rooms that a crash or a Slack outage left half-built.

Declaring and resolving are sequences of Slack calls, each recorded on the incident row when it
succeeds. If the process dies (or Slack stays down) half-way, the row says what is missing;
this sweep, run on start-up and on every engine tick, finishes it. A lease on the row
(`repair_owner`, `repair_until`) keeps two replicas from building the same room at once.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import and_, or_, update
from sqlmodel import col, select

from app.domain.lifecycle import Status
from app.services.context import Services
from app.services.war_room import WarRoom
from app.slack.gateway import SlackError
from app.store import repo
from app.store.models import Incident

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
# Leave a fresh declare to the request that is building it.
GRACE = timedelta(seconds=30)


async def claim(services: Services, incident_id: int) -> bool:
    """Take the incident's repair lease; False when another replica holds it."""
    now = services.clock.now()
    async with services.db.session() as session:
        result = await session.exec(  # type: ignore[call-overload]
            update(Incident)
            .where(col(Incident.id) == incident_id)
            .where(
                or_(
                    col(Incident.repair_until).is_(None),
                    col(Incident.repair_until) < now,
                    col(Incident.repair_owner) == services.replica,
                )
            )
            .values(repair_owner=services.replica, repair_until=now + LEASE)
        )
        return bool(result.rowcount)


async def release(services: Services, incident_id: int) -> None:
    async with services.db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            update(Incident)
            .where(col(Incident.id) == incident_id)
            .where(col(Incident.repair_owner) == services.replica)
            .values(repair_owner=None, repair_until=None)
        )


class Recovery:
    def __init__(self, services: Services, war_room: WarRoom) -> None:
        self.s = services
        self.war_room = war_room

    async def unfinished(self) -> list[int]:
        cutoff = self.s.clock.now() - GRACE
        async with self.s.db.session() as session:
            result = await session.exec(
                select(Incident.id)
                .where(
                    or_(
                        and_(
                            col(Incident.war_room_ready).is_(False),
                            col(Incident.status) != Status.CLOSED.value,
                            col(Incident.declared_at) <= cutoff,
                        ),
                        and_(
                            col(Incident.status) == Status.RESOLVED.value,
                            col(Incident.resolution_ts).is_(None),
                            col(Incident.resolved_at) <= cutoff,
                        ),
                    )
                )
                .order_by(col(Incident.id))
            )
            return [i for i in result.all() if i is not None]

    async def run(self) -> list[int]:
        """Repair what can be repaired now; returns the incidents completed."""
        repaired: list[int] = []
        for incident_id in await self.unfinished():
            if not await claim(self.s, incident_id):
                continue
            try:
                await self._repair(incident_id)
                repaired.append(incident_id)
            except SlackError as exc:
                log.warning("incident %s: repair deferred, Slack said %s", incident_id, exc.code)
            finally:
                await release(self.s, incident_id)
        return repaired

    async def _repair(self, incident_id: int) -> None:
        async with self.s.db.session() as session:
            incident = await repo.get(session, incident_id)
        if incident is None:
            return
        if not incident.war_room_ready:
            log.info("incident %s: finishing its war room", incident_id)
            await self.war_room.open_war_room(incident_id, claimed=True)
        if incident.status == Status.RESOLVED.value and incident.resolution_ts is None:
            log.info("incident %s: posting its resolution", incident_id)
            await self.war_room.resolved(await self.war_room.snapshot(incident_id))
