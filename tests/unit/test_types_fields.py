"""Incident types and custom fields without Slack: the policy's checks, reading values, and
the declare, set and stats grammar."""

from __future__ import annotations

from typing import Any

import pytest

from app.config import ConfigError, build_policy
from app.domain.fields import BadValue, FieldPolicy, missing, parse_value
from app.slack.grammar import Command, CommandError, split_type
from app.slack.listeners.commands import parse


def policy(**sections: Any) -> Any:
    return build_policy(sections)


def refusal(**sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        build_policy(sections)
    return str(caught.value)


def test_policy_errors_name_the_key() -> None:
    assert "types.security.fields names field 'team', which [fields] does not define" in refusal(
        types={"security": {"fields": ["team"]}}
    )
    assert "workspace.default_type names type 'sec'" in refusal(
        workspace={"default_type": "sec"}, types={"security": {}}
    )
    assert "types.security.channel_name_format must contain {id}" in refusal(
        types={"security": {"channel_name_format": "sec"}}
    )
    assert "fields.team: a select field needs options" in refusal(
        fields={"team": {"kind": "select"}}
    )
    assert "fields.team.kind: must be" in refusal(fields={"team": {"kind": "colour"}})
    assert "fields.team.required" in refusal(fields={"team": {"required": "close"}})
    assert "fields.Team Name: the name must be lowercase" in refusal(fields={"Team Name": {}})
    assert "types.security.default_severity" in refusal(types={"security": {"default_severity": 5}})


def test_types_and_fields_as_the_policy_applies_them() -> None:
    p = policy(
        types={
            "outage": {"fields": ["team"]},
            "security": {"briefs": {"commander": "Rotate first."}, "channel_name_format": "s-{id}"},
        },
        fields={"team": {"kind": "select", "options": ["payments"]}, "note": {}},
    )
    assert p.default_type == "outage"
    assert p.fields_for("outage") == ["team"]
    assert p.fields_for("security") == []
    # An incident from before types were defined has every field.
    assert p.fields_for("") == ["team", "note"]
    assert p.brief("commander", "security") == "Rotate first."
    assert p.brief("commander", "outage") == p.roles["commander"].brief
    assert p.channel_name_format("security") == "s-{id}"
    assert p.channel_name_format("outage") == "incident-{id}"
    # Without types, everything is as before.
    bare = policy()
    assert (bare.default_type, bare.fields_for(""), bare.types) == ("", [], {})


SELECT = FieldPolicy(kind="select", options=["payments", "search"])


@pytest.mark.parametrize(
    ("spec", "raw", "stored"),
    [
        (SELECT, "Payments", "payments"),
        (FieldPolicy(kind="multi_select", options=["a", "b"]), "b, A, b", ["b", "a"]),
        (FieldPolicy(kind="multi_select", options=["a", "b"]), ["a"], ["a"]),
        (FieldPolicy(kind="text"), "  Checkout down ", "Checkout down"),
        (FieldPolicy(kind="user"), "<@U123ABC|alex>", "U123ABC"),
        (FieldPolicy(kind="user"), "U123ABC", "U123ABC"),
        (FieldPolicy(kind="link"), "<https://example.com/x|x>", "https://example.com/x"),
        (FieldPolicy(kind="number"), "1,200", 1200),
        (FieldPolicy(kind="number"), "2.5", 2.5),
        (FieldPolicy(kind="text"), "", None),
    ],
)
def test_values_are_read_by_kind(spec: FieldPolicy, raw: Any, stored: Any) -> None:
    assert parse_value("f", spec, raw) == stored


@pytest.mark.parametrize(
    ("spec", "raw", "said"),
    [
        (SELECT, "marketing", "F takes one of: payments, search."),
        (FieldPolicy(kind="multi_select", options=["a"]), "a, z", "takes one of: a"),
        (FieldPolicy(kind="user"), "alex", "mention them with @"),
        (FieldPolicy(kind="link"), "javascript:alert(1)", "starting with https://"),
        (FieldPolicy(kind="link"), "ftp://example.com", "starting with https://"),
        (FieldPolicy(kind="number"), "lots", "takes a number"),
        (FieldPolicy(kind="number"), "nan", "takes a number"),
        (FieldPolicy(kind="text"), "x" * 501, "at most 500"),
        (SELECT, ["payments", "search"], "takes one value"),
    ],
)
def test_bad_values_say_what_the_field_takes(spec: FieldPolicy, raw: Any, said: str) -> None:
    with pytest.raises(BadValue, match=said):
        parse_value("f", spec, raw)


def test_missing_fields_by_stage() -> None:
    specs = {
        "a": FieldPolicy(required="declare"),
        "b": FieldPolicy(required="resolve"),
        "c": FieldPolicy(),
    }
    assert missing(specs, ["a", "b", "c"], {}, "declare") == ["a"]
    assert missing(specs, ["a", "b", "c"], {}, "resolve") == ["a", "b"]
    assert missing(specs, ["b", "c"], {"b": "set"}, "resolve") == []


@pytest.mark.parametrize(
    ("text", "command"),
    [
        (
            "declare sev2 security: Leaked key",
            Command("declare", severity=2, text="security: Leaked key", kind="security"),
        ),
        (
            "declare security: Leaked key",
            Command("declare", text="security: Leaked key", kind="security"),
        ),
        ("declare sev2 Leaked key", Command("declare", severity=2, text="Leaked key")),
        (
            "drill p1 db: Replica lag",
            Command("drill", severity=1, text="db: Replica lag", kind="db"),
        ),
        ("set team payments", Command("set", kind="team", text="payments")),
        (
            "set #4 impact Checkout  failed",
            Command("set", incident=4, kind="impact", text="Checkout  failed"),
        ),
        ("set team", Command("set", kind="team")),
        ("stats team=payments", Command("stats", days=30, filters=(("team", "payments"),))),
        ("stats 7d team=payments", Command("stats", days=7, filters=(("team", "payments"),))),
    ],
)
def test_grammar(text: str, command: Command) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("declare Leaked key", "Start with the severity"),
        ("declare sev2", "Add a title"),
        ("set", "Name the field"),
        ("stats team", "Pick a window"),
        ("stats 7d 30d", "Pick a window"),
    ],
)
def test_grammar_refusals(text: str, said: str) -> None:
    with pytest.raises(CommandError, match=said):
        parse(text)


def test_split_type_keeps_an_unknown_word_in_the_title() -> None:
    known = parse("declare sev2 security: Leaked  key")
    assert split_type(known, {"security"}) == ("security", "Leaked  key")
    unknown = parse("declare sev2 payments: slow")
    assert split_type(unknown, {"security"}) == ("", "payments: slow")
