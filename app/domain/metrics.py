"""Response metrics over a set of incidents, by severity. Pure: the CLI and Slack both call
this with the same incidents, so `warroom stats` and `/incident stats` cannot disagree.

The caller decides which incidents count: `/incident stats` passes those the reader may see
(a private incident only for the people in it), `warroom stats` all of them. No title or
channel ever appears in the numbers.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.domain.snapshot import IncidentSnapshot


@dataclass(frozen=True)
class Spread:
    """Median and 90th percentile of a duration; None when no incident has it yet."""

    median: timedelta | None
    p90: timedelta | None
    samples: int


@dataclass(frozen=True)
class SeverityStats:
    severity: int | None  # None: every severity together
    count: int
    acknowledge: Spread
    resolve: Spread
    detect: Spread
    # Acknowledged within the severity's target, among incidents that have a target.
    within_target: int
    with_target: int
    # From the first alert of an incident declared from alerts to its acknowledgment.
    alert_to_ack: Spread = field(default_factory=lambda: Spread(None, None, 0))

    @property
    def within_target_share(self) -> float | None:
        """None when no incident here has a response target (Sev4 by default)."""
        return self.within_target / self.with_target if self.with_target else None


def spread(values: Sequence[timedelta]) -> Spread:
    """Median (the mean of the two middle values for an even count) and the nearest-rank p90,
    which is always a duration some incident really had."""
    if not values:
        return Spread(None, None, 0)
    ordered = sorted(values)
    seconds = statistics.median(v.total_seconds() for v in ordered)
    p90 = ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]
    return Spread(timedelta(seconds=seconds), p90, len(ordered))


def acknowledged_within(incident: IncidentSnapshot, target_minutes: int | None) -> bool | None:
    """Whether the acknowledgment met the target (a 0-minute target counts as 1 minute, as
    the acknowledgment message says); None when the severity has no target."""
    if target_minutes is None:
        return None
    taken = incident.time_to_acknowledge
    return taken is not None and taken.total_seconds() <= max(target_minutes, 1) * 60


def alert_to_ack(incident: IncidentSnapshot, first_alert: datetime | None) -> timedelta | None:
    """From the first alert to the acknowledgment: what the people on call took to react,
    the time to detect included."""
    if first_alert is None or incident.acknowledged_at is None:
        return None
    return max(incident.acknowledged_at - first_alert, timedelta(0))


def _stats(
    severity: int | None,
    incidents: Sequence[IncidentSnapshot],
    targets: Mapping[int, int | None],
    first_alerts: Mapping[int, datetime],
) -> SeverityStats:
    met = [acknowledged_within(i, targets.get(i.severity)) for i in incidents]
    from_alert = [alert_to_ack(i, first_alerts.get(i.id)) for i in incidents]
    return SeverityStats(
        severity=severity,
        count=len(incidents),
        acknowledge=spread([d for i in incidents if (d := i.time_to_acknowledge) is not None]),
        resolve=spread([d for i in incidents if (d := i.time_to_resolve) is not None]),
        detect=spread([d for i in incidents if (d := i.time_to_detect) is not None]),
        within_target=sum(1 for m in met if m),
        with_target=sum(1 for m in met if m is not None),
        alert_to_ack=spread([d for d in from_alert if d is not None]),
    )


def compute(
    incidents: Sequence[IncidentSnapshot],
    targets: Mapping[int, int | None],
    first_alerts: Mapping[int, datetime] | None = None,
) -> list[SeverityStats]:
    """One row per severity in `targets` (in order), then one for all of them.
    `first_alerts`: the first alert's start, for incidents alerts declared or joined."""
    alerts = first_alerts or {}
    rows = [
        _stats(level, [i for i in incidents if i.severity == level], targets, alerts)
        for level in sorted(targets)
    ]
    rows.append(_stats(None, list(incidents), targets, alerts))
    return rows
