"""Alert routing rules and the payload readers: pure, no database, no processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from app.config import ConfigError, build_policy
from app.domain.alerts import (
    AlertsPolicy,
    PayloadError,
    Route,
    correlates,
    explain,
    parse_matcher,
    route_problems,
)
from app.integrations.alerts import PARSERS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ('severity="critical"', {"severity": "critical"}, True),
        ("severity=critical", {"severity": "warning"}, False),
        ("severity!=critical", {"severity": "warning"}, True),
        ("severity!=critical", {}, True),
        ("team=", {}, True),  # a missing label reads as empty, as in Alertmanager
        ('alertname=~"Disk.*"', {"alertname": "DiskFull"}, True),
        ("alertname=~Disk", {"alertname": "DiskFull"}, False),  # anchored at both ends
        ("alertname!~Disk.*", {"alertname": "DiskFull"}, False),
        ("alertname!~Disk.*", {"alertname": "CPU"}, True),
    ],
)
def test_matchers_follow_alertmanager(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@pytest.mark.parametrize("text", ["severity", "=x", "a b=c", "a=~(", "9a=b"])
def test_a_bad_matcher_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_matcher(text)


def test_first_matching_route_wins_and_the_default_is_triage() -> None:
    policy = AlertsPolicy(
        sources={"prom": {"type": "alertmanager", "token_env": "PROM_TOKEN"}},  # type: ignore[dict-item]
        routes=[
            Route(match=["severity=critical"], action="declare"),
            Route(match=["team=db"], action="notify"),
            Route(match=["severity=~warning|critical"], action="drop"),
        ],
    )
    assert policy.route("prom", {"severity": "critical", "team": "db"})[0] == 1
    assert policy.route("prom", {"severity": "warning", "team": "db"})[1].action == "notify"
    assert policy.route("prom", {"severity": "warning"})[1].action == "drop"
    number, route = policy.route("prom", {"severity": "info"})
    assert (number, route.action) == (0, "triage")


def test_severity_fixed_or_mapped_and_title_from_annotations() -> None:
    mapped = Route(severity_map={"critical": 1, "warning": 3}, default_severity=4)
    assert mapped.severity_for({"severity": "Critical"}) == 1
    assert mapped.severity_for({"severity": "warning"}) == 3
    assert mapped.severity_for({}) == 4
    assert Route(severity=2).severity_for({"severity": "critical"}) == 2
    route = Route(title="{alertname} on {instance}")
    assert route.title_for({"alertname": "DiskFull", "instance": "db1"}, {}) == "DiskFull on db1"
    default = Route()
    assert default.title_for({"alertname": "X"}, {"summary": "Disk almost full"}) == (
        "Disk almost full"
    )
    assert default.title_for({"alertname": "X"}, {}) == "X"  # no summary: the alert's name


def test_correlation_needs_every_label_present_and_equal() -> None:
    assert correlates(["service"], {"service": "api"}, {"service": "api"})
    assert not correlates(["service"], {"service": ""}, {"service": ""})
    assert not correlates(["service", "env"], {"service": "api", "env": "prod"}, {"service": "api"})
    assert not correlates([], {"service": "api"}, {"service": "api"})


@pytest.mark.parametrize(
    ("alerts", "words"),
    [
        ({"routes": [{"match": ["severity=~("]}]}, "alerts.routes.0.match"),
        ({"routes": [{"action": "page"}]}, "alerts.routes.0.action"),
        ({"routes": [{"severity_map": {"critical": 0}}]}, "must be at least 1 (got 0)"),
        ({"routes": [{"severity": 5}]}, "alerts.routes.0.severity: must be at most 4"),
        ({"routes": [{"sources": ["nope"]}]}, "names source 'nope'"),
        ({"sources": {"prom": {"type": "nagios", "token_env": "T"}}}, "alerts.sources.prom.type"),
        ({"sources": {"prom": {"type": "grafana", "token_env": "T", "hmac_env": "H"}}}, "generic"),
        ({"sources": {"Prom!": {"type": "grafana", "token_env": "T"}}}, "lower-case"),
        ({"routes": [{"title": "{0}"}]}, "must name a label"),
    ],
)
def test_bad_alert_settings_stop_start_up_with_the_key(alerts: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_policy({"alerts": alerts}, "warroom.toml")
    assert words in str(caught.value)


def test_alertmanager_payload_is_read_per_alert() -> None:
    batch = PARSERS["alertmanager"](fixture("alertmanager_partial.json"))
    assert batch.group_key == '{}:{alertname="DiskFull"}'
    assert [a.firing for a in batch.alerts] == [True, False]
    first, second = batch.alerts
    assert first.ends_at is None  # Go's zero time: still firing
    assert second.ends_at == datetime(2026, 12, 8, 10, 5, 0, 123456, tzinfo=UTC)
    assert first.links["generatorURL"].startswith("http://prometheus")
    assert first.links["runbook_url"] == "https://runbooks.example.com/disk"
    assert batch.labels == {"alertname": "DiskFull"}


def test_grafana_payload_keeps_its_links() -> None:
    batch = PARSERS["grafana"](fixture("grafana.json"))
    alert = batch.alerts[0]
    assert alert.firing
    assert set(alert.links) >= {"dashboardURL", "panelURL", "silenceURL", "generatorURL"}
    assert alert.labels["alertname"] == "High CPU"


def test_generic_payload() -> None:
    batch = PARSERS["generic"](fixture("generic.json"))
    assert batch.group_key == "checkout-latency"
    assert batch.alerts[0].annotations["summary"] == "p99 above 2 s"
    assert batch.alerts[1].firing is False


@pytest.mark.parametrize(
    ("kind", "data", "words"),
    [
        ("alertmanager", {}, "alerts must be a list"),
        ("alertmanager", {"alerts": [1]}, "alerts[0] must be an object"),
        ("alertmanager", {"alerts": [{"status": "on"}]}, "firing or resolved"),
        ("alertmanager", {"alerts": [{"labels": []}]}, "labels must be an object"),
        ("alertmanager", {"alerts": [{"startsAt": "yesterday"}]}, "RFC 3339"),
        ("alertmanager", {"alerts": [], "truncatedAlerts": "x"}, "whole number"),
        ("generic", {"alerts": [{"status": "firing"}]}, "id is required"),
        ("generic", {"alerts": [{"id": "a"}, {"id": "b"}]}, "group is required"),
    ],
)
def test_payloads_not_of_the_shape_are_refused(kind: str, data: dict[str, Any], words: str) -> None:
    with pytest.raises(PayloadError) as caught:
        PARSERS[kind](data)
    assert words in str(caught.value)


def test_routes_after_a_catch_all_are_reported() -> None:
    policy = AlertsPolicy(
        sources={
            "prom": {"type": "alertmanager", "token_env": "A"},  # type: ignore[dict-item]
            "graf": {"type": "grafana", "token_env": "B"},  # type: ignore[dict-item]
        },
        routes=[
            Route(sources=["prom"], action="declare"),
            Route(sources=["graf"], match=["team=db"]),
            Route(sources=["prom"], match=["team=db"], action="drop"),
            Route(action="notify"),
            Route(match=["x=y"]),
        ],
    )
    assert route_problems(policy) == [
        "route 3 is never reached: route 1 before it matches every alert it could see",
        "route 5 is never reached: route 4 before it matches every alert it could see",
    ]


def test_explain_says_the_route_and_what_would_happen() -> None:
    policy = AlertsPolicy(
        sources={"prom": {"type": "alertmanager", "token_env": "A"}},  # type: ignore[dict-item]
        routes=[Route(match=["alertname=DiskFull"], action="declare", severity_map={})],
    )
    batch = PARSERS["alertmanager"](fixture("alertmanager_partial.json"))
    lines = explain(policy, "prom", "Alertmanager", batch)
    assert lines[1] == "Takes route 1 (alertname=DiskFull)."
    assert lines[2] == (
        "Declares an incident (once for the group): Sev3 'Disk almost full on db1', "
        "service 'db', declared by Alertmanager (prom)."
    )
    assert lines[-1] == "  - 9f8e7d6c5b4a3f2e: resolved, Disk almost full on db2"
    other = PARSERS["generic"](fixture("generic.json"))
    assert "Posts a card in #alerts with Declare, Attach and Dismiss buttons" in "\n".join(
        explain(policy, "prom", "Webhook", other)
    )
