"""What the fake Statuspage holds: one page, its components and its incidents, shaped in answers
as the Statuspage REST API (v1) documents its `Component`, `Incident` and `IncidentUpdate`
objects.

Setting a component's status through an incident (the incident's `components` map) changes the
component itself, adds it to the incident's `components`, and records the change in the
update's `affected_components` (`code`, `name`, `old_status`, `new_status`), as the real API
does; a status page visitor sees the component's new status at once.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

JsonDict = dict[str, Any]

INCIDENT_STATUSES = ("investigating", "identified", "monitoring", "resolved")
# Scheduled maintenance statuses exist in the API; the fake refuses them (Warroom sends none).
SCHEDULED_STATUSES = ("scheduled", "in_progress", "verifying", "completed")
COMPONENT_STATUSES = (
    "operational",
    "under_maintenance",
    "degraded_performance",
    "partial_outage",
    "major_outage",
)
# The impact Statuspage derives from the worst component status an incident sets (an
# approximation of its calculation; `impact_override` replaces it).
_IMPACT = {
    "major_outage": "critical",
    "partial_outage": "major",
    "degraded_performance": "minor",
    "under_maintenance": "maintenance",
}
_IMPACT_RANK = {"none": 0, "maintenance": 1, "minor": 2, "major": 3, "critical": 4}
_ID_ALPHABET = string.ascii_lowercase + string.digits


def iso(moment: float) -> str:
    """`2013-05-07T03:00:00.007Z`: UTC with milliseconds, as the API's examples show."""
    text = datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


class Ids:
    """12-character lower-case ids such as `pgwm2qmd8b2m`, from a seedable generator."""

    def __init__(self, seed: int | None = None) -> None:
        self._rng = random.Random(seed)

    def make(self, length: int = 12) -> str:
        return "".join(self._rng.choice(_ID_ALPHABET) for _ in range(length))


@dataclass
class Component:
    id: str
    page_id: str
    name: str
    status: str = "operational"
    description: str = ""
    position: int = 1
    created_at: float = 0.0
    updated_at: float = 0.0

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "page_id": self.page_id,
            "group_id": None,
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "group": False,
            "name": self.name,
            "description": self.description or None,
            "position": self.position,
            "status": self.status,
            "showcase": True,
            "only_show_if_degraded": False,
            "automation_email": f"component+{self.id}@notifications.statuspage.io",
            "start_date": None,
        }


@dataclass
class AffectedComponent:
    code: str
    name: str
    old_status: str
    new_status: str

    def to_json(self) -> JsonDict:
        return {
            "code": self.code,
            "name": self.name,
            "old_status": self.old_status,
            "new_status": self.new_status,
        }


@dataclass
class IncidentUpdate:
    id: str
    incident_id: str
    status: str
    body: str
    created_at: float
    deliver_notifications: bool
    affected_components: list[AffectedComponent] = field(default_factory=list)

    def to_json(self) -> JsonDict:
        return {
            "id": self.id,
            "incident_id": self.incident_id,
            "affected_components": [a.to_json() for a in self.affected_components] or None,
            "body": self.body,
            "created_at": iso(self.created_at),
            "custom_tweet": None,
            "deliver_notifications": self.deliver_notifications,
            "display_at": iso(self.created_at),
            "status": self.status,
            "tweet_id": None,
            "twitter_updated_at": None,
            "updated_at": iso(self.created_at),
            "wants_twitter_update": False,
        }


@dataclass
class Incident:
    id: str
    page_id: str
    name: str
    status: str
    created_at: float
    updated_at: float
    shortlink: str
    metadata: JsonDict = field(default_factory=dict)
    impact_override: str | None = None
    component_ids: list[str] = field(default_factory=list)  # in the order first affected
    updates: list[IncidentUpdate] = field(default_factory=list)  # oldest first
    monitoring_at: float | None = None
    resolved_at: float | None = None

    @property
    def resolved(self) -> bool:
        return self.status == "resolved"


