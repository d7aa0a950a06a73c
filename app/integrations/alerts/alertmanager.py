"""Prometheus Alertmanager's webhook payload (`version: "4"`).

Each webhook carries a whole group as Alertmanager sees it at that moment, and a `resolved`
webhook may list only the last alert to clear: state is kept per alert (fingerprint) by the
service, never read off one payload.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from app.domain.alerts import Alert, AlertBatch, PayloadError
from app.integrations.alerts.fields import alert_list, mapping, moment, text

# Alert fields that are links, as the card names them.
LINK_FIELDS = ("generatorURL", "dashboardURL", "panelURL", "silenceURL")
LINK_ANNOTATIONS = ("runbook_url", "dashboard_url")


def fingerprint(labels: dict[str, str]) -> str:
    """A stable identity for an alert that came without one: its label set."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def read_alert(raw: dict[str, Any], where: str) -> Alert:
    status = text(raw, "status", where, "firing")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}status must be firing or resolved")
    labels = mapping(raw, "labels", where)
    annotations = mapping(raw, "annotations", where)
    links = {name: text(raw, name, where) for name in LINK_FIELDS if raw.get(name)}
    links.update({name: annotations[name] for name in LINK_ANNOTATIONS if annotations.get(name)})
    return Alert(
        fingerprint=text(raw, "fingerprint", where) or fingerprint(labels),
        firing=status == "firing",
        labels=labels,
        annotations=annotations,
        starts_at=moment(raw, "startsAt", where),
        ends_at=moment(raw, "endsAt", where),
        links=links,
    )


def parse(data: dict[str, Any]) -> AlertBatch:
    alerts = [read_alert(raw, f"alerts[{n}].") for n, raw in enumerate(alert_list(data))]
    group_labels = mapping(data, "groupLabels", "")
    key = text(data, "groupKey", "") or json.dumps(sorted(group_labels.items()))
    truncated = data.get("truncatedAlerts") or 0
    if not isinstance(truncated, int) or isinstance(truncated, bool) or truncated < 0:
        raise PayloadError("truncatedAlerts must be a whole number")
    return AlertBatch(
        group_key=key,
        alerts=alerts,
        group_labels=group_labels,
        common_labels=mapping(data, "commonLabels", ""),
        truncated=truncated,
        external_url=text(data, "externalURL", ""),
    )
