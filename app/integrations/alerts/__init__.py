"""Readers of monitoring systems' webhook payloads, each into `app.domain.alerts.AlertBatch`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from app.domain.alerts import AlertBatch
from app.integrations.alerts import alertmanager, generic, grafana

Parser = Callable[[dict[str, Any]], AlertBatch]

PARSERS: dict[str, Parser] = {
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "generic": generic.parse,
}
