"""The /incident grammar, without Slack."""

from __future__ import annotations

from datetime import date

import pytest

from app.domain.roles import Role
from app.slack.grammar import Command, CommandError
from app.slack.listeners.commands import parse


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


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("note Provider says all clear", Command("note", text="Provider says all clear")),
        ("note #4 two  spaces", Command("note", incident=4, text="two  spaces")),
        ("timeline", Command("timeline")),
        ("timeline 7", Command("timeline", incident=7)),
        (
            "action Add CI check <@UDAVE|dave> due 2030-01-09",
            Command("action", text="Add CI check", user="UDAVE", due=date(2030, 1, 9)),
        ),
        (
            "action #3 Write the runbook due 2030-02-01 <@UBOB>",
            Command(
                "action", incident=3, text="Write the runbook", user="UBOB", due=date(2030, 2, 1)
            ),
        ),
        ("action Alert on 5xx", Command("action", text="Alert on 5xx")),
        ("actions", Command("actions")),
        ("actions 5", Command("actions", incident=5)),
        ("actions mine", Command("actions_mine")),
        ("postmortem", Command("postmortem")),
        ("pm 3", Command("postmortem", incident=3)),
        ("stats", Command("stats", days=30)),
        ("stats 7d", Command("stats", days=7)),
        ("stats 90D", Command("stats", days=90)),
        ("close", Command("close")),
        ("close --force", Command("close", force=True)),
        ("close 12 --force", Command("close", incident=12, force=True)),
    ],
)
def test_parse_after_the_incident(text: str, expected: Command) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("action", "Say what needs doing"),
        ("action <@UBOB> due 2030-01-09", "Say what needs doing"),
        ("action Fix it due tomorrow", "YYYY-MM-DD"),
        ("action Fix it due 2030-02-30", "not a date"),
        ("stats 14d", "Pick a window"),
        ("actions mine please", "takes nothing after"),
        ("close soon", "only an incident number"),
    ],
)
def test_parse_errors_after_the_incident(text: str, message: str) -> None:
    with pytest.raises(CommandError, match=message):
        parse(text)
