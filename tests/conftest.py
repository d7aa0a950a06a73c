"""Fixtures: the fake Slack Web API, the real bot serving HTTP against it, a real database.

The database is SQLite in a temporary folder by default. With WARROOM_TEST_DATABASE_URL set to a
Postgres server URL (postgresql+asyncpg://user@host:port/db), each test gets a fresh database
created on that server and dropped afterwards. Constants and factories live in tests/support.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.config import Settings
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from tests.support.bot import Bot, start_bot
from tests.support.factories import drop_templates, fake_workspace, fresh_database, settings_for


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist, each worker keeps its own temporary folder, so the bots it runs
    take replica slots (`ReplicaName`: lock files there, per host and working folder) as if
    they ran alone: a restarted bot gets its old name back whatever other workers run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        folder = Path(tempfile.gettempdir()) / f"warroom-tests-{worker}"
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.tempdir = str(folder)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    drop_templates()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = fake_workspace()
    await slack.start(host="127.0.0.1", port=0)
    try:
        yield slack
    finally:
        await slack.stop()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A database at the newest revision (a copy of one the real migrations made)."""
    async with fresh_database(tmp_path, migrated=True) as url:
        yield url


@pytest.fixture
def clock() -> ManualClock:
    # Whole seconds: Slack's date pickers have no finer resolution.
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def settings(fake: FakeSlack, database_url: str) -> Settings:
    return settings_for(fake, database_url)


@pytest.fixture
async def bot(settings: Settings, fake: FakeSlack, clock: ManualClock) -> AsyncIterator[Bot]:
    async for running in start_bot(settings, fake, clock):
        yield running
