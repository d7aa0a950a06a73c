"""The /incident grammar, without Slack."""

from __future__ import annotations

import pytest

from app.domain.roles import Role
from app.slack.grammar import Command, CommandError, parse


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Command("declare")),
        ("declare", Command("declare")),
        (
            "declare sev2 Checkout API returning 500s",
            Command("declare", severity=2, text="Checkout API returning 500s"),
        ),
        (
            "declare SEV1 sev1  double  spaces",
            Command("declare", severity=1, text="sev1  double  spaces"),
        ),
        ("ack", Command("ack")),
        ("ack 42", Command("ack", incident=42)),
        ("acknowledge #42", Command("ack", incident=42)),
        ("status 42", Command("status", incident=42)),
        ("roles", Command("roles")),
        ("mitigate", Command("mitigate")),
        ("resolve 3", Command("resolve", incident=3)),
        ("update", Command("update")),
        ("update 500 errors persist", Command("update", text="500 errors persist")),
        ("update #9 rolled back", Command("update", incident=9, text="rolled back")),
        ("update line one\nline two", Command("update", text="line one\nline two")),
        ("severity sev1", Command("severity", severity=1)),
        ("severity sev1 42", Command("severity", severity=1, incident=42)),
        ("sev #42 2", Command("severity", severity=2, incident=42)),
        ("role commander <@UBOB|bob>", Command("role", role=Role.COMMANDER, user="UBOB")),
        (
            "role tech-lead <@UBOB> 12",
            Command("role", role=Role.TECH_LEAD, user="UBOB", incident=12),
        ),
        ("role comms @UCAROL99", Command("role", role=Role.COMMS, user="UCAROL99")),
        ("list", Command("list")),
        ("help", Command("help")),
        ("frobnicate now", Command("help", text="frobnicate")),
    ],
)
def test_parse(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("declare Checkout broken", "Start with the severity"),
        ("declare sev2", "Add a title"),
        ("declare sev9 broken", "Start with the severity"),
        ("severity", "new severity"),
        ("severity critical", "sev1, sev2"),
        ("role commander", "Name the role and the person"),
        ("role boss <@UBOB>", "Unknown role"),
        ("role commander bob", "Mention the person"),
        ("status forty-two", "only an incident number"),
        ("ack 1 2", "only an incident number"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse(text)
