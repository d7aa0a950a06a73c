"""The checks the fake applies to an `incident` object before it touches the page.

Statuspage is a Rails application: a missing `incident` parameter is a 400 ("param is missing
or the value is empty: incident"), a record that fails validation a 422 whose message names the
field. Fields the API does not know are dropped silently, as strong parameters drop them; the
fake lists them (`FakeStatuspage.ignored_fields`) so a test can tell a typo from a field that
did nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .state import COMPONENT_STATUSES, INCIDENT_STATUSES, SCHEDULED_STATUSES, JsonDict

NAME_MAX = 255
BODY_MAX = 25_000
IMPACT_OVERRIDES = ("none", "maintenance", "minor", "major", "critical")
# Documented incident fields; any other is ignored (and listed).
KNOWN_FIELDS = frozenset(
    {
        "name",
        "status",
        "impact_override",
        "scheduled_for",
        "scheduled_until",
        "scheduled_remind_prior",
        "scheduled_auto_in_progress",
        "scheduled_auto_completed",
        "metadata",
        "deliver_notifications",
        "auto_transition_deliver_notifications_at_end",
        "auto_transition_deliver_notifications_at_start",
        "auto_transition_to_maintenance_state",
        "auto_transition_to_operational_state",
        "auto_tweet_at_beginning",
        "auto_tweet_on_completion",
        "auto_tweet_on_creation",
        "auto_tweet_one_hour_before",
        "backfill_date",
        "backfilled",
        "body",
        "components",
        "component_ids",
        "scheduled_auto_transition",
    }
)


@dataclass
class Checked:
    """The fields the fake applies, or the refusal (status and message)."""

    fields: JsonDict = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)
    status: int = 0
    message: str = ""

    @property
    def refused(self) -> bool:
        return self.status != 0


def check_incident(body: Any, components: Mapping[str, object], creating: bool) -> Checked:
    """Validate a create (`creating`) or update request body against the page's components."""
    incident = body.get("incident") if isinstance(body, dict) else None
    if not isinstance(incident, dict) or not incident:
        return Checked(status=400, message="param is missing or the value is empty: incident")
    out = Checked(ignored=sorted(set(incident) - KNOWN_FIELDS))
    for check in (_name, _status, _body, _notifications, _impact, _metadata):
        message = check(incident, out.fields, creating)
        if message:
            return Checked(status=422, message=message)
    message = _components(incident, out.fields, components)
    if message:
        return Checked(status=422, message=message)
    return out


def _name(incident: JsonDict, fields: JsonDict, creating: bool) -> str:
    if "name" not in incident and not creating:
        return ""
    name = incident.get("name")
    if not isinstance(name, str) or not name.strip():
        return "Name can't be blank"
    if len(name) > NAME_MAX:
        return f"Name is too long (maximum is {NAME_MAX} characters)"
    fields["name"] = name
    return ""


def _status(incident: JsonDict, fields: JsonDict, creating: bool) -> str:
    if "status" not in incident:
        return ""
    status = incident["status"]
    if status in SCHEDULED_STATUSES:
        return f"Status {status!r} is for scheduled maintenance, which this fake does not model"
    if status not in INCIDENT_STATUSES:
        return f"Status {status!r} is not a valid status: use one of {', '.join(INCIDENT_STATUSES)}"
    fields["status"] = status
    return ""


def _body(incident: JsonDict, fields: JsonDict, creating: bool) -> str:
    if "body" not in incident or incident["body"] is None:
        return ""
    text = incident["body"]
    if not isinstance(text, str):
        return "Body must be a string"
    if len(text) > BODY_MAX:
        return f"Body is too long (maximum is {BODY_MAX} characters)"
    fields["body"] = text
    return ""


def _notifications(incident: JsonDict, fields: JsonDict, creating: bool) -> str:
    if "deliver_notifications" not in incident:
        return ""
    value = incident["deliver_notifications"]
    if not isinstance(value, bool):
        return "Deliver notifications must be true or false"
    fields["deliver_notifications"] = value
    return ""


def _impact(incident: JsonDict, fields: JsonDict, creating: bool) -> str:
    if "impact_override" not in incident:
        return ""
    value = incident["impact_override"]
    if value not in IMPACT_OVERRIDES:
        return f"Impact override {value!r} is not one of {', '.join(IMPACT_OVERRIDES)}"
    fields["impact_override"] = value
    return ""


def _metadata(incident: JsonDict, fields: JsonDict, creating: bool) -> str:
    if "metadata" not in incident:
        return ""
    metadata = incident["metadata"]
    if not isinstance(metadata, dict):
        return "Metadata must be an object"
    for key, value in metadata.items():
        if not isinstance(value, dict):
            return f"Metadata top-level values must be objects ({key!r} is not)"
    fields["metadata"] = metadata
    return ""


def _components(incident: JsonDict, fields: JsonDict, known: Mapping[str, object]) -> str:
    ids = incident.get("component_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return "Component ids must be a list of component ids"
    statuses = incident.get("components", {})
    if not isinstance(statuses, dict):
        return "Components must map component ids to statuses"
    unknown = sorted({*ids, *statuses} - set(known))
    if unknown:
        return f"Components not found on this page: {', '.join(unknown)}"
    for component_id, status in statuses.items():
        if status not in (*COMPONENT_STATUSES, ""):
            return (
                f"Component status {status!r} for {component_id} is not one of "
                f"{', '.join(COMPONENT_STATUSES)}"
            )
    if ids:
        fields["component_ids"] = list(ids)
    if statuses:
        fields["components"] = dict(statuses)
    return ""
