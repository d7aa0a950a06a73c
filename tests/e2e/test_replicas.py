"""Several bot replicas on one Postgres database fire each escalation step exactly once."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import asyncpg
import pytest

from app.bootstrap import build
from app.fake_slack import FakeSlack
from app.server import prepare
from app.services.clock import ManualClock
from tests.support.bot import start_bot
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import escalation_dms

INCIDENTS = 8


@pytest.fixture
async def postgres_url() -> AsyncIterator[str]:
    """A fresh database on the test Postgres server. In CI its absence is a failure."""
    server = os.environ.get("WARROOM_TEST_POSTGRES_URL", "").strip()
    if not server:
        if os.environ.get("CI"):
            pytest.fail("WARROOM_TEST_POSTGRES_URL is not set: CI must provide Postgres")
        pytest.skip("set WARROOM_TEST_POSTGRES_URL to run the multi-replica tests")
    admin = server.replace("postgresql+asyncpg://", "postgresql://")
    name = f"warroom_replicas_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        conn = await asyncpg.connect(admin)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_two_replicas_never_double_fire(
    fake: FakeSlack, postgres_url: str, clock: ManualClock
) -> None:
    # One person declares every incident here: lift the per-person limit.
    limits = {"declares_per_person": INCIDENTS}
    settings = replace(settings_for(fake, postgres_url), policy=policy_with(limits=limits))
    start = clock.now()
    async for bot in start_bot(settings, fake, clock):
        for n in range(INCIDENTS):
            await bot.slack.command(f"declare sev2 Replica test {n}")
        await bot.settle(timeout=30)
        other = build(settings, clock=clock)
        await prepare(other)
        try:
            engines = [bot.warroom.engine, other.engine]
            for minute in (5, 5, 15, 15, 30, 30, 31):
                clock.set(start + timedelta(minutes=minute))
                # Both replicas tick at the same moment, several times over.
                await asyncio.gather(*(e.tick() for e in engines for _ in range(3)))
        finally:
            await other.close()
        await bot.settle()

    counts = escalation_dms(fake)
    duplicates = {k: n for k, n in counts.items() if n != 1}
    assert not duplicates, duplicates
    escalated = Counter(user for (user, line) in counts if "escalated" in line)
    # Each of the 4 ladder targets got one DM per incident.
    assert set(escalated.values()) == {INCIDENTS} and len(escalated) == 4
    posts = [
        m
        for channel in fake.workspace.channels.values()
        if channel.name.startswith("incident-")
        for m in fake.messages(channel.id)
        if "*Escalation step" in m.text
    ]
    assert len(posts) == 3 * INCIDENTS
