"""The JSON log formatter, the token filter and the metrics' labels."""

from __future__ import annotations

import json
import logging
import sys

import pytest
from prometheus_client.exposition import generate_latest

from app.config import ConfigError, load_settings
from app.telemetry.logs import JsonFormatter, RedactTokens
from app.telemetry.metrics import Metrics, label


def record(msg: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("app.services.incidents", logging.INFO, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_has_the_base_fields_and_the_structured_ones() -> None:
    line = json.loads(
        JsonFormatter().format(
            record(
                "incident %d declared",
                7,
                incident_id=7,
                severity=2,
                action="declared",
                user_id="UALICE",
                slack_method="chat.postMessage",
                duration_ms=12.5,
                unrelated="left out",
            )
        )
    )
    assert line.pop("time").endswith("+00:00")
    assert line == {
        "level": "INFO",
        "logger": "app.services.incidents",
        "message": "incident 7 declared",
        "incident_id": 7,
        "severity": 2,
        "action": "declared",
        "user_id": "UALICE",
        "slack_method": "chat.postMessage",
        "duration_ms": 12.5,
    }


def test_a_json_line_is_one_line_even_with_a_traceback() -> None:
    try:
        raise ValueError("bad\nthing")
    except ValueError:
        made = record("failed")
        made.exc_info = sys.exc_info()
    text = JsonFormatter().format(made)
    assert "\n" not in text
    assert "ValueError: bad" in json.loads(text)["exception"]


def test_tokens_are_redacted_from_messages_arguments_and_tracebacks() -> None:
    made = record("token %s and xapp-1-A1-abc in %s", "xoxb-123-456-abcdef", "xoxp-9-zz")
    assert RedactTokens().filter(made)
    assert made.getMessage() == "token [redacted] and [redacted] in [redacted]"
    try:
        raise RuntimeError("refused xoxb-999-secret")
    except RuntimeError:
        failed = record("call failed")
        failed.exc_info = sys.exc_info()
    RedactTokens().filter(failed)
    assert failed.exc_text is not None
    assert "xoxb-999" not in failed.exc_text and "[redacted]" in failed.exc_text


def test_each_bot_has_its_own_registry() -> None:
    first, second = Metrics(version="1.0"), Metrics(version="2.0")
    first.declared.labels(severity="1").inc()
    assert b'warroom_incidents_declared_total{severity="1"} 1.0' in generate_latest(first.registry)
    assert b'warroom_incidents_declared_total{severity="1"} 0.0' in generate_latest(second.registry)
    assert b'version="2.0"' in generate_latest(second.registry)


def test_label_values_stay_small_and_plain() -> None:
    assert label("invalid_auth") == "invalid_auth"
    assert label("Weird Code!{}\n" * 20) == ("weird_code____" * 5)[:60]
    assert label("") == "unknown"
    metrics = Metrics()
    metrics.ack("bogus", 0.1)
    assert b'warroom_ack_seconds_count{surface="other"} 1.0' in generate_latest(metrics.registry)


def test_log_format_is_text_json_or_refused() -> None:
    assert load_settings(env={}, dotenv=False).log_format == "text"
    assert load_settings(env={"LOG_FORMAT": " JSON "}, dotenv=False).log_format == "json"
    with pytest.raises(ConfigError, match=r"^LOG_FORMAT: 'xml' is not a format"):
        load_settings(env={"LOG_FORMAT": "xml"}, dotenv=False)
