"""Every third-party package the product imports is one of its declared dependencies.

The wheel test installs into an environment that borrows the development packages, so it
cannot see an import that only works because some other dependency happens to bring the
package along; this test reads the imports themselves."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _name(requirement: str) -> str:
    """A distribution's name as pip compares them (PEP 503)."""
    bare = re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", bare).lower()


def imported_top_level(package: Path) -> set[str]:
    """The top-level modules imported anywhere under `package`, absolute imports only."""
    names: set[str] = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "app"}


def test_every_imported_package_is_a_declared_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_name(r) for r in project["dependencies"]}
    distributions = packages_distributions()
    undeclared = {
        module: sorted(distributions.get(module, ["(not installed)"]))
        for module in sorted(imported_top_level(ROOT / "app"))
        if not declared & {_name(d) for d in distributions.get(module, [])}
    }
    assert undeclared == {}, f"imported by app/ but not in [project] dependencies: {undeclared}"


def test_the_check_sees_an_undeclared_import(tmp_path: Path) -> None:
    """The scan finds imports in nested packages, `from` imports included."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "mod.py").write_text("import os\nfrom yarl import URL\nfrom . import x\n")
    assert imported_top_level(tmp_path) == {"yarl"}
