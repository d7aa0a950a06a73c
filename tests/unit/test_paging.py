"""Pager targets and what each provider is sent: the policy, the directory's pager entries, the
dedup key, the request bodies, the webhook signatures. Pure: no database, no network."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from app.config import ConfigError, build_policy
from app.domain.escalation import PagerStep, pager_plan
from app.domain.paging import (
    OPSGENIE_MESSAGE_MAX,
    PAGERDUTY_SUMMARY_MAX,
    OpsgenieTarget,
    PagerDutyTarget,
    WebhookTarget,
    clip,
    dedup_key,
    incident_of,
    pager_name,
)
from app.domain.policy import Directory, Policy
from app.integrations.pagers import opsgenie, pagerduty, pagerduty_webhook, webhook
from app.integrations.pagers.pagerduty_webhook import WebhookPayloadError
from app.services.ports import PageCall

PAGERDUTY = {"provider": "pagerduty", "routing_key_env": "PD_PAYMENTS"}
OPSGENIE = {"provider": "opsgenie", "api_key_env": "OPSGENIE_KEY"}
WEBHOOK = {"provider": "webhook", "url": "https://pager.example.com/hook", "secret_env": "HOOK"}
LINK = ("https://slack.com/app_redirect?channel=C0123", "War room in Slack")


def policy_with(paging: dict[str, Any], directory: dict[str, Any] | None = None) -> Policy:
    return build_policy({"paging": paging, "directory": directory or {}}, "warroom.toml")


def call(**changes: Any) -> PageCall:
    fields: dict[str, Any] = {
        "target": "payments-primary",
        "action": "trigger",
        "dedup_key": "warroom-incident-42-payments-primary",
        "summary": "[Sev1] Incident #42: Checkout API returning 500s",
        "severity": 1,
        "incident_id": 42,
        "message": "",
        "links": (LINK,),
        "details": (("reason", "Sev1 declared"),),
    }
    fields.update(changes)
    return PageCall(**fields)


# --- the policy ------------------------------------------------------------------------------


def test_a_directory_pager_entry_naming_no_target_is_refused() -> None:
    with pytest.raises(ConfigError) as caught:
        policy_with(
            {"targets": {"payments-primary": PAGERDUTY}},
            {"on_call_backup": ["U0123BACKUP", "pager:payments-backup"]},
        )
    assert (
        "directory.on_call_backup names pager:payments-backup, which [paging.targets] does not "
        "define (defined: payments-primary)"
    ) in str(caught.value)


def test_a_pager_entry_with_no_targets_at_all_says_none_are_defined() -> None:
    with pytest.raises(ConfigError) as caught:
        policy_with({}, {"on_call": ["pager:payments-primary"]})
    assert "does not define (defined: none)" in str(caught.value)


def test_valid_targets_of_each_provider_parse() -> None:
    policy = policy_with(
        {
            "dedup_prefix": "warroom-eu",
            "targets": {
                "payments-primary": {**PAGERDUTY, "label": "  Payments primary "},
                "managers": {
                    **OPSGENIE,
                    "base_url": "https://api.eu.opsgenie.com/",
                    "responders": [
                        {"type": "team", "name": "Payments"},
                        {"type": "user", "username": "dana@example.com"},
                        {"type": "schedule", "id": "4513b7ea"},
                    ],
                    "tags": ["payments"],
                    "acknowledge_with_incident": False,
                },
                "phone_tree": WEBHOOK,
            },
        },
        {
            "on_call": ["pager:payments-primary", "S0123ONCALL"],
            "vp_engineering": ["pager:managers"],
        },
    )
    paging = policy.paging
    primary = paging.targets["payments-primary"]
    managers = paging.targets["managers"]
    phone = paging.targets["phone_tree"]
    assert isinstance(primary, PagerDutyTarget)
    assert isinstance(managers, OpsgenieTarget)
    assert isinstance(phone, WebhookTarget)
    assert primary.base_url == "https://events.pagerduty.com"
    assert primary.label == "Payments primary"
    assert primary.acknowledge_with_incident is True
    assert managers.base_url == "https://api.eu.opsgenie.com"  # the trailing / dropped
    assert [(r.type, r.name, r.id, r.username) for r in managers.responders] == [
        ("team", "Payments", "", ""),
        ("user", "", "", "dana@example.com"),
        ("schedule", "", "4513b7ea", ""),
    ]
    assert managers.acknowledge_with_incident is False
    assert phone.url == "https://pager.example.com/hook"
    assert paging.dedup_prefix == "warroom-eu"
    assert paging.label("payments-primary") == "Payments primary"
    assert paging.label("phone_tree") == "phone_tree"  # no label: the name
    assert [paging.provider_name(n) for n in paging.targets] == ["PagerDuty", "Opsgenie", "webhook"]
    assert paging.secret_names() == [
        "HOOK",
        "OPSGENIE_KEY",
        "PAGERDUTY_WEBHOOK_SECRET",
        "PD_PAYMENTS",
    ]


@pytest.mark.parametrize(
    ("paging", "words"),
    [
        (
            {"targets": {"p": {**PAGERDUTY, "routing_key_env": "PD-KEY"}}},
            "paging.targets.p.pagerduty.routing_key_env: 'PD-KEY' is not an environment variable",
        ),
        (
            {"targets": {"p": {**OPSGENIE, "api_key_env": "1KEY"}}},
            "paging.targets.p.opsgenie.api_key_env: '1KEY' is not an environment variable",
        ),
        (
            {"pagerduty_webhook_secret_env": "PD SECRET"},
            "paging.pagerduty_webhook_secret_env: 'PD SECRET' is not an environment variable",
        ),
        (
            {"targets": {"p": {**WEBHOOK, "url": "ftp://pager.example.com"}}},
            "paging.targets.p.webhook.url: 'ftp://pager.example.com' is not an http(s) URL",
        ),
        (
            {"targets": {"p": {**PAGERDUTY, "base_url": "events.pagerduty.com"}}},
            "paging.targets.p.pagerduty.base_url: 'events.pagerduty.com' is not an http(s) URL",
        ),
        (
            {"targets": {"Payments": PAGERDUTY}},
            "target name 'Payments': use lower-case letters, digits, - and _",
        ),
        ({"targets": {"-payments": PAGERDUTY}}, "target name '-payments'"),
        (
            {"targets": {"p": {**OPSGENIE, "responders": [{"type": "team"}]}}},
            "responders.0: a responder needs exactly one of name, id or username",
        ),
        (
            {
                "targets": {
                    "p": {**OPSGENIE, "responders": [{"type": "team", "name": "a", "id": "b"}]}
                }
            },
            "responders.0: a responder needs exactly one of name, id or username",
        ),
        (
            {"targets": {"p": {**OPSGENIE, "responders": [{"type": "team", "username": "a@b.c"}]}}},
            "username applies to responders of type user only",
        ),
        (
            {"targets": {"p": {"provider": "splunk"}}},
            "paging.targets.p: Input tag 'splunk' found using 'provider'",
        ),
        (
            {"targets": {"p": {**PAGERDUTY, "routing_key": "abc"}}},
            "paging.targets.p.pagerduty.routing_key: unknown key",
        ),
        ({"dedup_prefix": "war room"}, "paging.dedup_prefix: String should match pattern"),
    ],
)
def test_bad_paging_settings_stop_start_up_with_the_key(paging: dict[str, Any], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        policy_with(paging)
    assert words in str(caught.value)


def test_a_directory_pager_entry_must_be_a_target_name() -> None:
    with pytest.raises(ConfigError) as caught:
        policy_with({"targets": {"payments": PAGERDUTY}}, {"on_call": ["pager:Payments"]})
    assert "directory.on_call.0" in str(caught.value)


# --- the directory ---------------------------------------------------------------------------


def test_members_leave_out_pager_entries_and_pagers_list_them_in_order_once() -> None:
    directory = Directory(
        on_call=["pager:primary", "S0123ONCALL", "U0123ALICE"],
        on_call_backup=["U0123BACKUP", "pager:backup", "pager:primary", "U0123ALICE"],
        tech_lead=["pager:leads"],
    )
    functions = ["on_call", "on_call_backup", "tech_lead"]
    assert directory.members(functions) == ["S0123ONCALL", "U0123ALICE", "U0123BACKUP"]
    assert directory.pagers(functions) == ["primary", "backup", "leads"]
    assert directory.pagers(["on_call_backup", "on_call"]) == ["backup", "primary"]
    assert directory.pagers(["engineering_manager"]) == []
    assert directory.all_pagers() == {
        "primary": ["on_call", "on_call_backup"],
        "backup": ["on_call_backup"],
        "leads": ["tech_lead"],
    }


def test_pager_name_reads_only_pager_entries() -> None:
    assert pager_name("pager:payments-primary") == "payments-primary"
    assert pager_name("U0123ALICE") is None
    assert pager_name("S0123PAGER") is None


def test_pager_plan_of_the_default_ladder_with_pagers_in_on_call_backup() -> None:
    policy = policy_with(
        {"targets": {"backup": PAGERDUTY, "managers": OPSGENIE}},
        {
            "on_call": ["U0123ONCALL"],
            "on_call_backup": ["pager:backup", "U0123BACKUP"],
            "engineering_manager": ["pager:managers"],
        },
    )
    # Sev1's `notify` includes on_call_backup: paged at declaration, and again by the 5-minute
    # step (the same page: same dedup key).
    assert pager_plan(policy, 1) == [
        PagerStep(None, "resolved", ["backup"]),
        PagerStep(5, "acknowledged", ["backup"]),
        PagerStep(15, "progress", ["managers"]),
    ]
    # Sev2 notifies engineering_lead and on_call, neither with a pager.
    assert pager_plan(policy, 2) == [
        PagerStep(5, "acknowledged", ["backup"]),
        PagerStep(15, "progress", ["managers"]),
    ]
    assert pager_plan(policy, 4) == []  # no ladder, nobody notified


def test_pager_plan_is_empty_without_pager_entries() -> None:
    assert all(pager_plan(Policy(), level) == [] for level in (1, 2, 3, 4))


# --- the dedup key ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "incident", "target"),
    [("warroom", 42, "payments-primary"), ("warroom.eu-2", 7, "a"), ("w", 123456, "x_y-z9")],
)
def test_dedup_key_round_trips(prefix: str, incident: int, target: str) -> None:
    key = dedup_key(prefix, incident, target)
    assert incident_of(prefix, key) == (incident, target)


def test_dedup_key_format() -> None:
    assert dedup_key("warroom", 42, "payments-primary") == "warroom-incident-42-payments-primary"


@pytest.mark.parametrize(
    "key",
    [
        "staging-incident-42-payments-primary",  # another installation's prefix
        "warroom-staging-incident-42-payments-primary",
        "warroomXincident-42-payments-primary",
        "warroom-incident-x-payments-primary",
        "warroom-incident-42-",
        "warroom-incident-42-Payments",
        "PD-1234",
        "",
    ],
)
def test_incident_of_refuses_keys_this_installation_did_not_make(key: str) -> None:
    assert incident_of("warroom", key) is None


def test_a_prefix_is_matched_literally() -> None:
    assert incident_of("war.room", "war.room-incident-1-a") == (1, "a")
    assert incident_of("war.room", "warXroom-incident-1-a") is None


def test_clip() -> None:
    assert clip("short", 10) == "short"
    assert clip("  two\n  lines\t here ", 100) == "two lines here"
    assert clip("abcdef", 6) == "abcdef"
    assert clip("abcdefg", 6) == "abcde…"
    assert len(clip("x" * 2000, 1024)) == 1024


# --- PagerDuty -------------------------------------------------------------------------------


def test_pagerduty_trigger_body() -> None:
    body = pagerduty.event(call(message="Bridge at https://meet.example.com/42"), "R0UT1NGKEY")
    assert body == {
        "routing_key": "R0UT1NGKEY",
        "event_action": "trigger",
        "dedup_key": "warroom-incident-42-payments-primary",
        "payload": {
            "summary": "[Sev1] Incident #42: Checkout API returning 500s",
            "source": "warroom",
            "severity": "critical",
            "class": "Sev1",
            "custom_details": {
                "incident": "#42",
                "reason": "Sev1 declared",
                "message": "Bridge at https://meet.example.com/42",
            },
        },
        "client": "Warroom",
        "client_url": LINK[0],
        "links": [{"href": LINK[0], "text": LINK[1]}],
    }
    json.dumps(body)  # what goes on the wire


def test_pagerduty_trigger_without_links_or_message() -> None:
    body = pagerduty.event(call(links=()), "K")
    assert "links" not in body and "client_url" not in body
    assert "message" not in body["payload"]["custom_details"]


@pytest.mark.parametrize(
    ("severity", "expected"), [(1, "critical"), (2, "error"), (3, "warning"), (4, "info")]
)
def test_pagerduty_severity_mapping(severity: int, expected: str) -> None:
    payload = pagerduty.event(call(severity=severity), "K")["payload"]
    assert (payload["severity"], payload["class"]) == (expected, f"Sev{severity}")


def test_pagerduty_summary_is_clipped_to_1024() -> None:
    summary = pagerduty.event(call(summary="x" * 3000), "K")["payload"]["summary"]
    assert len(summary) == PAGERDUTY_SUMMARY_MAX == 1024
    assert summary.endswith("…")


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_pagerduty_acknowledge_and_resolve_carry_only_the_key(action: str) -> None:
    assert pagerduty.event(call(action=action, message="ignored"), "K") == {
        "routing_key": "K",
        "event_action": action,
        "dedup_key": "warroom-incident-42-payments-primary",
    }


# --- Opsgenie --------------------------------------------------------------------------------


def test_opsgenie_alert_body() -> None:
    target = OpsgenieTarget.model_validate(
        {
            **OPSGENIE,
            "responders": [
                {"type": "team", "name": "Payments"},
                {"type": "user", "username": "dana@example.com"},
                {"type": "schedule", "id": "4513b7ea"},
            ],
            "tags": ["payments", "eu"],
        }
    )
    body = opsgenie.alert(call(severity=2, message="Bridge at https://meet.example.com/42"), target)
    assert body == {
        "message": "[Sev1] Incident #42: Checkout API returning 500s",
        "alias": "warroom-incident-42-payments-primary",
        "description": (
            "[Sev1] Incident #42: Checkout API returning 500s\n"
            "Bridge at https://meet.example.com/42\n"
            f"War room in Slack: {LINK[0]}"
        ),
        "priority": "P2",
        "source": "Warroom",
        "details": {"incident": "#42", "reason": "Sev1 declared"},
        "tags": ["warroom", "sev2", "payments", "eu"],
        "responders": [
            {"type": "team", "name": "Payments"},
            {"type": "user", "username": "dana@example.com"},
            {"type": "schedule", "id": "4513b7ea"},
        ],
    }


def test_opsgenie_message_is_clipped_to_130_and_responders_left_out_when_none() -> None:
    target = OpsgenieTarget.model_validate(OPSGENIE)
    body = opsgenie.alert(call(summary="y" * 500), target)
    assert len(body["message"]) == OPSGENIE_MESSAGE_MAX == 130
    assert body["message"].endswith("…")
    assert body["description"].startswith("y" * 500)  # the description keeps it whole
    assert "responders" not in body
    assert body["tags"] == ["warroom", "sev1"]


@pytest.mark.parametrize(("severity", "priority"), [(1, "P1"), (2, "P2"), (3, "P3"), (4, "P4")])
def test_opsgenie_priority_mapping(severity: int, priority: str) -> None:
    target = OpsgenieTarget.model_validate(OPSGENIE)
    assert opsgenie.alert(call(severity=severity), target)["priority"] == priority


# --- the signed webhook ----------------------------------------------------------------------


def test_webhook_signature_is_the_documented_recipe() -> None:
    # printf '%s' '1700000000.{"event":"trigger"}' | openssl dgst -sha256 -hmac 's3cret'
    expected = "v1=b7a655fd1e7c8e3996ad9aa258c7bc95f667e86b99bb0415809126e5ffbc4b73"
    assert webhook.sign("s3cret", "1700000000", b'{"event":"trigger"}') == expected
    assert webhook.sign("other", "1700000000", b'{"event":"trigger"}') != expected
    assert webhook.sign("s3cret", "1700000001", b'{"event":"trigger"}') != expected


def test_webhook_payload() -> None:
    payload = webhook.payload(
        call(message="Bridge at https://meet.example.com/42"), "phone-tree", 1767261600.9
    )
    assert payload == {
        "version": "1",
        "event": "trigger",
        "dedup_key": "warroom-incident-42-payments-primary",
        "target": "phone-tree",
        "sent_at": 1767261600,
        "incident": {
            "id": 42,
            "severity": 1,
            "summary": "[Sev1] Incident #42: Checkout API returning 500s",
        },
        "message": "Bridge at https://meet.example.com/42",
        "links": [{"href": LINK[0], "text": LINK[1]}],
        "details": {"reason": "Sev1 declared"},
    }


def test_webhook_payload_of_an_acknowledge_without_links() -> None:
    payload = webhook.payload(call(action="acknowledge", links=(), details=()), "t", 0)
    assert (payload["event"], payload["links"], payload["details"], payload["message"]) == (
        "acknowledge",
        [],
        {},
        "",
    )


# --- PagerDuty's webhooks --------------------------------------------------------------------

RAW = b'{"event":{"id":"01ABC"}}'
# printf '%s' '{"event":{"id":"01ABC"}}' | openssl dgst -sha256 -hmac 'pd-secret'
SIGNED = "3b9296d963abef691803a89e8a76f22252d8c6b81a67378b6d0d3d8e69dbd62e"


def other_signature(secret: str) -> str:
    return hmac.new(secret.encode(), RAW, hashlib.sha256).hexdigest()


@pytest.mark.parametrize(
    ("secrets", "header", "valid"),
    [
        (["pd-secret"], f"v1={SIGNED}", True),
        (["pd-secret"], f"v1={SIGNED.upper()}", True),
        # Rotation: two signatures, one made with the secret Warroom has.
        (["pd-secret"], f"v1={other_signature('new-secret')},v1={SIGNED}", True),
        (["pd-secret"], f"v1={SIGNED}, v1={other_signature('new-secret')}", True),
        (["pd-secret"], f"v1={other_signature('new-secret')},v1={other_signature('old')}", False),
        (["wrong-secret"], f"v1={SIGNED}", False),
        (["pd-secret"], SIGNED, False),  # no v1= prefix
        (["pd-secret"], f"v0={SIGNED}", False),
        (["pd-secret"], "", False),
        (["pd-secret"], "v1=", False),
        # Several subscriptions: each secret is tried.
        (["checkout-secret", "pd-secret"], f"v1={SIGNED}", True),
        (["checkout-secret", "payments-secret"], f"v1={SIGNED}", False),
        ([], f"v1={SIGNED}", False),
    ],
)
def test_pagerduty_signature(secrets: list[str], header: str, valid: bool) -> None:
    assert pagerduty_webhook.signature_valid(secrets, RAW, header) is valid


def test_pagerduty_signature_covers_the_body() -> None:
    assert not pagerduty_webhook.signature_valid(["pd-secret"], RAW + b" ", f"v1={SIGNED}")


def acknowledged(**event: Any) -> dict[str, Any]:
    return {
        "event": {
            "id": "01DEN8WJ2C3A4B",
            "event_type": "incident.acknowledged",
            "resource_type": "incident",
            "agent": {"type": "user_reference", "summary": "Alice  Example"},
            "data": {
                "id": "PGR0VU2",
                "type": "incident",
                "incident_key": "warroom-incident-42-payments-primary",
                "status": "acknowledged",
            },
            **event,
        }
    }


def test_pagerduty_event_is_read() -> None:
    event = pagerduty_webhook.parse(acknowledged())
    assert event.id == "01DEN8WJ2C3A4B"
    assert event.event_type == "incident.acknowledged"
    assert event.incident_key == "warroom-incident-42-payments-primary"
    assert event.who == "Alice Example"  # whitespace collapsed
    assert event.state == "acknowledged"


def test_pagerduty_event_without_an_agent_is_pagerdutys_own() -> None:
    assert pagerduty_webhook.parse(acknowledged(agent=None)).who == "PagerDuty"
    assert pagerduty_webhook.parse(acknowledged(agent={"summary": ""})).who == "PagerDuty"
    long = pagerduty_webhook.parse(acknowledged(agent={"summary": "z" * 500})).who
    assert long == "z" * 100


def test_pagerduty_event_without_an_incident_key_has_an_empty_one() -> None:
    assert pagerduty_webhook.parse(acknowledged(data={"id": "P1"})).incident_key == ""
    assert pagerduty_webhook.parse(acknowledged(data=None)).incident_key == ""


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([], "the body is not an object"),
        ({}, "event is not an object"),
        ({"event": "incident.acknowledged"}, "event is not an object"),
        ({"event": {"event_type": "incident.acknowledged"}}, "event.id is missing"),
        ({"event": {"id": "", "event_type": "incident.acknowledged"}}, "event.id is missing"),
        ({"event": {"id": 7, "event_type": "incident.acknowledged"}}, "event.id is missing"),
        ({"event": {"id": "01A"}}, "event.event_type is missing"),
        ({"event": {"id": "01A", "event_type": ""}}, "event.event_type is missing"),
    ],
)
def test_pagerduty_payload_without_its_fields_is_refused(data: Any, words: str) -> None:
    with pytest.raises(WebhookPayloadError, match=words):
        pagerduty_webhook.parse(data)


@pytest.mark.parametrize(
    ("event_type", "state"),
    [
        ("incident.acknowledged", "acknowledged"),
        ("incident.resolved", "resolved"),
        ("incident.unacknowledged", "unacknowledged"),
        ("incident.reassigned", "reassigned"),
        ("incident.escalated", "escalated"),
        ("incident.delegated", "delegated"),
        ("incident.reopened", "reopened"),
        ("incident.triggered", None),  # Warroom's own page arriving
        ("incident.annotated", None),
        ("pagey.ping", None),
    ],
)
def test_pagerduty_event_states(event_type: str, state: str | None) -> None:
    assert pagerduty_webhook.parse(acknowledged(event_type=event_type)).state == state
