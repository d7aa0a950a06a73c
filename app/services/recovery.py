"""Finishing war rooms that a crash or a Slack outage left half-built, and topics and
headlines a refresh could not update.

Declaring is a sequence of Slack calls, each recorded on the incident row when it succeeds. If
the process dies (or Slack stays down) half-way, the row says what is missing; this sweep, run
on start-up and on every engine tick, finishes it; messages are the outbox's business. A lease
on the row (`repair_owner`, `repair_until`) keeps two replicas from building the same room.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select

from app.domain.lifecycle import Status
from app.services.context import Services
from app.services.war_room import WarRoom
from app.slack.gateway import SlackError
from app.store.models import Incident

log = logging.getLogger(__name__)


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
            .values(
                repair_owner=services.replica,
                repair_until=now + timedelta(seconds=services.policy.escalation.lease_seconds),
            )
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

    async def unfinished(self) -> tuple[list[int], list[int]]:
        """(incidents whose room is not built, incidents whose topic or headline are stale)."""
        # Leave a fresh declare to the request that is building it.
        grace = timedelta(seconds=self.s.policy.escalation.repair_after_seconds)
        cutoff = self.s.clock.now() - grace
        async with self.s.db.session() as session:
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
        unbuilt, stale = await self.unfinished()
        for incident_id in unbuilt:
            if not await claim(self.s, incident_id):
                continue
            try:
                if await self.war_room.open_war_room(incident_id, claimed=True, repair=True):
                    repaired.append(incident_id)
            except SlackError as exc:
                log.warning("incident %s: repair deferred, Slack said %s", incident_id, exc.code)
            finally:
                await release(self.s, incident_id)
        for incident_id in stale:
            if await self.war_room.refresh(incident_id):
                repaired.append(incident_id)
        return repaired
