"""Argument access and error signalling shared by the fake's API handlers.

Slack accepts the same argument as a query-string value, a form field or a JSON member,
so a value may arrive as a string ("true", "1", '[{"type": ...}]') or as a real JSON
type. Handlers read arguments through `Args` so that every encoding behaves the same.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE_STRINGS = frozenset({"1", "true", "yes", "on"})


class ApiError(Exception):
    """A Slack-level failure: answered with HTTP 200 and `{"ok": false, "error": ...}`."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body Slack would answer with."""
        return {"ok": False, "error": self.error, **self.extra}


class Args:
    """Typed, encoding-agnostic view of a call's arguments."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.values = values

    def raw(self, name: str) -> Any:
        """The value exactly as it arrived (string, number, list, dict or None)."""
        return self.values.get(name)

    def text(self, name: str, default: str | None = None) -> str | None:
        """A string argument; empty strings count as absent, as Slack treats them."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, (dict, list)):
            return json.dumps(value)
        return str(value)

    def require(self, name: str, error: str) -> str:
        """A string argument that must be present, else `error`."""
        value = self.text(name)
        if value is None:
            raise ApiError(error)
        return value

    def flag(self, name: str, default: bool = False) -> bool:
        """A boolean argument in any of Slack's spellings (true/1, false/0)."""
        value = self.values.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            return value != 0
        return str(value).strip().lower() in _TRUE_STRINGS

    def integer(self, name: str, default: int) -> int:
        """An integer argument; unparsable values fall back to the default like Slack."""
        value = self.values.get(name)
        if value is None or value == "" or isinstance(value, bool):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            return default

    def structured(self, name: str, error: str) -> Any:
        """A JSON argument that may arrive already decoded or as a JSON string."""
        value = self.values.get(name)
        if not isinstance(value, str):
            return value
        if value == "":
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError as exc:
            raise ApiError(error) from exc

    def ids(self, name: str) -> list[str]:
        """A comma-separated id list (or a JSON list), without blanks."""
        value = self.values.get(name)
        if value is None:
            return []
        items = value if isinstance(value, list) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]


def encode_cursor(offset: int) -> str:
    """Make an opaque cursor like Slack's base64 ones."""
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str | None) -> int:
    """Read a cursor back; garbage is `invalid_cursor` as on Slack."""
    if not cursor:
        return 0
    try:
        prefix, _, number = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        offset = int(number)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ApiError("invalid_cursor") from exc
    if prefix != "offset" or offset < 0:
        raise ApiError("invalid_cursor")
    return offset


def paginate(
    items: Sequence[T], args: Args, default_limit: int = 100, max_limit: int = 1000
) -> tuple[list[T], str]:
    """Cut one page out of `items` and return it with the next cursor ("" at the end).

    Bots must follow `response_metadata.next_cursor`; a fake that returned everything at
    once would hide missing pagination loops.
    """
    offset = decode_cursor(args.text("cursor"))
    limit = args.integer("limit", default_limit)
    if limit <= 0:
        limit = default_limit
    limit = min(limit, max_limit)
    end = offset + limit
    next_cursor = encode_cursor(end) if end < len(items) else ""
    return list(items[offset:end]), next_cursor
