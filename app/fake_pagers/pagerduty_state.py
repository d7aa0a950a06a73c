"""The PagerDuty account a fake keeps: services with their Events API v2 integration keys,
incidents and their alerts' events, and the people who act on them.

The documented de-duplication rules are the point of this model. Events for a `dedup_key` apply
to the open alert with that key sent through the same integration key; a trigger for an open key
adds to it instead of paging again; an acknowledge or resolve for a key with no open alert is
accepted (202) and dropped; once resolved, a trigger with the same key opens a new incident.
Each change that PagerDuty would announce to v3 webhook subscribers is returned as a `Change`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .formats import IdMaker, stable_id
from .pagerduty_events import AlertEvent

JsonDict = dict[str, Any]

TRIGGERED = "triggered"
ACKNOWLEDGED = "acknowledged"
RESOLVED = "resolved"
# Who acted when the change came through the Events API (the integration, not a person).
EVENTS_API = "Events API V2"


@dataclass(frozen=True)
class User:
    """A PagerDuty user, known by the name shown as its references' `summary`."""

    id: str
    name: str


@dataclass
class Service:
    """A PagerDuty service with one Events API v2 integration (its routing key)."""

    id: str
    name: str
    routing_key: str
    integration_id: str
    escalation_policy_id: str
    escalation_policy: str
    oncall: User
    events_per_minute: int | None = None


@dataclass
class Event:
    """One accepted (202) Events API event, in arrival order.

    `outcome` says what it did: "created" (a new incident), "appended" (a trigger added to an
    open alert), "acknowledged", "resolved", "unchanged" (an acknowledge of an acknowledged
    alert) or "ignored" (an acknowledge or resolve with no open alert: dropped)."""

    at: float
    routing_key: str
    action: str
    dedup_key: str
    body: JsonDict
    outcome: str
    incident: Incident | None = None


@dataclass
class LogEntry:
    """A line of an incident's history: what happened, when, and by whom."""

    at: float
    action: str
    by: str


@dataclass
class Incident:
    """An incident opened by an Events API trigger (one alert, keyed by its dedup_key).

    `title` is the first trigger's summary; `summary` and `severity` follow the latest
    trigger. `acknowledged_by` / `resolved_by` name the person, or EVENTS_API when the change
    came through the Events API."""

    id: str
    number: int
    service: Service
    dedup_key: str
    title: str
    summary: str
    severity: str
    created_at: float
    status: str = TRIGGERED
    assignees: list[User] = field(default_factory=list)
    urgency: str = "high"
    acknowledged_by: str | None = None
    resolved_by: str | None = None
    events: list[Event] = field(default_factory=list)
    log: list[LogEntry] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """Triggered or acknowledged: events with its dedup_key still apply to it."""
        return self.status != RESOLVED


@dataclass(frozen=True)
class Change:
    """A change PagerDuty announces to webhook subscribers: the event type, the incident as it
    now is, who made it (a user, the service's Events API integration, or nobody), and the
    client named by the event that caused it."""

    event_type: str
    incident: Incident
    agent: User | Service | None
    client: JsonDict | None = None


