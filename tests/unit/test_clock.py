"""The clocks the bot can run on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.services.clock import AcceleratedClock


def test_accelerated_clock_runs_n_times_faster_from_its_start() -> None:
    ticks = [100.0]
    start = datetime(2025, 1, 1, tzinfo=UTC)
    clock = AcceleratedClock(60, start=start, monotonic=lambda: ticks[0])
    assert clock.now() == start
    ticks[0] += 5
    assert clock.now() == start + timedelta(minutes=5)
    assert clock.epoch() == (start + timedelta(minutes=5)).timestamp()
    assert clock.real_seconds(300) == 5
    with pytest.raises(ValueError):
        AcceleratedClock(0)
