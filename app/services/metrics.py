"""Loading the incidents a metrics window covers. The arithmetic is in app/domain/metrics.py;
this only reads the database, for the CLI and for Slack alike."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel import col, select

from app.domain.metrics import SeverityStats, compute
from app.domain.policy import Policy
from app.store import repo
from app.store.db import Database
from app.store.models import Incident


async def stats(db: Database, policy: Policy, now: datetime, days: int) -> list[SeverityStats]:
    """Incidents declared in the last `days` days (private ones included, as numbers)."""
    since = now - timedelta(days=days)
    async with db.session() as session:
        result = await session.exec(select(Incident).where(col(Incident.declared_at) >= since))
        incidents = [repo.snapshot(row, {}) for row in result.all()]
    targets = {level: sev.response_target_minutes for level, sev in policy.severities.items()}
    return compute(incidents, targets)
