"""Log formatting: one JSON object per line (`LOG_FORMAT=json`), and a filter that hides Slack
tokens from every line whatever the format.

The JSON lines carry `time` (ISO 8601, UTC), `level`, `logger`, `message`, and the structured
fields a call passed with `extra=` (`incident_id`, `severity`, `action`, `user_id`,
`slack_method`, `duration_ms`, ...), so a log pipeline can filter on them without parsing
sentences. Only the fields in `FIELDS` are copied: an `extra=` holding something else stays out
of the line, so a field cannot carry text by accident.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, TextIO

# Structured fields copied from a record's `extra=` into the JSON line.
FIELDS = (
    "event",
    "incident_id",
    "severity",
    "old_severity",
    "action",
    "user_id",
    "private",
    "drill",
    "kind",
    "key",
    "provider",
    "target",
    "outcome",
    "slack_method",
    "error",
    "duration_ms",
    "lag_seconds",
    "source",
)

# Slack tokens: bot, user, app-level, refresh and configuration ones.
TOKEN = re.compile(r"\b(?:xox[abposre]|xapp)-[A-Za-z0-9-]+")
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return TOKEN.sub(REDACTED, text)


class RedactTokens(logging.Filter):
    """The last line of defence: anything shaped like a Slack token is replaced before a line
    is written, in its message, its arguments and its traceback. The code never logs a token on
    purpose; a library's debug line or an exception's text might."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed call: logging reports it when the line is written
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; see the module docstring for its fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = record.__dict__.get(name)
            if value is not None:
                line[name] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Handler(logging.StreamHandler[TextIO]):
    """The handler `configure` installs (told apart from others so it replaces only its own)."""


def configure(level: str, fmt: str = "text") -> None:
    """The root handler on standard error, in the format asked for, with tokens redacted.

    Like `logging.basicConfig`, it leaves a root logger that already has someone else's
    handlers alone (a test runner's capture) but for the level; it replaces its own."""
    root = logging.getLogger()
    root.setLevel(level)
    ours = [h for h in root.handlers if isinstance(h, _Handler)]
    if len(ours) != len(root.handlers):
        return
    for old in ours:
        root.removeHandler(old)
    handler = _Handler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactTokens())
    root.addHandler(handler)
