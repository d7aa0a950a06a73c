"""The import contract in pyproject.toml holds, and breaks when a layer imports upward."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _check(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _copy(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(ROOT / "app", tree / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    return tree


@pytest.mark.parametrize(
    ("module", "line"),
    [
        ("app/services/flows.py", "import app.slack.views"),
        ("app/domain/policy.py", "import app.store.models"),
        ("app/store/repo.py", "import app.services.ports"),
        ("app/services/ports.py", "import app.integrations.slack_web"),
        ("app/server.py", "import app.fake_slack"),
        ("app/server.py", "import app.sandbox.world"),
        ("app/fake_slack/state.py", "import app.sandbox.world"),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path: Path, module: str, line: str) -> None:
    tree = _copy(tmp_path)
    assert _check(tree).returncode == 0
    with (tree / module).open("a", encoding="utf-8") as source:
        source.write(f"\n{line}  # noqa\n")
    result = _check(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout


def test_an_import_cycle_between_sibling_modules_breaks_the_contract(tmp_path: Path) -> None:
    """app.services.rooms imports app.services.announcements; the reverse import closes a
    cycle inside one layer, which the layers contract alone would allow."""
    tree = _copy(tmp_path)
    rooms = (tree / "app/services/rooms.py").read_text(encoding="utf-8")
    assert "from app.services.announcements import" in rooms
    assert _check(tree).returncode == 0
    with (tree / "app/services/announcements.py").open("a", encoding="utf-8") as source:
        source.write("\nimport app.services.rooms  # noqa\n")
    result = _check(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout
    assert "No import cycles between sibling modules BROKEN" in result.stdout
    assert ".rooms -> .announcements" in result.stdout
