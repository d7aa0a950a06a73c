"""Alert sources in the test organisation's policy, and webhooks posted to the bot."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import aiohttp

from app.config import Settings
from app.fake_slack import FakeSlack
from tests.support.factories import policy_with

PROM_TOKEN = "prom-token-for-tests"
GRAFANA_TOKEN = "grafana-token-for-tests"
HOOK_SECRET = "generic-hmac-secret-for-tests"
SOURCES = {
    "prom": {"type": "alertmanager", "token_env": "WARROOM_PROM_TOKEN"},
    "grafana": {"type": "grafana", "token_env": "WARROOM_GRAFANA_TOKEN"},
    "hook": {"type": "generic", "token_env": "", "hmac_env": "WARROOM_HOOK_SECRET"},
}
SECRETS = {
    "WARROOM_PROM_TOKEN": PROM_TOKEN,
    "WARROOM_GRAFANA_TOKEN": GRAFANA_TOKEN,
    "WARROOM_HOOK_SECRET": HOOK_SECRET,
}
DEFAULT_ROUTES: list[dict[str, Any]] = [
    {"match": ["severity=critical"], "action": "declare"},
    {"match": ["severity=ignore"], "action": "drop"},
]


def with_alerts(
    settings: Settings, routes: list[dict[str, Any]] | None = None, **alerts: Any
) -> Settings:
    """`settings` with the test alert sources and `routes` (default: critical declares,
    severity=ignore is dropped, the rest triaged in #alerts)."""
    section = {"sources": SOURCES, "routes": DEFAULT_ROUTES if routes is None else routes}
    policy = policy_with(alerts=section | alerts)
    return replace(settings, policy=policy, alert_secrets=dict(SECRETS))


def add_triage_channel(fake: FakeSlack) -> str:
    return fake.add_channel("alerts", is_private=False, members=["UALICE"], bot_member=True)


def base_of(url: str) -> str:
    return url.rsplit("/slack/events", 1)[0]


async def post_alerts(
    base: str,
    source: str,
    payload: dict[str, Any] | bytes,
    token: str | None = PROM_TOKEN,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{base}/alerts/{source}", data=body, headers=sent) as response,
    ):
        text = await response.text()
        try:
            data = json.loads(text)
        except ValueError:
            data = {"raw": text}
        return response.status, data


def am_alert(
    name: str,
    instance: str,
    starts: datetime,
    ends: datetime | None = None,
    severity: str = "warning",
    **labels: str,
) -> dict[str, Any]:
    """One alert as Alertmanager's webhook writes it."""
    all_labels = {"alertname": name, "instance": instance, "severity": severity, **labels}
    return {
        "status": "resolved" if ends is not None else "firing",
        "labels": all_labels,
        "annotations": {"summary": f"{name} on {instance}"},
        "startsAt": _go_time(starts),
        "endsAt": _go_time(ends) if ends else "0001-01-01T00:00:00Z",
        "generatorURL": f"http://prometheus.example.com/graph?expr={name}",
        "fingerprint": f"{name}-{instance}",
    }


def am_payload(name: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """A webhook for the group `alertname=<name>`."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "version": "4",
        "groupKey": f'{{}}:{{alertname="{name}"}}',
        "truncatedAlerts": 0,
        "status": "firing" if firing else "resolved",
        "receiver": "warroom",
        "groupLabels": {"alertname": name},
        "commonLabels": _common([a["labels"] for a in alerts]),
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example.com",
        "alerts": alerts,
    }


def _common(label_sets: list[dict[str, str]]) -> dict[str, str]:
    if not label_sets:
        return {}
    first = label_sets[0]
    return {k: v for k, v in first.items() if all(s.get(k) == v for s in label_sets)}


def _go_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
