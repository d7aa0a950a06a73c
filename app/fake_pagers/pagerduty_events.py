"""Validation of PagerDuty Events API v2 alert events (`POST /v2/enqueue`), as documented.

PagerDuty answers an invalid event with 400 and a list of every problem found, in sentences of
a few fixed forms ("Length of 'routing_key' is incorrect (should be 32 characters)",
"'payload.severity' is missing or blank", "'payload.severity' is invalid (must be one of the
following: ...)"); the fake checks the whole event and lists its problems the same way, so the
bot can be tested against each one. Where the documentation states a limit but not the exact
wording of its error, the sentence follows the same forms.

The fake is stricter than necessary rather than laxer: a limit the documentation states ("the
maximum permitted length", "must be served via HTTPS") is enforced, even where the real service
might truncate or ignore instead, so that a bot passing here passes there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .formats import parse_iso8601

JsonDict = dict[str, Any]

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
# In the order PagerDuty's own error sentence lists them.
SEVERITIES = ("critical", "warning", "error", "info")
ROUTING_KEY_LENGTH = 32
DEDUP_KEY_MAX = 255
SUMMARY_MAX = 1024
PAYLOAD_STRINGS = ("component", "group", "class")


@dataclass(frozen=True)
class AlertEvent:
    """A valid alert event: what the processing needs, and the event as sent."""

    routing_key: str
    action: str
    dedup_key: str | None
    body: JsonDict

    @property
    def payload(self) -> JsonDict:
        """The trigger's payload ({} for acknowledge and resolve, which ignore it)."""
        payload = self.body.get("payload")
        return payload if self.action == "trigger" and isinstance(payload, dict) else {}


def one_of(values: tuple[str, ...]) -> str:
    """`'a', 'b' or 'c'`, as PagerDuty's sentences list allowed values."""
    quoted = [f"'{value}'" for value in values]
    return ", ".join(quoted[:-1]) + " or " + quoted[-1]


def missing(name: str) -> str:
    return f"'{name}' is missing or blank"


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check_routing_key(value: Any) -> list[str]:
    """Problems with the integration key's form (not whether it exists)."""
    if _blank(value):
        return [missing("routing_key")]
    if not isinstance(value, str):
        return ["'routing_key' must be a string"]
    errors = []
    if len(value) != ROUTING_KEY_LENGTH:
        errors.append(
            f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)"
        )
    if not value.isascii() or not value.isalnum():
        errors.append("'routing_key' cannot contain non-alphanumeric characters.")
    return errors


def _check_action(value: Any) -> list[str]:
    if _blank(value):
        return [missing("event_action")]
    if value not in EVENT_ACTIONS:
        return [
            f"'event_action' is invalid (must be one of the following: {one_of(EVENT_ACTIONS)})"
        ]
    return []


def _check_dedup_key(value: Any, action: Any) -> list[str]:
    if _blank(value):
        # A trigger without one gets a generated key; the others have nothing to act on.
        return [missing("dedup_key")] if action in ("acknowledge", "resolve") else []
    if not isinstance(value, str):
        return ["'dedup_key' must be a string"]
    if len(value) > DEDUP_KEY_MAX:
        return [f"'dedup_key' is too long (must be at most {DEDUP_KEY_MAX} characters)"]
    return []


def _check_string(value: Any, name: str, *, required: bool, most: int | None = None) -> list[str]:
    if _blank(value):
        return [missing(name)] if required else []
    if not isinstance(value, str):
        return [f"'{name}' must be a string"]
    if most is not None and len(value) > most:
        return [f"'{name}' is too long (must be at most {most} characters)"]
    return []


def _check_payload(payload: Any) -> list[str]:
    if payload is None or payload == {}:
        return [missing("payload")]
    if not isinstance(payload, dict):
        return ["'payload' must be an object"]
    errors = _check_string(
        payload.get("summary"), "payload.summary", required=True, most=SUMMARY_MAX
    )
    errors += _check_string(payload.get("source"), "payload.source", required=True)
    severity = payload.get("severity")
    if _blank(severity):
        errors.append(missing("payload.severity"))
    elif severity not in SEVERITIES:
        errors.append(
            f"'payload.severity' is invalid (must be one of the following: {one_of(SEVERITIES)})"
        )
    timestamp = payload.get("timestamp")
    if timestamp is not None and (
        not isinstance(timestamp, str) or parse_iso8601(timestamp) is None
    ):
        errors.append("'payload.timestamp' is invalid (must be an ISO 8601 timestamp)")
    for name in PAYLOAD_STRINGS:
        errors += _check_string(payload.get(name), f"payload.{name}", required=False)
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        errors.append("'payload.custom_details' must be an object")
    return errors


def _check_context(items: Any, name: str, required: str, optional: tuple[str, ...]) -> list[str]:
    """`links` and `images`: arrays of objects with one required URL field."""
    if items is None:
        return []
    if not isinstance(items, list):
        return [f"'{name}' must be an array"]
    errors: list[str] = []
    for index, item in enumerate(items):
        where = f"{name}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"'{where}' must be an object")
            continue
        errors += _check_string(item.get(required), f"{where}.{required}", required=True)
        if name == "images" and isinstance(item.get("src"), str) and item["src"].strip():
            if not item["src"].lower().startswith("https://"):
                errors.append(f"'{where}.src' must be an HTTPS URL")
        for field in optional:
            errors += _check_string(item.get(field), f"{where}.{field}", required=False)
    return errors


def validate_event(body: JsonDict) -> tuple[AlertEvent | None, list[str]]:
    """The event, or every problem PagerDuty would list for it."""
    action = body.get("event_action")
    errors = check_routing_key(body.get("routing_key"))
    errors += _check_action(action)
    errors += _check_dedup_key(body.get("dedup_key"), action)
    if action == "trigger":
        errors += _check_payload(body.get("payload"))
    errors += _check_context(body.get("links"), "links", "href", ("text",))
    errors += _check_context(body.get("images"), "images", "src", ("href", "alt"))
    for name in ("client", "client_url"):
        errors += _check_string(body.get(name), name, required=False)
    if errors:
        return None, errors
    dedup_key = body.get("dedup_key")
    return (
        AlertEvent(
            routing_key=body["routing_key"],
            action=str(action),
            dedup_key=dedup_key if isinstance(dedup_key, str) and dedup_key.strip() else None,
            body=body,
        ),
        [],
    )
