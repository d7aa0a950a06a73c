"""Reading a JSON payload's fields strictly: a wrong type is a `PayloadError` naming the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from app.domain.alerts import PayloadError

MAX_ALERTS = 1000
MAX_VALUE = 4000


def text(data: dict[str, Any], key: str, where: str, default: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, str):
        raise PayloadError(f"{where}{key} must be a string")
    return value[:MAX_VALUE]


def mapping(data: dict[str, Any], key: str, where: str) -> dict[str, str]:
    """A labels or annotations object: string keys, values kept as strings."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where}{key} must be an object")
    out: dict[str, str] = {}
    for name, item in value.items():
        if isinstance(item, (dict, list)):
            raise PayloadError(f"{where}{key}.{name} must be a string")
        out[str(name)[:200]] = ("" if item is None else str(item))[:MAX_VALUE]
    return out


def moment(data: dict[str, Any], key: str, where: str) -> datetime | None:
    """An RFC 3339 time; Go's zero time (`0001-01-01T00:00:00Z`, "not ended") reads as None."""
    raw = data.get(key)
    if raw in (None, ""):
        return None
    if not isinstance(raw, str):
        raise PayloadError(f"{where}{key} must be an RFC 3339 time")
    value = raw.strip()
    if value.startswith("0001-01-01"):
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    # Go writes up to nine fractional digits; Python reads six.
    head, dot, rest = value.partition(".")
    if dot:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        rest = rest[: min(digits, 6)] + rest[digits:]
        value = f"{head}.{rest}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(f"{where}{key} is not an RFC 3339 time ({raw[:40]!r})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def alert_list(data: dict[str, Any]) -> list[dict[str, Any]]:
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts must be a list")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError(f"{len(alerts)} alerts in one payload; at most {MAX_ALERTS}")
    for number, alert in enumerate(alerts):
        if not isinstance(alert, dict):
            raise PayloadError(f"alerts[{number}] must be an object")
    return alerts
