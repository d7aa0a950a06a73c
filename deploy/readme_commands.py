"""Rewrite README.md's command table (between `<!-- commands:start -->` and
`<!-- commands:end -->`) from the command table in app/slack/listeners/commands.py.

`make docs` runs it after a subcommand is added or reworded; tests/unit/test_docs.py fails
until the README matches the registry.
"""

from __future__ import annotations

import sys
from pathlib import Path

from app.slack.listeners.commands import TABLE

START, END = "<!-- commands:start -->", "<!-- commands:end -->"


def rewritten(text: str, table: str) -> str:
    """The README with the block between the markers replaced by `table`."""
    if text.count(START) != 1 or text.count(END) != 1:
        raise SystemExit(f"README.md needs exactly one {START} and one {END}")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}\n{END}{tail}"


def main() -> int:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text(encoding="utf-8")
    new = rewritten(text, TABLE.markdown())
    if new != text:
        readme.write_text(new, encoding="utf-8")
        print("README.md: command table rewritten")
    else:
        print("README.md: command table already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
