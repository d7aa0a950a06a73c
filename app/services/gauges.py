"""The gauges read from the database, sampled when Prometheus scrapes `/metrics`.

Sampled at scrape time rather than on each engine tick: a scrape then sees the queue as it is,
and a bot whose engine is stuck (the very thing the outbox alert looks for) still reports how
deep its queue has grown. The queries are small (two aggregates over indexed columns); a
database that does not answer within `TIMEOUT` leaves the gauges at their last values, and the
scrape still answers.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func
from sqlmodel import col, select

from app.domain.lifecycle import OPEN_STATUSES
from app.services.context import Services
from app.store.models import Incident, OutboxMessage

log = logging.getLogger(__name__)

TIMEOUT = 2.0
QUEUED = ("pending", "sending")


async def sample(services: Services) -> None:
    """Refresh outbox depth and age, open incidents (drills left out) by severity, and the
    token's state."""
    metrics = services.metrics
    metrics.slack_token_refused.set(1 if services.auth.problem else 0)
    try:
        async with asyncio.timeout(TIMEOUT):
            await _read(services)
    except Exception as exc:  # a scrape must answer even when the database does not
        log.debug("metrics: database gauges not sampled: %s", type(exc).__name__)


async def _read(services: Services) -> None:
    metrics = services.metrics
    now = services.clock.now()
    async with services.db.session() as session:
        depth, oldest = (
            await session.exec(
                select(func.count(), func.min(col(OutboxMessage.created_at))).where(
                    col(OutboxMessage.state).in_(QUEUED)
                )
            )
        ).one()
        by_severity = (
            await session.exec(
                select(col(Incident.severity), func.count())
                .where(col(Incident.status).in_([s.value for s in OPEN_STATUSES]))
                .where(col(Incident.is_drill).is_(False))  # drills count in no metric
                .group_by(col(Incident.severity))
            )
        ).all()
    metrics.outbox_depth.set(depth or 0)
    metrics.outbox_oldest_age.set(max(0.0, (now - oldest).total_seconds()) if oldest else 0.0)
    counts = {str(severity): n for severity, n in by_severity}
    for severity in ("1", "2", "3", "4"):
        metrics.incidents_open.labels(severity=severity).set(counts.pop(severity, 0))
    for severity, n in counts.items():
        metrics.incidents_open.labels(severity=severity).set(n)
