"""One rendering of the metrics, for the terminal and for Slack. Both draw the same blocks from
the same figures, so what `warroom stats` prints is what `/incident stats` shows."""

from __future__ import annotations

from collections.abc import Sequence

from app.domain.durations import humanize
from app.domain.metrics import SeverityStats, Spread
from app.messages.mrkdwn import escape

# Every line fits a phone held upright (about 45 characters) and a narrow terminal.
LABEL_WIDTH = len("Ack in target")


def _spread(spread: Spread) -> str:
    if spread.median is None or spread.p90 is None:
        return "-"
    return f"median {humanize(spread.median)}, p90 {humanize(spread.p90)}"


def _share(row: SeverityStats) -> str:
    share = row.within_target_share
    if share is None:
        return "n/a (no target)"
    return f"{round(share * 100)}% ({row.within_target:,}/{row.with_target:,})"


def _incidents(count: int) -> str:
    if not count:
        return "no incidents"
    return f"{count:,} incident{'' if count == 1 else 's'}"


def block(row: SeverityStats) -> list[str]:
    """One severity (or all of them): a heading line, then one line per measure."""
    name = "All severities" if row.severity is None else f"Sev{row.severity}"
    lines = [f"{name}: {_incidents(row.count)}"]
    if row.count:
        measures = [
            ("Acknowledge", _spread(row.acknowledge)),
            ("Resolve", _spread(row.resolve)),
            ("Detect", _spread(row.detect)),
            ("Ack in target", _share(row)),
        ]
        if row.alert_to_ack.samples:
            measures.append(("Alert to ack", _spread(row.alert_to_ack)))
        lines += [f"{label.ljust(LABEL_WIDTH)}  {value}" for label, value in measures]
    return lines


def title(days: int) -> str:
    return f"Incidents declared in the last {days} days"


def table(rows: Sequence[SeverityStats]) -> str:
    """One small block per severity, blank lines between: readable in a terminal, in a Slack
    code block and on a phone (a wide table of columns is not)."""
    return "\n\n".join("\n".join(block(row)) for row in rows)


def plain(rows: Sequence[SeverityStats], days: int) -> str:
    return f"{title(days)}\n\n{table(rows)}\n"


def mrkdwn(rows: Sequence[SeverityStats], days: int, filters: str = "") -> str:
    """The same blocks in a code block (escaped: Slack reads `&`, `<`, `>` even there)."""
    note = "_Times: detect = detected to declared; acknowledge = declared to acknowledged; "
    note += "resolve = detected to resolved. A private incident counts only for the people "
    note += "in it._"
    only = f" · only {escape(filters)}" if filters else ""
    return f"*{title(days)}*{only}\n```\n{escape(table(rows))}\n```\n{note}"
