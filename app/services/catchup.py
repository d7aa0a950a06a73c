"""Catch-up: where an incident stands, told privately to someone arriving in it.

When a person joins an incident's channel they get a DM (through the outbox, so it is sent
exactly once even if Slack is down for a while): severity, status, roles, the last update,
the next update due, open action items, firing alerts and the last five timeline entries. At
most one a person per incident per `EVERY`: the `catchups` row of that person and incident is
moved forward only by a conditional update (or created, once, under a unique constraint) in the
transaction that queues the DM, so two replicas, or two deliveries of the same join, send one.

`/incident catchup` answers the same privately, whenever asked.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.domain.lifecycle import Status
from app.domain.snapshot import IncidentSnapshot
from app.messages.blocks import Message
from app.services import briefing
from app.services.announcements import Announcements
from app.services.context import Services
from app.services.errors import incident_snapshot
from app.services.outbox import Outgoing, enqueue
from app.store import repo
from app.store.models import CatchUp

log = logging.getLogger(__name__)

# At most one catch-up on joining, a person per incident, in this long.
EVERY = timedelta(minutes=30)
# Joins this soon after the declaration get none: the announcement and the page Warroom sent
# the people it invited say all there is (Slack reports each invite as a join).
SETTLING = timedelta(minutes=2)


class CatchUps:
    def __init__(self, services: Services, announcements: Announcements) -> None:
        self.services = services
        self.announcements = announcements

    async def message(self, incident_id: int) -> Message:
        """The catch-up on the incident as it is now (sight is the caller's to establish)."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            snap = await incident_snapshot(session, incident_id)
            brief = await briefing.read(session, incident_id, now)
        return self.announcements.catchup(snap, brief)

    async def text(self, incident_id: int) -> str:
        return (await self.message(incident_id)).text

    async def on_join(self, channel_id: str, user: str) -> int | None:
        """Queue the catch-up for a person who joined `channel_id`, when it is an incident's
        war room that is not closed, the person may see it, is not one of the people running
        it (they have their role's brief) and was not caught up on it in the last `EVERY`.
        Returns the incident whose DM was queued, for delivery."""
        async with self.services.db.session() as session:
            incident = await repo.by_channel(session, channel_id)
            if incident is None or incident.id is None:
                return None
            snap = repo.snapshot(incident, await repo.current_roles(session, incident.id))
        now = self.services.clock.now()
        if snap.status is Status.CLOSED or now - snap.declared_at < SETTLING:
            return None
        if not await self._arriving(snap, user):
            return None
        message = await self.message(snap.id)
        if not await self._claim(snap.id, user, self.services.clock.now(), message):
            return None
        log.info("incident %d: catch-up queued for %s", snap.id, user)
        return snap.id

    async def _arriving(self, snap: IncidentSnapshot, user: str) -> bool:
        """A person (not a bot, not Warroom) who may see the incident and is not running it."""
        if not user or user == self.services.bot_user_id:
            return False
        if user == snap.declared_by or user in snap.roles.values():
            return False
        if not await self.services.access.can_see(snap, user):
            return False
        person = await self.services.slack.person(user)
        return person is not None and not person.is_bot and not person.deleted

    async def _claim(self, incident_id: int, user: str, now: datetime, message: Message) -> bool:
        """Record that `user` is caught up now and queue the DM, in one transaction; False when
        they were caught up less than `EVERY` ago (by this replica or another)."""
        dm = [Outgoing(f"user:{user}", message)]
        async with self.services.db.session() as session:
            moved = await session.exec(
                update(CatchUp)
                .where(col(CatchUp.incident_id) == incident_id)
                .where(col(CatchUp.user_id) == user)
                .where(col(CatchUp.sent_at) <= now - EVERY)
                .values(sent_at=now)
            )
            if moved.rowcount:
                enqueue(session, incident_id, now, dm)
                return True
        try:
            async with self.services.db.session() as session:
                session.add(CatchUp(incident_id=incident_id, user_id=user, sent_at=now))
                await session.flush()
                enqueue(session, incident_id, now, dm)
        except IntegrityError:
            return False  # caught up recently: the row is there and not old enough
        return True
