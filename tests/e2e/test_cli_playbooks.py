"""`warroom playbooks lint` and `warroom playbooks dry-run` as an operator runs them: a real
process, no Slack, no database."""

from __future__ import annotations

import shutil
from pathlib import Path

from tests.support.processes import clean_env, run

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "database-outage.toml"

BROKEN = """
[[playbooks]]
name = "database-outage"

[[playbooks.steps]]
page = ["dba"]

[[playbooks.steps]]
invite = { functions = ["dba_team"] }

[[playbooks.steps]]
post = "playbook_database.md.j2"
"""


async def test_lint_prints_each_problem_on_one_line_and_exits_1(tmp_path: Path) -> None:
    (tmp_path / "warroom.toml").write_text(BROKEN)
    code, out, err = await run(["playbooks", "lint"], clean_env(tmp_path), tmp_path)
    assert code == 1, err
    assert out.splitlines() == [
        "warroom.toml: playbooks.0.steps.0.page: unknown pager target 'dba', which "
        "[paging.targets] does not define (defined: none).",
        "warroom.toml: playbooks.0.steps.1.invite.functions: unknown directory function "
        "'dba_team'; known: on_call, on_call_backup, tech_lead, engineering_manager, "
        "engineering_lead, vp_engineering, vp_ops, ceo, specialists.",
    ]
    assert "Traceback" not in out + err


async def test_lint_names_an_unknown_template(tmp_path: Path) -> None:
    (tmp_path / "warroom.toml").write_text(
        '[[playbooks]]\nname = "db"\n[[playbooks.steps]]\npost = "db_notes.md.j2"\n'
    )
    code, out, _ = await run(["playbooks", "lint"], clean_env(tmp_path), tmp_path)
    assert code == 1
    assert out.strip() == (
        "warroom.toml: playbooks.0.steps.0.post: unknown template 'db_notes.md.j2' (not in "
        "the templates)."
    )


async def test_lint_of_a_good_file_exits_0(tmp_path: Path) -> None:
    shutil.copy(EXAMPLE, tmp_path / "warroom.toml")
    code, out, err = await run(["playbooks", "lint"], clean_env(tmp_path), tmp_path)
    assert code == 0, out + err
    assert out.strip() == "warroom.toml: 1 playbook(s), no problems."


async def test_dry_run_says_what_would_happen_without_slack_or_a_database(
    tmp_path: Path,
) -> None:
    env = clean_env(tmp_path, WARROOM_CONFIG=str(EXAMPLE), DATABASE_URL="postgresql://nowhere/x")
    args = ["playbooks", "dry-run", "--type", "default", "--severity", "1", "--service", "database"]
    code, out, err = await run(args, env, tmp_path)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[:3] == [
        "An incident declared with type default, Sev1, service database:",
        "Playbook database-outage (at the declaration, once per incident)",
        "  1. page dba-primary (DBA primary)",
    ]
    assert "  6. bookmark Database dashboard: https://grafana.example.com/d/postgres" in lines
    assert not (tmp_path / "cli.db").exists()
    code, out, _ = await run(
        ["playbooks", "dry-run", "--severity", "3", "--service", "database"], env, tmp_path
    )
    assert code == 0 and out.splitlines()[1:] == ["No playbook applies."]
