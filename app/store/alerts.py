"""Queries for alert groups and alerts: taking a group's row first, so concurrent webhooks for
one group (retries, replicas) are applied one after the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.store.models import AlertGroup, AlertRow


async def take_group(
    session: AsyncSession, source: str, key_hash: str, values: dict[str, Any]
) -> tuple[AlertGroup, bool]:
    """The group's row, created with `values` if new, locked for this transaction (on SQLite
    the insert takes the database's write lock first, before any read). Returns it and whether
    it was created now."""
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(AlertGroup)
        .values(source=source, key_hash=key_hash, **values)
        .on_conflict_do_nothing(index_elements=["source", "key_hash"])
        .returning(col(AlertGroup.id))
    )
    created = (await session.exec(statement)).first() is not None
    found = await session.exec(
        select(AlertGroup)
        .where(col(AlertGroup.source) == source, col(AlertGroup.key_hash) == key_hash)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.one(), created


async def lock_group(session: AsyncSession, group_id: int) -> AlertGroup | None:
    found = await session.exec(
        select(AlertGroup)
        .where(col(AlertGroup.id) == group_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return found.first()


@dataclass
class Known:
    """What is stored about a webhook's fingerprints: the open occurrence of each, and every
    occurrence's start. Read once per webhook, kept current as the webhook is applied."""

    open: dict[str, AlertRow] = field(default_factory=dict)
    occurrences: set[tuple[str, datetime]] = field(default_factory=set)

    def add(self, row: AlertRow) -> None:
        self.occurrences.add((row.fingerprint, row.starts_at))
        if row.resolved_at is None:
            self.open[row.fingerprint] = row


async def known_alerts(session: AsyncSession, source: str, fingerprints: list[str]) -> Known:
    """Two queries for the whole webhook, not two per alert."""
    known = Known()
    wanted = sorted(set(fingerprints))
    if not wanted:
        return known
    opened = await session.exec(
        select(AlertRow).where(
            col(AlertRow.source) == source,
            col(AlertRow.fingerprint).in_(wanted),
            col(AlertRow.resolved_at).is_(None),
        )
    )
    for row in opened.all():
        known.open[row.fingerprint] = row
    starts = await session.exec(
        select(AlertRow.fingerprint, AlertRow.starts_at).where(
            col(AlertRow.source) == source, col(AlertRow.fingerprint).in_(wanted)
        )
    )
    known.occurrences = {(fingerprint, start) for fingerprint, start in starts.all()}
    return known


async def episode_alerts(session: AsyncSession, group: AlertGroup) -> list[AlertRow]:
    """The group's alerts in its current episode, oldest first."""
    found = await session.exec(
        select(AlertRow)
        .where(col(AlertRow.group_id) == group.id, col(AlertRow.episode) == group.episode)
        .order_by(col(AlertRow.starts_at), col(AlertRow.id))
    )
    return list(found.all())


async def incident_groups(session: AsyncSession, incident_id: int) -> list[AlertGroup]:
    found = await session.exec(select(AlertGroup).where(col(AlertGroup.incident_id) == incident_id))
    return list(found.all())


async def first_alerts(session: AsyncSession, incident_ids: list[int]) -> dict[int, datetime]:
    """The start of the first alert of each incident that alerts declared or joined."""
    if not incident_ids:
        return {}
    found = await session.exec(
        select(AlertGroup.incident_id, func.min(AlertRow.starts_at))
        .join(AlertRow, col(AlertRow.group_id) == col(AlertGroup.id))
        .where(col(AlertGroup.incident_id).in_(incident_ids))
        .group_by(col(AlertGroup.incident_id))
    )
    return {incident: first for incident, first in found.all() if incident is not None}


async def incident_alerts(session: AsyncSession, incident_id: int) -> list[AlertRow]:
    """The alerts of the groups that belong to the incident, in their episodes while they did,
    oldest first."""
    found = await session.exec(
        select(AlertRow)
        .join(AlertGroup, col(AlertRow.group_id) == col(AlertGroup.id))
        .where(col(AlertGroup.incident_id) == incident_id)
        .where(col(AlertRow.episode) == col(AlertGroup.episode))
        .order_by(col(AlertRow.starts_at), col(AlertRow.id))
    )
    return list(found.all())
