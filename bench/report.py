"""The one table `make bench` prints: every row of every benchmark, its target and verdict.

Plain text, so it can be pasted into docs/performance.md as it is; long figures wrap inside their
column instead of stretching the table past a terminal's width.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

from bench.harness import Outcome, Row, verdict

COLUMNS = (("#", 3), ("Benchmark", 36), ("Measured", 60), ("Target", 20), ("Result", 6))


def _cells(number: str, row: Row) -> list[list[str]]:
    values = (number, row.benchmark, row.measured, row.target, verdict(row.ok))
    return [
        textwrap.wrap(value, width, break_on_hyphens=False) or [""]
        for value, (_, width) in zip(values, COLUMNS, strict=True)
    ]


def label(section: int, sub: int) -> str:
    """1a … 1z, then 1aa, 1ab …: a benchmark may have more than 26 rows."""
    letters = ""
    sub += 1
    while sub:
        sub, rest = divmod(sub - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return f"{section}{letters}"


def _line(parts: Sequence[str]) -> str:
    return "  ".join(part.ljust(width) for part, (_, width) in zip(parts, COLUMNS, strict=True))


def _numbered(
    sections: Sequence[tuple[str, Outcome]], numbers: Sequence[int] | None
) -> list[tuple[int, Outcome]]:
    """Each section with its benchmark's number (its place in a full run, when given)."""
    found = numbers or range(1, len(sections) + 1)
    return [(n, outcome) for n, (_, outcome) in zip(found, sections, strict=True)]


def table(sections: Sequence[tuple[str, Outcome]], numbers: Sequence[int] | None = None) -> str:
    """Rows numbered by benchmark (1a, 1b …), each wrapped to the column widths."""
    rule = "  ".join("-" * width for _, width in COLUMNS)
    out = [_line([name for name, _ in COLUMNS]).rstrip(), rule]
    for index, outcome in _numbered(sections, numbers):
        for sub, row in enumerate(outcome.rows):
            cells = _cells(label(index, sub), row)
            for depth in range(max(len(c) for c in cells)):
                out.append(_line([c[depth] if depth < len(c) else "" for c in cells]).rstrip())
        out.append(rule)
    return "\n".join(out)


def notes(sections: Sequence[tuple[str, Outcome]], numbers: Sequence[int] | None = None) -> str:
    """Why each missed target was missed, and details too long for the table."""
    lines: list[str] = []
    for index, outcome in _numbered(sections, numbers):
        for sub, row in enumerate(outcome.rows):
            name = label(index, sub)
            if row.ok is False and row.why:
                lines += textwrap.wrap(f"{name} MISS: {row.why}", 100, subsequent_indent="    ")
            if row.note:
                lines += textwrap.wrap(f"{name} {row.note}", 100, subsequent_indent="    ")
    return "\n".join(lines)


def warnings(sections: Sequence[tuple[str, Outcome]]) -> str:
    """Log warnings each benchmark counted instead of printing (see harness.WarningTally)."""
    lines: list[str] = []
    for name, outcome in sections:
        for message, count in sorted(outcome.warnings.items(), key=lambda kv: -kv[1]):
            lines.append(f"  {name}: {count} x {message}")
    return "\n".join(lines)


def render(
    sections: Sequence[tuple[str, Outcome]],
    machine: str,
    seconds: float,
    numbers: Sequence[int] | None = None,
) -> str:
    passed = sum(1 for _, o in sections for r in o.rows if r.ok is True)
    missed = sum(1 for _, o in sections for r in o.rows if r.ok is False)
    parts = [
        table(sections, numbers),
        f"{passed} targets met, {missed} missed. Machine: {machine}. "
        f"All rows measured in this run, {seconds:.0f} s.",
    ]
    explained = notes(sections, numbers)
    if explained:
        parts.append("Notes:\n" + explained)
    logged = warnings(sections)
    if logged:
        parts.append("Warnings logged during the run (counted, not printed):\n" + logged)
    return "\n\n".join(parts)
