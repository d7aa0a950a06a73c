"""Response metrics: the pure computation and its table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.lifecycle import Status
from app.domain.metrics import compute, spread
from app.domain.snapshot import IncidentSnapshot
from app.messages import stats

T = datetime(2030, 3, 4, 12, 0, tzinfo=UTC)
TARGETS = {1: 0, 2: 15, 3: 60, 4: None}


def incident(
    n: int,
    severity: int,
    detect: float = 0,
    ack: float | None = None,
    resolve: float | None = None,
    private: bool = False,
) -> IncidentSnapshot:
    """Minutes after declaration (detect: minutes before it)."""
    return IncidentSnapshot(
        id=n,
        title=f"Incident {n}",
        severity=severity,
        status=Status.RESOLVED if resolve is not None else Status.INVESTIGATING,
        description="",
        service="",
        is_private=private,
        declared_by="U1",
        detected_at=T - timedelta(minutes=detect),
        declared_at=T,
        acknowledged_at=None if ack is None else T + timedelta(minutes=ack),
        resolved_at=None if resolve is None else T + timedelta(minutes=resolve),
    )


def test_spread_median_and_nearest_rank_p90() -> None:
    minutes = [timedelta(minutes=m) for m in [5, 1, 3, 2, 4, 6, 7, 8, 9, 10]]
    result = spread(minutes)
    assert result.median == timedelta(minutes=5, seconds=30)
    assert result.p90 == timedelta(minutes=9)
    assert spread([]).median is None and spread([]).p90 is None
    assert spread([timedelta(minutes=2)]).p90 == timedelta(minutes=2)


def test_metrics_by_severity() -> None:
    rows = compute(
        [
            incident(1, 2, detect=4, ack=10, resolve=60),
            incident(2, 2, detect=2, ack=20, resolve=30, private=True),
            incident(3, 2, ack=None),
            incident(4, 1, ack=0.5, resolve=45),
            incident(5, 1, ack=2),
            incident(6, 4, ack=300, resolve=600),
        ],
        TARGETS,
    )
    by = {row.severity: row for row in rows}
    sev2 = by[2]
    assert sev2.count == 3
    assert sev2.acknowledge.median == timedelta(minutes=15)
    assert sev2.acknowledge.p90 == timedelta(minutes=20)
    # Time to resolve runs from detection.
    assert sev2.resolve.median == timedelta(minutes=48)
    assert sev2.detect.median == timedelta(minutes=2)
    assert (sev2.within_target, sev2.with_target) == (1, 3)
    # Sev1's 0-minute target counts as one minute.
    assert (by[1].within_target, by[1].with_target) == (1, 2)
    assert by[4].within_target_share is None
    assert by[3].count == 0 and by[3].acknowledge.median is None
    everything = by[None]
    assert everything.count == 6 and (everything.within_target, everything.with_target) == (2, 5)
    table = stats.table(rows)
    assert "Sev4" in table and "n/a" in table and "33% (1/3)" in table
    assert "Incident 2" not in table  # private or not, numbers only


def test_time_from_the_first_alert_to_the_acknowledgment() -> None:
    incidents = [
        incident(1, 1, ack=2),
        incident(2, 1, ack=4),
        incident(3, 1),
        incident(4, 2, ack=1),
    ]
    # Incidents 1 and 3 came from alerts (3 is not acknowledged yet); 2 and 4 were typed.
    first = {1: T - timedelta(minutes=8), 3: T - timedelta(minutes=1)}
    sev1, *_, every = compute(incidents, TARGETS, first)
    assert sev1.alert_to_ack.samples == 1
    assert sev1.alert_to_ack.median == timedelta(minutes=10)
    assert every.alert_to_ack.samples == 1
    assert "Alert to ack   median 10m, p90 10m" in stats.table([sev1])
    # Without alerts the line is left out.
    assert "Alert to ack" not in stats.table(compute(incidents, TARGETS))
