"""Leases: which replica is building (or repairing) an incident's war room right now.

A lease is an owner name and an expiry on the incident row. Taking it is one conditional
`UPDATE`: free, lapsed, or already ours. A replica that dies leaves a lease that lapses on its
own, so no room stays blocked for longer than the lease.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col

from app.store.db import Database
from app.store.models import Incident


def replica_name() -> str:
    """This process's name among the replicas that share one database."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


async def take_repair_lease(
    db: Database, incident_id: int, owner: str, now: datetime, seconds: float
) -> bool:
    """Take the incident's repair lease; False when another replica holds it."""
    async with db.session() as session:
        result = await session.exec(
            update(Incident)
            .where(col(Incident.id) == incident_id)
            .where(
                or_(
                    col(Incident.repair_until).is_(None),
                    col(Incident.repair_until) < now,
                    col(Incident.repair_owner) == owner,
                )
            )
            .values(repair_owner=owner, repair_until=now + timedelta(seconds=seconds))
        )
        return bool(result.rowcount)


async def release_repair_lease(db: Database, incident_id: int, owner: str) -> None:
    async with db.session() as session:
        await session.exec(
            update(Incident)
            .where(col(Incident.id) == incident_id)
            .where(col(Incident.repair_owner) == owner)
            .values(repair_owner=None, repair_until=None)
        )