class PageState:
    """One Statuspage page: its components by id and its incidents in creation order."""

    def __init__(self, page_id: str, ids: Ids, clock: Callable[[], float]) -> None:
        self.page_id = page_id
        self.ids = ids
        self.clock = clock
        self.components: dict[str, Component] = {}
        self.incidents: list[Incident] = []

    def add_component(self, name: str, component_id: str | None = None) -> Component:
        now = self.clock()
        component = Component(
            id=component_id or self.ids.make(),
            page_id=self.page_id,
            name=name,
            position=len(self.components) + 1,
            created_at=now,
            updated_at=now,
        )
        self.components[component.id] = component
        return component

    def incident(self, incident_id: str) -> Incident | None:
        return next((i for i in self.incidents if i.id == incident_id), None)

    def create(self, fields: JsonDict) -> Incident:
        """A new incident from validated fields, with its first update."""
        now = self.clock()
        incident = Incident(
            id=self.ids.make(),
            page_id=self.page_id,
            name=fields["name"],
            status=fields.get("status", "investigating"),
            created_at=now,
            updated_at=now,
            shortlink=f"https://stspg.io/{self.ids.make(9)}",
            metadata=fields.get("metadata", {}),
            impact_override=fields.get("impact_override"),
        )
        self.incidents.append(incident)
        self._record(incident, fields, now, first=True)
        return incident

    def update(self, incident: Incident, fields: JsonDict) -> Incident:
        """Apply validated fields to an incident; a new status or body is a new update."""
        now = self.clock()
        if "name" in fields:
            incident.name = fields["name"]
        if "metadata" in fields:
            incident.metadata = fields["metadata"]
        if "impact_override" in fields:
            incident.impact_override = fields["impact_override"]
        incident.status = fields.get("status", incident.status)
        incident.updated_at = now
        self._record(incident, fields, now, first=False)
        return incident

    def set_component(self, component: Component, status: str) -> None:
        component.status = status
        component.updated_at = self.clock()

    def _record(self, incident: Incident, fields: JsonDict, now: float, first: bool) -> None:
        affected = []
        for component_id in fields.get("component_ids", []):
            if component_id not in incident.component_ids:
                incident.component_ids.append(component_id)
        for component_id, status in fields.get("components", {}).items():
            component = self.components[component_id]
            if component_id not in incident.component_ids:
                incident.component_ids.append(component_id)
            if status and status != component.status:
                affected.append(
                    AffectedComponent(component.id, component.name, component.status, status)
                )
                self.set_component(component, status)
        if incident.status == "monitoring" and incident.monitoring_at is None:
            incident.monitoring_at = now
        if incident.status == "resolved" and incident.resolved_at is None:
            incident.resolved_at = now
        if not first and "status" not in fields and "body" not in fields and not affected:
            return  # a change of name or metadata alone is not an update
        incident.updates.append(
            IncidentUpdate(
                id=self.ids.make(),
                incident_id=incident.id,
                status=incident.status,
                body=fields.get("body", ""),
                created_at=now,
                deliver_notifications=fields.get("deliver_notifications", True),
                affected_components=affected,
            )
        )

    def impact(self, incident: Incident) -> str:
        if incident.impact_override:
            return incident.impact_override
        worst = "none"
        for component_id in incident.component_ids:
            status = self.components[component_id].status
            impact = _IMPACT.get(status, "none")
            if _IMPACT_RANK[impact] > _IMPACT_RANK[worst]:
                worst = impact
        return worst

    def incident_json(self, incident: Incident) -> JsonDict:
        """The incident as the API answers it (its updates newest first, as Statuspage lists
        them)."""
        return {
            "id": incident.id,
            "components": [self.components[c].to_json() for c in incident.component_ids],
            "created_at": iso(incident.created_at),
            "impact": self.impact(incident),
            "impact_override": incident.impact_override,
            "incident_updates": [u.to_json() for u in reversed(incident.updates)],
            "metadata": incident.metadata,
            "monitoring_at": iso(incident.monitoring_at) if incident.monitoring_at else None,
            "name": incident.name,
            "page_id": incident.page_id,
            "postmortem_body": None,
            "postmortem_body_last_updated_at": None,
            "postmortem_ignored": False,
            "postmortem_notified_subscribers": False,
            "postmortem_notified_twitter": False,
            "postmortem_published_at": None,
            "resolved_at": iso(incident.resolved_at) if incident.resolved_at else None,
            "scheduled_auto_completed": False,
            "scheduled_auto_in_progress": False,
            "scheduled_for": None,
            "scheduled_remind_prior": False,
            "scheduled_reminded_at": None,
            "scheduled_until": None,
            "shortlink": incident.shortlink,
            "status": incident.status,
            "updated_at": iso(incident.updated_at),
        }

    def matches(self, incident: Incident, query: str) -> bool:
        """The API's `q`: the text in the incident's name, status or updates."""
        needle = query.lower()
        texts = [incident.name, incident.status, *(u.body for u in incident.updates)]
        return any(needle in text.lower() for text in texts)
