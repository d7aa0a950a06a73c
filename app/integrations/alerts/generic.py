"""The generic webhook: any sender that can post JSON.

{"group": "checkout-latency",            # optional: alerts sharing it share a card
 "alerts": [{"id": "p99-eu",             # required: the alert's identity
             "status": "firing",         # or "resolved"
             "title": "p99 above 2 s",   # optional: becomes the summary annotation
             "labels": {"service": "checkout", "severity": "critical"},
             "annotations": {"runbook_url": "https://…"},
             "starts_at": "2026-12-08T10:00:00Z",
             "ends_at": null,
             "url": "https://…"}]}       # optional: a link back to the sender
"""

from __future__ import annotations

from typing import Any

from app.domain.alerts import Alert, AlertBatch, PayloadError
from app.integrations.alerts.fields import alert_list, mapping, moment, text


def _alert(raw: dict[str, Any], where: str) -> Alert:
    identity = text(raw, "id", where)
    if not identity:
        raise PayloadError(f"{where}id is required")
    status = text(raw, "status", where, "firing")
    if status not in ("firing", "resolved"):
        raise PayloadError(f"{where}status must be firing or resolved")
    annotations = mapping(raw, "annotations", where)
    title = text(raw, "title", where)
    if title:
        annotations.setdefault("summary", title)
    links = {"url": text(raw, "url", where)} if raw.get("url") else {}
    if annotations.get("runbook_url"):
        links["runbook_url"] = annotations["runbook_url"]
    return Alert(
        fingerprint=identity,
        firing=status == "firing",
        labels=mapping(raw, "labels", where),
        annotations=annotations,
        starts_at=moment(raw, "starts_at", where),
        ends_at=moment(raw, "ends_at", where),
        links=links,
    )


def parse(data: dict[str, Any]) -> AlertBatch:
    alerts = [_alert(raw, f"alerts[{n}].") for n, raw in enumerate(alert_list(data))]
    group = text(data, "group", "")
    if not group:
        group = alerts[0].fingerprint if len(alerts) == 1 else ""
    if not group:
        raise PayloadError("group is required when a payload holds more than one alert")
    return AlertBatch(group_key=group, alerts=alerts)
