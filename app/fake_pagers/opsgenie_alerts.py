"""Opsgenie's Alert API as the fake keeps it: validation of create / acknowledge / close
requests, alerts with alias de-duplication, and the status of each accepted request.

Opsgenie accepts a valid request with 202 and processes it asynchronously, so the answer does
not say whether it worked: an acknowledge for an alias that matches no alert is accepted all the
same, and only `GET /v2/alerts/requests/{requestId}` tells that it failed ("Alert does not
exist"). Creating an alert with the alias of an open one only increments that alert's `count`.

Field limits are those of the Create Alert documentation. The fake refuses (422) a value over a
limit rather than truncating it: a bot that passes here does not depend on truncation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .formats import IdMaker, iso_millis

JsonDict = dict[str, Any]

PRIORITIES = ("P1", "P2", "P3", "P4", "P5")
DEFAULT_PRIORITY = "P3"
RESPONDER_TYPES = ("team", "user", "escalation", "schedule")
VISIBLE_TO_TYPES = ("team", "user")
IDENTIFIER_TYPES = ("id", "alias", "tiny")
STRING_LIMITS = {
    "message": 130,
    "alias": 512,
    "description": 15000,
    "entity": 512,
    "source": 100,
    "user": 100,
    "note": 25000,
}
ACTION_FIELDS = ("user", "source", "note")
MAX_RECIPIENTS = 50
MAX_TAGS, MAX_TAG_LENGTH = 20, 50
MAX_ACTIONS, MAX_ACTION_LENGTH = 10, 50
MAX_DETAILS_CHARACTERS = 8000

OPEN = "open"
CLOSED = "closed"


def _check_strings(body: JsonDict, names: tuple[str, ...]) -> dict[str, str]:
    errors = {}
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            errors[name] = f"{name} must be a string"
        elif len(value) > STRING_LIMITS[name]:
            errors[name] = f"{name} must be at most {STRING_LIMITS[name]} characters"
    return errors


def _check_recipients(value: Any, name: str, types: tuple[str, ...]) -> str | None:
    """`responders` and `visibleTo`: typed recipients, each named by id or name (a user by id
    or username)."""
    if value is None:
        return None
    if not isinstance(value, list):
        return f"{name} must be an array"
    if len(value) > MAX_RECIPIENTS:
        return f"{name} can have at most {MAX_RECIPIENTS} items"
    for item in value:
        if not isinstance(item, dict) or item.get("type") not in types:
            return f"{name} type must be one of {', '.join(types)}"
        keys = ("id", "username") if item["type"] == "user" else ("id", "name")
        if not any(isinstance(item.get(key), str) and item[key].strip() for key in keys):
            return f"{name} of type {item['type']} need an {' or '.join(keys)}"
    return None


def _check_string_list(value: Any, name: str, most: int, length: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        return f"{name} must be an array of strings"
    if len(value) > most:
        return f"{name} can have at most {most} items"
    if any(len(item) > length for item in value):
        return f"each of {name} must be at most {length} characters"
    return None


def _check_details(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        return "details must be a map of strings to strings"
    if sum(len(k) + len(v) for k, v in value.items()) > MAX_DETAILS_CHARACTERS:
        return f"details must be at most {MAX_DETAILS_CHARACTERS} characters in total"
    return None


def validate_create(body: JsonDict) -> dict[str, str]:
    """Every problem with a Create Alert body, by field (empty when valid)."""
    errors: dict[str, str] = {}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        errors["message"] = "Message can not be empty."
    errors.update(_check_strings(body, tuple(STRING_LIMITS)))
    checks = {
        "responders": _check_recipients(body.get("responders"), "responders", RESPONDER_TYPES),
        "visibleTo": _check_recipients(body.get("visibleTo"), "visibleTo", VISIBLE_TO_TYPES),
        "tags": _check_string_list(body.get("tags"), "tags", MAX_TAGS, MAX_TAG_LENGTH),
        "actions": _check_string_list(
            body.get("actions"), "actions", MAX_ACTIONS, MAX_ACTION_LENGTH
        ),
        "details": _check_details(body.get("details")),
    }
    errors.update({name: problem for name, problem in checks.items() if problem})
    priority = body.get("priority")
    if priority is not None and priority not in PRIORITIES:
        errors["priority"] = f"priority must be one of {', '.join(PRIORITIES)}"
    return errors


def validate_action(body: JsonDict) -> dict[str, str]:
    """Problems with an acknowledge / close body (`user`, `source`, `note`, all optional)."""
    return _check_strings(body, ACTION_FIELDS)


@dataclass
class LogEntry:
    """A line of an alert's log: what happened, when, and by whom."""

    at: float
    action: str
    by: str


@dataclass
class Alert:
    """An Opsgenie alert, with the fields of the Create Alert request and its state."""

    id: str
    tiny_id: str
    alias: str
    message: str
    integration_id: str
    created_at: float
    priority: str = DEFAULT_PRIORITY
    description: str | None = None
    responders: list[JsonDict] = field(default_factory=list)
    visible_to: list[JsonDict] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    details: dict[str, str] = field(default_factory=dict)
    entity: str | None = None
    source: str | None = None
    user: str | None = None
    notes: list[str] = field(default_factory=list)
    status: str = OPEN
    acknowledged: bool = False
    acknowledged_by: str | None = None
    closed_by: str | None = None
    count: int = 1
    last_occurred_at: float = 0.0
    updated_at: float = 0.0
    log: list[LogEntry] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status == OPEN


