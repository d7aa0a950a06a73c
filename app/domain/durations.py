"""Durations between incident times, as numbers for metrics and as words for messages."""

from __future__ import annotations

from datetime import datetime, timedelta


def between(start: datetime | None, end: datetime | None) -> timedelta | None:
    """The time from `start` to `end`, or None when either is unknown. Never negative."""
    if start is None or end is None:
        return None
    return max(end - start, timedelta(0))


def humanize(delta: timedelta | None) -> str:
    """'1h 05m', '12m', '40s', '2d 3h'. People read these under stress: short and exact."""
    if delta is None:
        return "unknown"
    seconds = int(delta.total_seconds())
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m" if not seconds else f"{minutes}m {seconds:02d}s"
    return f"{seconds}s"
