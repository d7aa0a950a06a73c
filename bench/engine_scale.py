"""Row 3: the escalation engine with 10,000 open incidents.

The engine ticks every 15 seconds on every replica, whether or not anything is due, so the cost
of a tick that finds nothing must stay small however many incidents are open; and a tick that
does find work must get through a full batch (100 steps) well within the tick interval. The
bot's resident memory with that many incidents in the database tells whether anything holds
them in memory.

The database is filled in a separate process (`python -m bench.engine_scale seed URL TIME`),
with bulk inserts of what the bot itself would have stored: incidents with their war rooms
built, commanders, and the steps `plan_declared` gives each one (the page already fired, the
ladder and the update reminder pending). The bot process then starts on that database, so its
memory reflects serving it, not filling it.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlmodel import col

from app.domain.escalation import IncidentTimes, Kind, plan_declared
from app.domain.roles import Role
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.store.db import Database
from app.store.migrate import upgrade
from app.store.models import EscalationRow, Incident, RoleAssignment
from bench.harness import (
    DECLARER,
    Row,
    bench_policy,
    ms,
    new_fake,
    rss_mb,
    run_benchmark,
    running_bot,
    sqlite_url,
)

INCIDENTS = 10_000
DUE = 100
IDLE_TICKS = 15
WARM_TICKS = 3
CHUNK = 1_000
IDLE_TARGET = 0.020
RSS_TARGET_MB = 200.0
DATABASE_ENV = "WARROOM_BENCH_DATABASE_URL"

# Most incidents were declared a minute before the measured moment, so their first ladder
# step (5 minutes) is 4 minutes away; the last DUE were declared 3 minutes before it, so theirs
# falls due 2 minutes later. Ticking at the moment finds nothing; 3 minutes on, exactly DUE.
RECENT = timedelta(minutes=1)
EARLIER = timedelta(minutes=3)
FIRE_AFTER = timedelta(minutes=3)


# --- filling the database (its own process) ---------------------------------------------------


def _incident(n: int, declared: datetime) -> dict[str, Any]:
    return {
        "id": n,
        "title": f"Bench incident {n}",
        "severity": 2 if n % 2 else 3,
        "status": "investigating",
        "description": "",
        "service": "checkout",
        "is_private": False,
        "declared_by": DECLARER,
        "request_key": f"bench:{n}",
        "channel_id": f"CBENCH{n:05d}",
        "channel_name": f"incident-{n}",
        "notification_ts": f"1700000000.{n:06d}",
        "notification_pinned": True,
        "announcement_channel_id": "CANNOUNCE",
        "announcement_ts": f"1700000001.{n:06d}",
        "war_room_ready": True,
        "detected_at": declared,
        "declared_at": declared,
        "root_cause": "",
        "impact_summary": "",
        "users_affected": "",
        "next_steps": "",
    }


def _steps(n: int, severity: int, declared: datetime) -> list[dict[str, Any]]:
    """The rows the bot plans at declaration: the page (already fired), then pending steps."""
    times = IncidentTimes(
        severity=severity,
        is_open=True,
        declared_at=declared,
        acknowledged_at=None,
        last_update_at=None,
        status_changed=False,
        resolved_at=None,
        retro_held_at=None,
    )
    rows = []
    for step in plan_declared(bench_policy(), times):
        fired = step.kind is Kind.PAGE
        rows.append(
            {
                "incident_id": n,
                "key": step.key,
                "kind": step.kind.value,
                "step": step.step,
                "due_at": step.due_at,
                "state": "fired" if fired else "pending",
                "cancel_on": step.cancel_on,
                "targets": step.targets,
                "done": [],
                "attempts": 0,
                "fired_at": declared if fired else None,
                "outcome": "",
                "created_at": declared,
            }
        )
    return rows


async def seed(url: str, moment: datetime) -> None:
    """Migrate, then bulk-insert INCIDENTS incidents, their commanders and their steps."""
    await upgrade(url)
    db = Database(url)
    try:
        async with db.session() as session:
            existing = (await session.exec(select(func.count()).select_from(Incident))).one()
            if existing[0]:
                raise SystemExit(f"{DATABASE_ENV} must name an empty database")
        for start in range(1, INCIDENTS + 1, CHUNK):
            numbers = range(start, min(start + CHUNK, INCIDENTS + 1))
            incidents, roles, steps = [], [], []
            for n in numbers:
                declared = moment - (EARLIER if n > INCIDENTS - DUE else RECENT)
                row = _incident(n, declared)
                incidents.append(row)
                roles.append(
                    {
                        "incident_id": n,
                        "role": Role.COMMANDER.value,
                        "user_id": DECLARER,
                        "assigned_by": DECLARER,
                        "assigned_at": declared,
                    }
                )
                steps.extend(_steps(n, row["severity"], declared))
            async with db.session() as session:
                await session.exec(insert(Incident), params=incidents)  # type: ignore[call-overload]
                await session.exec(insert(RoleAssignment), params=roles)  # type: ignore[call-overload]
                await session.exec(insert(EscalationRow), params=steps)  # type: ignore[call-overload]
    finally:
        await db.dispose()


def seed_main(url: str, moment: str) -> None:
    asyncio.run(seed(url, datetime.fromisoformat(moment)))


# --- the database -----------------------------------------------------------------------------


@asynccontextmanager
async def database() -> AsyncIterator[str]:
    """SQLite in a temporary folder, or WARROOM_BENCH_DATABASE_URL.

    A Postgres URL names a server: a fresh database is created there and dropped afterwards, so
    the counts are exact and nothing of the operator's is touched. Any other URL is used as it
    is and must be empty.
    """
    given = os.environ.get(DATABASE_ENV, "").strip()
    if not given:
        async with sqlite_url("engine") as url:
            yield url
        return
    scheme, _, rest = given.partition("://")
    if scheme not in {"postgres", "postgresql", "postgresql+asyncpg"}:
        yield given
        return
    import asyncpg

    server = f"postgresql://{rest}"  # asyncpg's own form, for the admin connection
    name = f"warroom_bench_{os.getpid()}_{int(time.time())}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    host = rest.split("?", 1)[0].rsplit("/", 1)[0]
    try:
        yield f"postgresql+asyncpg://{host}/{name}"
    finally:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --- measuring --------------------------------------------------------------------------------


async def fill(url: str, moment: datetime) -> float:
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.engine_scale", "seed", url, moment.isoformat()
    )
    if await process.wait() != 0:
        raise RuntimeError("filling the database failed")
    return time.perf_counter() - started


async def measure() -> list[Row]:
    moment = datetime.now(UTC).replace(microsecond=0)
    async with database() as url:
        filled_in = await fill(url, moment)
        fake = new_fake()
        await fake.start()
        try:
            clock = ManualClock(moment)
            async with running_bot(fake, url, clock=clock) as bot:
                warroom = bot.warroom
                await _give_rooms(warroom.db, fake)
                pending = await _pending(warroom.db)
                for _ in range(WARM_TICKS):
                    await warroom.engine.tick()
                idle: list[float] = []
                for _ in range(IDLE_TICKS):
                    started = time.perf_counter()
                    report = await warroom.engine.tick()
                    idle.append(time.perf_counter() - started)
                    if report.claimed or report.repaired:
                        raise RuntimeError("an idle tick found work: the data is not as planned")
                clock.set(moment + FIRE_AFTER)
                calls_before = len(fake.calls)
                started = time.perf_counter()
                report = await warroom.engine.tick()
                firing = time.perf_counter() - started
                calls = len(fake.calls) - calls_before
                rss, peak = rss_mb()
        finally:
            await fake.stop()
    median = statistics.median(idle)
    return [
        Row(
            f"Engine: idle tick, {INCIDENTS:,} open incidents, {pending:,} pending steps",
            f"median {ms(median)} of {IDLE_TICKS} (max {ms(max(idle))})",
            f"< {ms(IDLE_TARGET)}",
            median < IDLE_TARGET,
            "" if median < IDLE_TARGET else "the idle tick's queries scan too much",
        ),
        Row(
            f"Engine: tick firing {DUE} due steps (fake without delay)",
            f"{ms(firing)}: {len(report.fired)} fired, {len(report.retried)} retried, "
            f"{len(report.cancelled)} cancelled; {calls} Slack calls",
            f"{DUE} fired",
            len(report.fired) == DUE,
            ""
            if len(report.fired) == DUE
            else f"only {len(report.fired)} of {DUE} due steps fired in the tick",
        ),
        Row(
            f"Engine: bot process memory with {INCIDENTS:,} incidents",
            f"RSS {rss:.0f} MB (peak {peak:.0f} MB)",
            f"< {RSS_TARGET_MB:.0f} MB",
            peak < RSS_TARGET_MB,
            "" if peak < RSS_TARGET_MB else f"peak resident memory {peak:.0f} MB",
            note=f"database filled in {filled_in:.1f} s by a separate process",
        ),
    ]


async def _give_rooms(db: Database, fake: FakeSlack) -> None:
    """The incidents whose steps will fire get real channels in the fake (with the declarer
    and the bot in them), so the steps' invites and posts succeed as on Slack."""
    changes = []
    for n in range(INCIDENTS - DUE + 1, INCIDENTS + 1):
        channel = fake.add_channel(f"incident-{n}", members=[DECLARER], bot_member=True)
        changes.append((n, channel))
    async with db.session() as session:
        for n, channel in changes:
            await session.exec(  # type: ignore[call-overload]
                update(Incident).where(col(Incident.id) == n).values(channel_id=channel)
            )


async def _pending(db: Database) -> int:
    async with db.session() as session:
        result = await session.exec(
            select(func.count())  # type: ignore[call-overload]
            .select_from(EscalationRow)
            .where(col(EscalationRow.state) == "pending")
        )
        return int(result.one()[0])


if __name__ == "__main__":
    if sys.argv[1:2] == ["seed"]:
        seed_main(sys.argv[2], sys.argv[3])
    else:
        run_benchmark(measure)
