"""Loading the incidents a metrics window covers. The arithmetic is in app/domain/metrics.py;
this only reads the database, for the CLI and for Slack alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from sqlmodel import col, select

from app.domain.metrics import SeverityStats, compute
from app.domain.policy import Policy
from app.domain.snapshot import IncidentSnapshot
from app.store import alerts, repo
from app.store.db import Database
from app.store.models import Incident

Sight = Callable[[list[IncidentSnapshot]], Awaitable[list[IncidentSnapshot]]]


async def stats(
    db: Database, policy: Policy, now: datetime, days: int, seen: Sight | None = None
) -> list[SeverityStats]:
    """Incidents (never drills) declared in the last `days` days. `seen` keeps those the
    reader may see (in Slack: private ones only for the people in them); the CLI's operator
    sees them all."""
    since = now - timedelta(days=days)
    async with db.session() as session:
        # Drills are practice: they count in no metrics, for anyone.
        result = await session.exec(
            select(Incident)
            .where(col(Incident.declared_at) >= since)
            .where(col(Incident.is_drill).is_(False))
        )
        rows = [row for row in result.all() if row.id is not None]
        roles = await repo.roles_for(session, [row.id for row in rows if row.id is not None])
        first_alerts = await alerts.first_alerts(session, [r.id for r in rows if r.id is not None])
    incidents = [repo.snapshot(row, roles[row.id]) for row in rows if row.id is not None]
    if seen is not None:
        incidents = await seen(incidents)
    targets = {level: sev.response_target_minutes for level, sev in policy.severities.items()}
    return compute(incidents, targets, first_alerts)