class Account:
    """Services, incidents, events and users of one fake PagerDuty account."""

    def __init__(self, ids: IdMaker, clock: Callable[[], float]) -> None:
        self._ids = ids
        self._clock = clock
        self.services: dict[str, Service] = {}
        self.users: dict[str, User] = {}
        self.incidents: list[Incident] = []
        self.events: list[Event] = []

    def add_service(
        self,
        routing_key: str,
        name: str,
        *,
        oncall: str,
        escalation_policy: str,
        events_per_minute: int | None,
    ) -> Service:
        if routing_key in self.services:
            raise ValueError(f"routing key already registered: {routing_key}")
        service = Service(
            id=self._ids.pagerduty(),
            name=name,
            routing_key=routing_key,
            integration_id=self._ids.pagerduty(),
            escalation_policy_id=self._ids.pagerduty(),
            escalation_policy=escalation_policy,
            oncall=self.user(oncall),
            events_per_minute=events_per_minute,
        )
        self.services[routing_key] = service
        return service

    def user(self, name: str) -> User:
        """The user with this name, made on first mention (its id depends only on the name)."""
        if name not in self.users:
            self.users[name] = User(id=stable_id(name), name=name)
        return self.users[name]

    def open_incident(self, service: Service, dedup_key: str) -> Incident | None:
        """The open incident for `dedup_key` on `service`, if any."""
        for incident in reversed(self.incidents):
            if incident.service is service and incident.dedup_key == dedup_key and incident.is_open:
                return incident
        return None

    # the Events API --------------------------------------------------------------------

    def apply(self, event: AlertEvent, dedup_key: str) -> tuple[Event, Change | None]:
        """Apply a valid event for a known routing key (the trigger's dedup_key already
        generated when it had none)."""
        service = self.services[event.routing_key]
        incident = self.open_incident(service, dedup_key)
        record = Event(self._clock(), event.routing_key, event.action, dedup_key, event.body, "")
        change: Change | None = None
        if event.action == "trigger":
            if incident is None:
                incident = self._open(service, dedup_key, event.payload)
                record.outcome = "created"
                change = Change("incident.triggered", incident, service, _client(event.body))
            else:
                incident.summary = event.payload["summary"]
                incident.severity = event.payload["severity"]
                incident.log.append(LogEntry(record.at, "trigger", EVENTS_API))
                record.outcome = "appended"
        elif incident is None:
            record.outcome = "ignored"
        elif event.action == "acknowledge":
            if incident.status == TRIGGERED:
                self._acknowledge(incident, EVENTS_API)
                record.outcome = "acknowledged"
                change = Change("incident.acknowledged", incident, service)
            else:
                record.outcome = "unchanged"
        else:
            self._resolve(incident, EVENTS_API)
            record.outcome = "resolved"
            change = Change("incident.resolved", incident, service)
        record.incident = incident
        if incident is not None:
            incident.events.append(record)
        self.events.append(record)
        return record, change

    def _open(self, service: Service, dedup_key: str, payload: JsonDict) -> Incident:
        incident = Incident(
            id=self._ids.pagerduty("Q", 14),
            number=len(self.incidents) + 1,
            service=service,
            dedup_key=dedup_key,
            title=payload["summary"],
            summary=payload["summary"],
            severity=payload["severity"],
            created_at=self._clock(),
            assignees=[service.oncall],
        )
        incident.log.append(LogEntry(incident.created_at, "trigger", EVENTS_API))
        self.incidents.append(incident)
        return incident

    def _acknowledge(self, incident: Incident, by: str) -> None:
        incident.status = ACKNOWLEDGED
        incident.acknowledged_by = by
        incident.log.append(LogEntry(self._clock(), "acknowledge", by))

    def _resolve(self, incident: Incident, by: str) -> None:
        incident.status = RESOLVED
        incident.resolved_by = by
        incident.assignees = []
        incident.log.append(LogEntry(self._clock(), "resolve", by))

    # people in the PagerDuty app ---------------------------------------------------------

    def find_open(self, dedup_key: str, routing_key: str | None = None) -> Incident:
        """The open incident for `dedup_key` (on the service of `routing_key`, when given).
        KeyError when there is none; ValueError when several services have one."""
        found = [
            incident
            for incident in self.incidents
            if incident.dedup_key == dedup_key
            and incident.is_open
            and (routing_key is None or incident.service.routing_key == routing_key)
        ]
        if not found:
            raise KeyError(f"no open incident with dedup_key {dedup_key!r}")
        if len(found) > 1:
            raise ValueError(f"several services have an open {dedup_key!r}: name the routing key")
        return found[0]

    def acknowledge_as(self, incident: Incident, person: str) -> Change:
        if incident.status != TRIGGERED:
            raise ValueError(f"incident #{incident.number} is {incident.status}, not triggered")
        self._acknowledge(incident, person)
        return Change("incident.acknowledged", incident, self.user(person))

    def resolve_as(self, incident: Incident, person: str) -> Change:
        if not incident.is_open:
            raise ValueError(f"incident #{incident.number} is already resolved")
        self._resolve(incident, person)
        return Change("incident.resolved", incident, self.user(person))

    def escalate_as(self, incident: Incident, person: str, to: str) -> Change:
        """Escalate to `to`: the incident is triggered again and assigned to them."""
        if not incident.is_open:
            raise ValueError(f"incident #{incident.number} is already resolved")
        incident.status = TRIGGERED
        incident.acknowledged_by = None
        incident.assignees = [self.user(to)]
        incident.log.append(LogEntry(self._clock(), f"escalate to {to}", person))
        return Change("incident.escalated", incident, self.user(person))


def _client(body: JsonDict) -> JsonDict | None:
    """The event's monitoring client, as webhooks show it (`{"name", "url"}`), if named."""
    name = body.get("client")
    if not isinstance(name, str) or not name:
        return None
    client: JsonDict = {"name": name}
    if isinstance(body.get("client_url"), str):
        client["url"] = body["client_url"]
    return client
