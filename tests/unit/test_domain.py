"""The pure core: lifecycle rules, parsing, names and durations."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta

import pytest

from app.domain import durations
from app.domain.lifecycle import (
    OPEN_STATUSES,
    Status,
    TransitionError,
    allowed_targets,
    check_transition,
    parse_status,
)
from app.domain.naming import MAX_CHANNEL_NAME, channel_name, slugify
from app.domain.roles import Role, parse_role
from app.domain.severity import parse_severity
from app.domain.snapshot import IncidentSnapshot


@pytest.mark.parametrize(("current", "target"), list(itertools.product(Status, Status)))
def test_every_transition_is_decided_by_the_table(current: Status, target: Status) -> None:
    expected_ok = current == target or target in allowed_targets(current)
    if expected_ok:
        check_transition(current, target)
    else:
        with pytest.raises(TransitionError):
            check_transition(current, target)


def test_lifecycle_shape() -> None:
    for status in OPEN_STATUSES:
        assert Status.RESOLVED in allowed_targets(status)
        assert Status.CLOSED not in allowed_targets(status)
    assert allowed_targets(Status.CLOSED) == frozenset()
    assert allowed_targets(Status.RESOLVED) == {Status.INVESTIGATING, Status.CLOSED}
    with pytest.raises(TransitionError, match="closed"):
        check_transition(Status.CLOSED, Status.INVESTIGATING)
    with pytest.raises(TransitionError, match="declare a new incident"):
        check_transition(Status.RESOLVED, Status.MITIGATED)


def test_parse_status() -> None:
    assert parse_status(" Identified ") is Status.IDENTIFIED
    with pytest.raises(ValueError, match="Unknown status"):
        parse_status("fixed-ish")


@pytest.mark.parametrize(
    ("text", "level"),
    [("sev1", 1), ("SEV2", 2), ("Sev-3", 3), ("4", 4), ("s2", 2), ("P1", 1), ("sev 2", 2)],
)
def test_parse_severity(text: str, level: int) -> None:
    assert parse_severity(text) == level


@pytest.mark.parametrize("text", ["sev5", "sev0", "high", "", "sev12", "<!channel>"])
def test_parse_severity_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="sev1, sev2, sev3 or sev4"):
        parse_severity(text)


@pytest.mark.parametrize(
    ("text", "role"),
    [
        ("commander", Role.COMMANDER),
        ("IC", Role.COMMANDER),
        ("tech-lead", Role.TECH_LEAD),
        ("tl", Role.TECH_LEAD),
        ("comms", Role.COMMS),
        ("Communications", Role.COMMS),
    ],
)
def test_parse_role(text: str, role: Role) -> None:
    assert parse_role(text) is role


def test_parse_role_refuses() -> None:
    with pytest.raises(ValueError, match="commander, tech-lead or comms"):
        parse_role("scribe")


def test_channel_names_follow_slack_rules() -> None:
    day = date(2025, 3, 4)
    assert channel_name("incident-{id}", 7, "x", day) == "incident-7"
    assert channel_name("incident-{id}", 7, "x", day, attempt=3) == "incident-7-3"
    assert channel_name("inc-{date}-{id}-{slug}", 7, "Checkout API: 500s!", day) == (
        "inc-20250304-7-checkout-api-500s"
    )
    long = channel_name("incident-{id}-{slug}", 12345, "ü" * 10 + "word " * 40, day, attempt=12)
    assert len(long) <= MAX_CHANNEL_NAME and long.endswith("-12")
    assert all(c.isdigit() or c in "-_" or "a" <= c <= "z" for c in long)
    assert slugify("<!channel> Ünïcode & spaces") == "channel-unicode-spaces"


def test_durations() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    assert durations.between(t0, t0 + timedelta(minutes=5)) == timedelta(minutes=5)
    assert durations.between(t0 + timedelta(minutes=5), t0) == timedelta(0)
    assert durations.between(None, t0) is None
    assert durations.humanize(timedelta(seconds=40)) == "40s"
    assert durations.humanize(timedelta(minutes=12)) == "12m"
    assert durations.humanize(timedelta(minutes=12, seconds=5)) == "12m 05s"
    assert durations.humanize(timedelta(hours=1, minutes=5)) == "1h 05m"
    assert durations.humanize(timedelta(days=2, hours=3)) == "2d 3h"
    assert durations.humanize(None) == "unknown"


def test_snapshot_durations() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    snap = IncidentSnapshot(
        id=1,
        title="t",
        severity=2,
        status=Status.RESOLVED,
        description="",
        service="",
        is_private=False,
        declared_by="U1",
        detected_at=t0,
        declared_at=t0 + timedelta(minutes=4),
        acknowledged_at=t0 + timedelta(minutes=6),
        mitigated_at=t0 + timedelta(minutes=30),
        resolved_at=t0 + timedelta(minutes=75),
    )
    assert snap.time_to_detect == timedelta(minutes=4)
    assert snap.time_to_acknowledge == timedelta(minutes=2)
    assert snap.time_to_mitigate == timedelta(minutes=30)
    assert snap.time_to_resolve == timedelta(minutes=75)
