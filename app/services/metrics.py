"""Loading the incidents a metrics window covers. The arithmetic is in app/domain/metrics.py;
this only reads the database, for the CLI and for Slack alike."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import col, select

from app.domain.fields import BadValue, parse_value
from app.domain.metrics import SeverityStats, compute
from app.domain.policy import Policy
from app.domain.snapshot import IncidentSnapshot
from app.services.errors import InvalidInput
from app.store import alerts, repo
from app.store.db import Database
from app.store.models import Incident

Sight = Callable[[list[IncidentSnapshot]], Awaitable[list[IncidentSnapshot]]]


async def stats(
    db: Database,
    policy: Policy,
    now: datetime,
    days: int,
    seen: Sight | None = None,
    filters: Sequence[tuple[str, str]] = (),
) -> list[SeverityStats]:
    """Incidents (never drills) declared in the last `days` days. `seen` keeps those the
    reader may see (in Slack: private ones only for the people in them); the CLI's operator
    sees them all. `filters` keeps those whose custom field has the value (field, value),
    each checked against its field first."""
    wanted = [(name, _filter_value(policy, name, raw)) for name, raw in filters]
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
    incidents = [i for i in incidents if all(_has(i, name, v) for name, v in wanted)]
    if seen is not None:
        incidents = await seen(incidents)
    targets = {level: sev.response_target_minutes for level, sev in policy.severities.items()}
    return compute(incidents, targets, first_alerts)


def _filter_value(policy: Policy, name: str, raw: str) -> Any:
    spec = policy.fields.get(name)
    if spec is None:
        known = ", ".join(f"`{n}`" for n in policy.fields) or "none are defined"
        raise InvalidInput(f"There is no field `{name}` to filter by (fields: {known}).")
    try:
        value = parse_value(name, spec, raw)
    except BadValue as exc:
        raise InvalidInput(str(exc)) from None
    # A multi-select filter names one option: incidents with that option among theirs.
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def _has(incident: IncidentSnapshot, name: str, wanted: Any) -> bool:
    value = incident.fields.get(name)
    if isinstance(value, list):
        return wanted in value if not isinstance(wanted, list) else set(wanted) <= set(value)
    return bool(value == wanted)
