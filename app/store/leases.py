"""Leases: which replica is working on what right now, and under which name.

A lease is an owner name and an expiry on a row (an incident's war room, a queued message, an
escalation step). Taking it is one conditional `UPDATE`: free, lapsed, or already ours. A
replica renews its leases while it works on them, so they can be short: one that dies leaves
leases that lapse within `lease_seconds` on their own.

A replica's name is stable across restarts (`WARROOM_REPLICA_NAME`, else the host name and
the working folder plus a slot number held by a lock file), so a replica that restarts takes
back at once what it was doing when it died, instead of waiting for its own leases to lapse.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from sqlalchemy import or_, update
from sqlmodel import col

from app.store.db import Database
from app.store.models import EscalationRow, Incident, OutboxMessage

log = logging.getLogger(__name__)

MAX_SLOTS = 64


def replica_name() -> str:
    """A throw-away name, unique to this process (for services built outside `build`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class ReplicaName:
    """This process's name among the replicas that share one database.

    `WARROOM_REPLICA_NAME` when set (each replica needs its own). Otherwise
    `<host>:<folder hash>#<slot>`: the lowest slot whose lock file (in the temporary folder)
    no live process holds. A process that dies releases its lock with it, so its restart gets
    the same name back; two live processes on one host never share one.
    """

    def __init__(self, name: str, lock: IO[bytes] | None = None) -> None:
        self.name = name
        self._lock = lock

    @classmethod
    def take(cls, explicit: str = "", folder: Path | None = None) -> ReplicaName:
        if explicit:
            return cls(explicit)
        host = socket.gethostname()
        where = hashlib.sha256(str(Path.cwd()).encode()).hexdigest()[:8]
        locks = folder or Path(tempfile.gettempdir()) / "warroom-replicas"
        try:
            import fcntl

            locks.mkdir(parents=True, exist_ok=True)
            for slot in range(1, MAX_SLOTS + 1):
                handle = (locks / f"{host}-{where}-{slot}.lock").open("ab")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    handle.close()
                    continue
                return cls(f"{host}:{where}#{slot}", handle)
        except (ImportError, OSError) as exc:
            log.warning("no stable replica name (%s); set WARROOM_REPLICA_NAME", exc)
        return cls(replica_name())

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file lets go of the lock
            self._lock = None


async def take_back(db: Database, owner: str, now: datetime) -> None:
    """At start-up: what a replica of this name held when it stopped is free again at once
    (a message it was sending is looked up in Slack before it is sent again)."""
    lapsed = now - timedelta(microseconds=1)
    async with db.session() as session:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.state) == "sending")
            .where(col(OutboxMessage.claimed_by) == owner)
            .values(lease_until=lapsed)
        )
        await session.exec(
            update(EscalationRow)
            .where(col(EscalationRow.state) == "firing")
            .where(col(EscalationRow.claimed_by) == owner)
            .values(lease_until=lapsed)
        )
        await session.exec(
            update(Incident)
            .where(col(Incident.repair_owner) == owner)
            .values(repair_owner=None, repair_until=None)
        )


@contextlib.asynccontextmanager
async def renewing(renew: Callable[[], Awaitable[object]], every: float) -> AsyncIterator[None]:
    """Call `renew` every `every` seconds while the block runs (a lease kept alive during
    slow work)."""

    async def beat() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await renew()
            except Exception as exc:  # the work goes on; the lease may lapse
                log.warning("could not renew a lease: %r", exc)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


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
