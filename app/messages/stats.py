"""One rendering of the metrics, for the terminal and for Slack. Both draw the same table from
the same cells, so what `warroom stats` prints is what `/incident stats` shows."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.durations import humanize
from app.domain.metrics import SeverityStats, Spread
from app.messages.mrkdwn import escape

HEADERS = (
    "Severity",
    "Count",
    "Ack median",
    "Ack p90",
    "Resolve median",
    "Resolve p90",
    "Detect median",
    "Detect p90",
    "Ack in target",
)


def _duration(value: object) -> str:
    return "-" if value is None else humanize(value)  # type: ignore[arg-type]


def _pair(spread: Spread) -> list[str]:
    return [_duration(spread.median), _duration(spread.p90)]


def _share(row: SeverityStats) -> str:
    share = row.within_target_share
    if share is None:
        return "n/a"
    return f"{round(share * 100)}% ({row.within_target}/{row.with_target})"


def cells(rows: Sequence[SeverityStats]) -> list[list[str]]:
    return [
        [
            "All" if row.severity is None else f"Sev{row.severity}",
            str(row.count),
            *_pair(row.acknowledge),
            *_pair(row.resolve),
            *_pair(row.detect),
            _share(row),
        ]
        for row in rows
    ]


def title(days: int) -> str:
    return f"Incidents declared in the last {days} days"


def table(rows: Sequence[SeverityStats]) -> str:
    """Aligned columns, headers first: readable in a terminal and in a Slack code block."""
    grid = [list(HEADERS), *cells(rows)]
    widths = [max(len(line[col]) for line in grid) for col in range(len(HEADERS))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in grid
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def plain(rows: Sequence[SeverityStats], days: int) -> str:
    return f"{title(days)}\n\n{table(rows)}\n"


def mrkdwn(rows: Sequence[SeverityStats], days: int) -> str:
    """The same table in a code block (escaped: Slack reads `&`, `<`, `>` even there)."""
    note = "_Times: detect = detected to declared; acknowledge = declared to acknowledged; "
    note += "resolve = detected to resolved. A private incident counts only for the people "
    note += "in it._"
    return f"*{title(days)}*\n```\n{escape(table(rows))}\n```\n{note}"
