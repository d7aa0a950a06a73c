"""Grafana alerting's webhook contact point: Alertmanager's shape (`version: "1"`) plus
`orgId`, `title`, `state`, `message`, and per alert `silenceURL`, `dashboardURL`, `panelURL`
and `values`, which the Alertmanager reader already keeps as links."""

from __future__ import annotations

from typing import Any

from app.domain.alerts import AlertBatch
from app.integrations.alerts import alertmanager


def parse(data: dict[str, Any]) -> AlertBatch:
    return alertmanager.parse(data)
