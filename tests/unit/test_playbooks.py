"""Playbooks: the matcher (incl. type and custom field conditions), planning keys, policy
validation with one-line errors naming the key, the shipped examples, lint and dry-run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from app.checks import dry_run, playbook_lint, template_problems
from app.config import ConfigError, build_policy, load_policy, policy_problems
from app.domain.escalation import Kind, Occasion, plan_playbooks
from app.domain.lifecycle import Status
from app.domain.playbooks import Playbook, matches, parse_run_key, run_key
from app.domain.snapshot import IncidentSnapshot

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "docs" / "examples").glob("*.toml"))
AT = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def incident(**changes: Any) -> IncidentSnapshot:
    base: dict[str, Any] = {
        "id": 7,
        "title": "Primary database down",
        "severity": 1,
        "status": Status.INVESTIGATING,
        "description": "",
        "service": "database",
        "is_private": False,
        "declared_by": "UALICE",
        "detected_at": AT,
        "declared_at": AT,
    }
    return IncidentSnapshot(**(base | changes))


def book(when: dict[str, Any], **extra: Any) -> Playbook:
    return Playbook.model_validate(
        {"name": "db", "when": when, "steps": [{"post": "playbook_database.md.j2"}], **extra}
    )


# --- the matcher ---------------------------------------------------------------------------


def test_a_playbook_without_conditions_matches_every_declaration() -> None:
    playbook = book({})
    assert matches(playbook, incident(), "declared")
    assert not matches(playbook, incident(), "severity_changed")


@pytest.mark.parametrize(
    ("when", "changes", "expected"),
    [
        ({"severity": [1, 2]}, {"severity": 2}, True),
        ({"severity": 1}, {"severity": 3}, False),
        ({"service": ["Database", "postgres"]}, {}, True),
        ({"service": "payments"}, {}, False),
        ({"type": "security"}, {"type": "security"}, True),
        ({"type": ["security"]}, {"type": "outage"}, False),
        ({"type": ["security"]}, {}, False),
        ({"type": ["default"]}, {}, True),
        ({"type": [""]}, {"type": ""}, True),
        ({"type": ["default"]}, {"type": "security"}, False),
        ({"fields": {"region": "eu"}}, {"fields": {"region": "eu"}}, True),
        ({"fields": {"region": ["eu", "us"]}}, {"fields": {"region": "US"}}, True),
        ({"fields": {"region": "eu"}}, {"fields": {"region": "apac"}}, False),
        ({"fields": {"region": "eu"}}, {"fields": {}}, False),
        ({"fields": {"areas": "billing"}}, {"fields": {"areas": ["auth", "billing"]}}, True),
        ({"fields": {"areas": "billing"}}, {"fields": {"areas": ["auth"]}}, False),
        ({"fields": {"customers": "1200"}}, {"fields": {"customers": 1200}}, True),
        ({"status": ["mitigated"]}, {"status": Status.MITIGATED}, True),
        ({"status": ["mitigated"]}, {}, False),
        (
            {"severity": [1], "type": "outage", "service": "database", "fields": {"tier": "1"}},
            {"type": "outage", "fields": {"tier": "1"}},
            True,
        ),
        (
            {"severity": [1], "type": "outage", "service": "database", "fields": {"tier": "1"}},
            {"type": "outage", "fields": {"tier": "2"}},
            False,
        ),
    ],
)
def test_conditions(when: dict[str, Any], changes: dict[str, Any], expected: bool) -> None:
    assert matches(book(when), incident(**changes), "declared") is expected


def test_alert_labels_match_when_one_alert_carries_them_all() -> None:
    playbook = book({"alert_labels": {"team": "db", "env": ["prod", "staging"]}})
    assert matches(
        playbook, incident(), "declared", [{"team": "web"}, {"team": "db", "env": "prod"}]
    )
    assert not matches(playbook, incident(), "declared", [{"team": "db"}, {"env": "prod"}])
    assert not matches(playbook, incident(), "declared", [])


def test_events() -> None:
    playbook = book({"event": ["severity_changed", "status_changed"]})
    assert not matches(playbook, incident(), "declared")
    assert matches(playbook, incident(), "severity_changed")
    assert matches(playbook, incident(), "status_changed")


# --- planning ------------------------------------------------------------------------------


def policy_of(*books: dict[str, Any], **sections: Any) -> Any:
    return build_policy({"playbooks": list(books), **sections})


DB = {
    "name": "database-outage",
    "when": {"event": ["declared", "severity_changed"], "severity": 1, "after_minutes": 10},
    "steps": [
        {"post": "playbook_database.md.j2"},
        {"bookmark": {"title": "Runbook", "url": "https://runbooks.example.com/db"}},
    ],
}


def test_each_step_is_keyed_to_run_once_per_incident() -> None:
    policy = policy_of(DB)
    steps = plan_playbooks(policy, incident(), Occasion("declared", "declared", AT))
    assert [s.key for s in steps] == ["playbook:database-outage:1", "playbook:database-outage:2"]
    assert {s.kind for s in steps} == {Kind.PLAYBOOK}
    assert all(s.ever and s.due_at == AT + timedelta(minutes=10) for s in steps)
    assert [s.step for s in steps] == [0, 1]
    # A later severity change plans the same keys: they run once per incident.
    later = plan_playbooks(
        policy, incident(), Occasion("severity_changed", "51", AT + timedelta(hours=1))
    )
    assert [s.key for s in later] == [s.key for s in steps]
    assert all(s.due_at == AT + timedelta(hours=1) for s in later)
    assert plan_playbooks(policy, incident(severity=2), Occasion("declared", "declared", AT)) == []


def test_a_playbook_run_on_every_occurrence_keys_the_occurrence() -> None:
    policy = policy_of({**DB, "once": False})
    steps = plan_playbooks(policy, incident(), Occasion("severity_changed", "51", AT))
    assert [s.key for s in steps] == [
        "playbook:database-outage:1:51",
        "playbook:database-outage:2:51",
    ]
    assert parse_run_key(steps[1].key) is not None
    assert parse_run_key(steps[1].key).index == 1  # type: ignore[union-attr]
    assert run_key("x", 0) == "playbook:x:1"
    assert parse_run_key("ladder:1") is None


def test_steps_for_a_status_change_are_not_cancelled_by_the_resolution() -> None:
    policy = policy_of({**DB, "when": {"event": "status_changed", "status": "resolved"}})
    resolved = incident(status=Status.RESOLVED)
    steps = plan_playbooks(policy, resolved, Occasion("status_changed", "9", AT))
    assert {s.cancel_on for s in steps} == {"never"}


# --- validation ----------------------------------------------------------------------------


def problem(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        build_policy(raw, "warroom.toml")
    return str(caught.value)


def steps_of(*steps: dict[str, Any]) -> dict[str, Any]:
    return {"playbooks": [{"name": "db", "steps": list(steps)}]}


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            steps_of({"checklist": [{"text": "Look", "role": "boss"}]}),
            "warroom.toml: playbooks.0.steps.0.checklist.0.role: unknown role 'boss'; known: "
            "commander, tech_lead, comms.",
        ),
        (
            steps_of({"page": ["dba"]}),
            "warroom.toml: playbooks.0.steps.0.page: unknown pager target 'dba', which "
            "[paging.targets] does not define (defined: none).",
        ),
        (
            steps_of({"invite": {"functions": ["dba"]}}),
            "warroom.toml: playbooks.0.steps.0.invite.functions: unknown directory function "
            "'dba'; known: on_call, on_call_backup, tech_lead, engineering_manager, "
            "engineering_lead, vp_engineering, vp_ops, ceo, specialists.",
        ),
        (
            steps_of({"bookmark": {"title": "Runbook", "url": "javascript:alert(1)"}}),
            "warroom.toml: playbooks.0.steps.0.bookmark.url: 'javascript:alert(1)' is not a web "
            "address (https://…).",
        ),
        (
            steps_of({"post": "x.md.j2", "page": ["dba"]}),
            "warroom.toml: playbooks.0.steps.0: a step does exactly one thing: one of invite, "
            "post, checklist, bookmark, page (got post, page).",
        ),
        (
            steps_of({"post": "../../etc/passwd"}),
            "warroom.toml: playbooks.0.steps.0: post names a template file (name.md.j2), got "
            "'../../etc/passwd'.",
        ),
        (
            {
                "playbooks": [
                    {"name": "db", "when": {"event": "paged"}, "steps": [{"post": "a.j2"}]}
                ]
            },
            "warroom.toml: playbooks.0.when.event.0: must be 'declared', 'severity_changed' or "
            "'status_changed' (got 'paged').",
        ),
        (
            {"playbooks": [{"name": "db", "steps": [{"post": "a.j2"}], "wen": {}}]},
            "warroom.toml: playbooks.0.wen: unknown key "
            "(check the spelling against docs/configuration.md).",
        ),
        (
            {
                "playbooks": [
                    {"name": "db", "steps": [{"post": "a.j2"}]},
                    {"name": "db", "steps": [{"post": "b.j2"}]},
                ]
            },
            "warroom.toml: playbooks.1.name: 'db' names two playbooks.",
        ),
    ],
)
def test_policy_problems_are_one_line_naming_the_key(raw: dict[str, Any], expected: str) -> None:
    assert problem(raw) == expected
    assert expected in policy_problems(raw, "warroom.toml")


def test_lint_lists_every_problem_not_only_the_first() -> None:
    raw = steps_of({"page": ["dba"]}, {"invite": {"functions": ["dba"]}}, {"page": ["ops"]})
    lines = policy_problems(raw, "warroom.toml")
    assert [line.split(": ")[1] for line in lines] == [
        "playbooks.0.steps.0.page",
        "playbooks.0.steps.1.invite.functions",
        "playbooks.0.steps.2.page",
    ]


def test_an_unknown_template_is_named_by_its_key() -> None:
    policy = policy_of({"name": "db", "steps": [{"post": "nope.md.j2"}]})
    assert template_problems(policy, "warroom.toml") == [
        "warroom.toml: playbooks.0.steps.0.post: unknown template 'nope.md.j2' (not in the "
        "templates)."
    ]


def test_lint_of_a_file(tmp_path: Path) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text(
        '[[playbooks]]\nname = "db"\n[[playbooks.steps]]\npost = "nope.md.j2"\n'
        '[[playbooks.steps]]\nbookmark = { title = "x", url = "ftp://x" }\n'
    )
    assert playbook_lint(str(path)) == [
        f"{path}: playbooks.0.steps.1.bookmark.url: 'ftp://x' is not a web address (https://…)."
    ]
    path.write_text('[[playbooks]]\nname = "db"\n[[playbooks.steps]]\npost = "nope.md.j2"\n')
    assert playbook_lint(str(path)) == [
        f"{path}: playbooks.0.steps.0.post: unknown template 'nope.md.j2' (not in the templates)."
    ]


# --- the examples ----------------------------------------------------------------------------


def test_the_four_examples_ship() -> None:
    assert [p.stem for p in EXAMPLES] == [
        "bad-deploy-rollback",
        "database-outage",
        "security-incident",
        "third-party-outage",
    ]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_loads_and_lints_clean(path: Path) -> None:
    policy = load_policy(str(path))
    assert len(policy.playbooks) == 1
    assert playbook_lint(str(path)) == []


# --- dry run -------------------------------------------------------------------------------


def test_dry_run_says_what_each_step_would_do() -> None:
    policy = load_policy(str(ROOT / "docs" / "examples" / "database-outage.toml"))
    lines = dry_run(policy, "default", 1, "database")
    assert lines[0] == "An incident declared with type default, Sev1, service database:"
    assert lines[1] == "Playbook database-outage (at the declaration, once per incident)"
    assert lines[2] == "  1. page dba-primary (DBA primary)"
    assert lines[3].startswith("  2. invite tech_lead (nobody in [directory])")
    assert "  4. post a checklist of 4 task(s) with Done buttons:" in lines
    assert (
        "       - Check replication lag and which node is primary (role tech_lead, due 10 min "
        "after it is posted)"
    ) in lines
    assert "  5. bookmark Database runbook: https://runbooks.example.com/database" in lines
    assert dry_run(policy, "default", 3, "database")[1:] == ["No playbook applies."]
    assert dry_run(policy, "default", 1, "web")[1:] == ["No playbook applies."]


def test_dry_run_by_type_says_the_conditions_it_cannot_check() -> None:
    policy = load_policy(str(ROOT / "docs" / "examples" / "bad-deploy-rollback.toml"))
    assert dry_run(policy, "default", 2)[1:] == ["No playbook applies."]
    lines = dry_run(policy, "deploy", 2)
    assert lines[1].startswith("Playbook bad-deploy-rollback")
    assert lines[2] == "  only if fields.change is deploy or config (not checked)"