@dataclass
class AlertRequest:
    """An accepted (202) request and, once processed, its outcome, as Get Request Status
    shows it."""

    request_id: str
    action: str  # "Create", "Acknowledge" or "Close"
    integration_id: str
    body: JsonDict
    received_at: float
    identifier: str | None = None
    identifier_type: str = "id"
    sender_ip: str = ""
    processed_at: float | None = None
    success: bool = False
    status: str = ""
    alert_id: str = ""
    alias: str = ""

    @property
    def processed(self) -> bool:
        return self.processed_at is not None

    def data(self) -> JsonDict:
        """`data` of the Get Request Status answer."""
        return {
            "success": self.success,
            "action": self.action,
            "processedAt": iso_millis(self.processed_at or self.received_at),
            "integrationId": self.integration_id,
            "isSuccess": self.success,
            "status": self.status,
            "alertId": self.alert_id,
            "alias": self.alias,
        }


class AlertStore:
    """The alerts and requests of one fake Opsgenie account."""

    def __init__(self, ids: IdMaker, clock: Callable[[], float]) -> None:
        self._ids = ids
        self._clock = clock
        self.alerts: list[Alert] = []
        self.requests: dict[str, AlertRequest] = {}

    def find(self, identifier: str, identifier_type: str) -> Alert | None:
        """The alert an identifier names; for an alias, the open alert with it, else the
        latest closed one."""
        if identifier_type == "alias":
            with_alias = [alert for alert in self.alerts if alert.alias == identifier]
            open_ones = [alert for alert in with_alias if alert.is_open]
            chosen = open_ones or with_alias
            return chosen[-1] if chosen else None
        key = "id" if identifier_type == "id" else "tiny_id"
        return next((alert for alert in self.alerts if getattr(alert, key) == identifier), None)

    def process(self, request: AlertRequest) -> None:
        """Apply an accepted request and record its outcome."""
        request.processed_at = self._clock()
        if request.action == "Create":
            alert = self._create(request)
        else:
            found = self.find(request.identifier or "", request.identifier_type)
            if found is None:
                request.success, request.status = False, "Alert does not exist"
                request.alert_id = request.alias = ""
                return
            alert = self._act(request, found)
        request.alert_id, request.alias = alert.id, alert.alias

    def _create(self, request: AlertRequest) -> Alert:
        body, now = request.body, request.processed_at or self._clock()
        alias = body.get("alias")
        existing = self.find(alias, "alias") if isinstance(alias, str) and alias else None
        request.success, request.status = True, "Created alert"
        if existing is not None and existing.is_open:
            existing.count += 1
            existing.last_occurred_at = existing.updated_at = now
            existing.log.append(LogEntry(now, "count incremented", body.get("user") or "API"))
            return existing
        alert_id = self._ids.uuid()
        alert = Alert(
            id=alert_id,
            tiny_id=str(len(self.alerts) + 1),
            alias=alias if isinstance(alias, str) and alias else alert_id,
            message=body["message"],
            integration_id=request.integration_id,
            created_at=now,
            priority=body.get("priority") or DEFAULT_PRIORITY,
            description=body.get("description"),
            responders=list(body.get("responders") or []),
            visible_to=list(body.get("visibleTo") or []),
            actions=list(body.get("actions") or []),
            tags=list(body.get("tags") or []),
            details=dict(body.get("details") or {}),
            entity=body.get("entity"),
            source=body.get("source") or request.sender_ip,
            user=body.get("user"),
            notes=[body["note"]] if body.get("note") else [],
            last_occurred_at=now,
            updated_at=now,
        )
        alert.log.append(LogEntry(now, "created", body.get("user") or "API"))
        self.alerts.append(alert)
        return alert

    def _act(self, request: AlertRequest, alert: Alert) -> Alert:
        now, by = request.processed_at or self._clock(), request.body.get("user") or "API"
        if request.body.get("note"):
            alert.notes.append(request.body["note"])
        if request.action == "Acknowledge":
            if not alert.is_open:
                request.success, request.status = False, "Alert is already closed"
                return alert
            if not alert.acknowledged:
                self.acknowledge(alert, by, now)
            request.success, request.status = True, "Acknowledged alert"
        else:
            if alert.is_open:
                self.close(alert, by, now)
            request.success, request.status = True, "Closed alert"
        return alert

    def acknowledge(self, alert: Alert, by: str, now: float) -> None:
        alert.acknowledged, alert.acknowledged_by, alert.updated_at = True, by, now
        alert.log.append(LogEntry(now, "acknowledged", by))

    def close(self, alert: Alert, by: str, now: float) -> None:
        alert.status, alert.closed_by, alert.updated_at = CLOSED, by, now
        alert.log.append(LogEntry(now, "closed", by))
