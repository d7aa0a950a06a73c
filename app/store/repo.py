"""Queries shared by the use cases, and the one way to turn rows into a snapshot."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.lifecycle import OPEN_STATUSES, Status
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.store.models import Incident, PublicUpdate, RoleAssignment, TimelineEvent


async def get(session: AsyncSession, incident_id: int) -> Incident | None:
    return await session.get(Incident, incident_id)


async def get_many(session: AsyncSession, incident_ids: Iterable[int]) -> dict[int, Incident]:
    """The incidents with these ids, by id, in one statement."""
    ids = sorted(set(incident_ids))
    if not ids:
        return {}
    found = await session.exec(select(Incident).where(col(Incident.id).in_(ids)))
    return {incident.id: incident for incident in found.all() if incident.id is not None}


async def get_for_update(session: AsyncSession, incident_id: int) -> Incident | None:
    """Lock the row on Postgres so concurrent changes to one incident queue up."""
    result = await session.exec(
        select(Incident).where(Incident.id == incident_id).with_for_update()
    )
    return result.first()


async def by_channel(session: AsyncSession, channel_id: str) -> Incident | None:
    result = await session.exec(select(Incident).where(Incident.channel_id == channel_id))
    return result.first()


async def by_request_key(session: AsyncSession, key: str) -> Incident | None:
    result = await session.exec(select(Incident).where(Incident.request_key == key))
    return result.first()


async def declared_since(session: AsyncSession, user: str, since: datetime) -> list[datetime]:
    """When `user` declared the incidents they declared after `since`, oldest first."""
    result = await session.exec(
        select(Incident.declared_at)
        .where(Incident.declared_by == user)
        .where(col(Incident.declared_at) > since)
        .order_by(col(Incident.declared_at))
    )
    return list(result.all())


async def lock_declarer(session: AsyncSession, user: str) -> None:
    """Make one person's declares wait for each other until this transaction ends, across
    replicas (a Postgres advisory lock); within one replica the caller's own lock does it."""
    bind = session.bind
    if bind is not None and bind.dialect.name == "postgresql":
        key = func.hashtext(f"declare:{user}")
        await session.exec(select(func.pg_advisory_xact_lock(key)))


async def open_incidents(session: AsyncSession) -> list[Incident]:
    result = await session.exec(
        select(Incident)
        .where(col(Incident.status).in_([s.value for s in OPEN_STATUSES]))
        .order_by(col(Incident.severity), col(Incident.id))
    )
    return list(result.all())


async def current_roles(session: AsyncSession, incident_id: int) -> dict[Role, str]:
    result = await session.exec(
        select(RoleAssignment)
        .where(RoleAssignment.incident_id == incident_id)
        .where(col(RoleAssignment.ended_at).is_(None))
        .order_by(col(RoleAssignment.id))
    )
    return {Role(row.role): row.user_id for row in result.all()}


async def roles_for(session: AsyncSession, ids: list[int]) -> dict[int, dict[Role, str]]:
    if not ids:
        return {}
    result = await session.exec(
        select(RoleAssignment)
        .where(col(RoleAssignment.incident_id).in_(ids))
        .where(col(RoleAssignment.ended_at).is_(None))
        .order_by(col(RoleAssignment.id))
    )
    roles: dict[int, dict[Role, str]] = {i: {} for i in ids}
    for row in result.all():
        roles[row.incident_id][Role(row.role)] = row.user_id
    return roles


def snapshot(incident: Incident, roles: dict[Role, str]) -> IncidentSnapshot:
    assert incident.id is not None
    return IncidentSnapshot(
        id=incident.id,
        title=incident.title,
        severity=incident.severity,
        status=Status(incident.status),
        description=incident.description,
        service=incident.service,
        is_private=incident.is_private,
        declared_by=incident.declared_by,
        detected_at=incident.detected_at,
        declared_at=incident.declared_at,
        channel_id=incident.channel_id,
        channel_name=incident.channel_name,
        acknowledged_at=incident.acknowledged_at,
        acknowledged_by=incident.acknowledged_by,
        mitigated_at=incident.mitigated_at,
        resolved_at=incident.resolved_at,
        resolved_by=incident.resolved_by,
        closed_at=incident.closed_at,
        last_update_at=incident.last_update_at,
        next_update_at=incident.next_update_at,
        root_cause=incident.root_cause,
        impact_summary=incident.impact_summary,
        users_affected=incident.users_affected,
        next_steps=incident.next_steps,
        source_permalink=incident.source_permalink,
        is_drill=incident.is_drill,
        roles=roles,
        type=incident.type,
        fields=dict(incident.fields or {}),
    )


async def load_snapshot(session: AsyncSession, incident_id: int) -> IncidentSnapshot | None:
    incident = await get(session, incident_id)
    if incident is None:
        return None
    return snapshot(incident, await current_roles(session, incident_id))


def event(
    incident_id: int,
    at: datetime,
    kind: str,
    text: str = "",
    actor: str | None = None,
    **data: Any,
) -> TimelineEvent:
    return TimelineEvent(
        incident_id=incident_id, at=at, kind=kind, actor=actor, text=text, data=data
    )


async def event_by_key(session: AsyncSession, key: str) -> TimelineEvent | None:
    """The timeline entry stored with this source key (a Slack message, a request)."""
    result = await session.exec(select(TimelineEvent).where(TimelineEvent.source_key == key))
    return result.first()


async def set_fields(session: AsyncSession, incident_id: int, **values: Any) -> None:
    """Write only the named columns, so concurrent Slack steps never overwrite each other."""
    await session.exec(update(Incident).where(col(Incident.id) == incident_id).values(**values))


async def timeline(session: AsyncSession, incident_id: int) -> list[TimelineEvent]:
    result = await session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
    )
    return list(result.all())


async def last_published_at(session: AsyncSession, incident_id: int) -> datetime | None:
    """When the incident's last public update was published (None: never)."""
    result = await session.exec(
        select(func.max(PublicUpdate.published_at))
        .where(col(PublicUpdate.incident_id) == incident_id)
        .where(col(PublicUpdate.state) == "published")
    )
    return result.one()
