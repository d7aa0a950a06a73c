"""Fixtures: the fake Slack Web API, the real bot serving HTTP against it, a real database.

The database is SQLite in a temporary folder by default. With WARROOM_TEST_DATABASE_URL set to a
Postgres server URL (postgresql+asyncpg://user@host:port/db), each test gets a fresh database
created on that server and dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from app.bootstrap import Runtime, build
from app.config import Settings, build_policy
from app.domain.policy import Policy
from app.fake_slack import FakeSlack
from app.server import prepare, web_app
from app.services.clock import ManualClock
from tests.slackclient import SlackSender

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"

# People in the fake workspace.
ALICE, BOB, CAROL, DAVE, ERIN = "UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"
ONCALL, ONCALL_BACKUP, ENG_LEAD, CEO, VP_OPS = "UONCALL", "UBACKUP", "UENGLEAD", "UCEO", "UVPOPS"
ENG_MGR, VP_ENG, SPECIALIST = "UENGMGR", "UVPENG", "USPECIAL"
ONCALL_GROUP = "SONCALL"


def test_policy(**workspace: str) -> Policy:
    return policy_with(workspace=workspace)


def policy_with(**sections: object) -> Policy:
    """The test organisation's policy, with `sections` deep-merged over it."""
    base = {
        "workspace": {},
        "directory": {
            "on_call": [ONCALL_GROUP],
            "on_call_backup": [ONCALL_BACKUP],
            "engineering_lead": [ENG_LEAD],
            "ceo": [CEO],
            "vp_ops": [VP_OPS],
            "tech_lead": [DAVE],
            "engineering_manager": [ENG_MGR],
            "vp_engineering": [VP_ENG],
            "specialists": [SPECIALIST],
        },
        "links": {"status_page": "https://status.example.com"},
    }
    return build_policy(base | sections)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSlack]:
    slack = FakeSlack(bot_token=BOT_TOKEN, bot_user_id="UBOT", team_id="T1")
    for user_id, name in [
        (ALICE, "alice"),
        (BOB, "bob"),
        (CAROL, "carol"),
        (DAVE, "dave"),
        (ERIN, "erin"),
        (ONCALL, "oncall"),
        (ONCALL_BACKUP, "backup"),
        (ENG_LEAD, "englead"),
        (CEO, "ceo"),
        (VP_OPS, "vpops"),
        ("UONCALL2", "oncall2"),
        (ENG_MGR, "engmgr"),
        (VP_ENG, "vpeng"),
        (SPECIALIST, "specialist"),
    ]:
        slack.add_user(user_id, name=name, real_name=name.capitalize())
    slack.add_usergroup(ONCALL_GROUP, handle="oncall", users=[ONCALL, "UONCALL2"])
    slack.add_channel("incidents", is_private=False, members=[ALICE], bot_member=False)
    slack.add_channel("general", is_private=False, members=[ALICE, BOB], bot_member=False)
    await slack.start(host="127.0.0.1", port=0)
    try:
        yield slack
    finally:
        await slack.stop()


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    async with fresh_database(tmp_path) as url:
        yield url


@asynccontextmanager
async def fresh_database(folder: Path) -> AsyncIterator[str]:
    """An empty database: a SQLite file in `folder`, or a new one on the test Postgres server."""
    server = os.environ.get("WARROOM_TEST_DATABASE_URL", "").strip()
    if not server:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        yield f"sqlite+aiosqlite:///{folder / 'warroom.db'}"
        return
    import asyncpg

    name = f"warroom_test_{uuid.uuid4().hex[:12]}"
    admin = server.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    base = server.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture
def clock() -> ManualClock:
    # Whole seconds: Slack's date pickers have no finer resolution.
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def settings_for(fake: FakeSlack, database_url: str, **workspace: str) -> Settings:
    return Settings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=fake.api_url,
        database_url=database_url,
        announce_channel="incidents",
        policy=test_policy(**workspace),
    )


@pytest.fixture
def settings(fake: FakeSlack, database_url: str) -> Settings:
    return settings_for(fake, database_url)


@dataclass
class Bot:
    """The running bot, the fake it talks to, and a client that speaks Slack to it."""

    warroom: Runtime
    fake: FakeSlack
    slack: SlackSender
    url: str
    clock: ManualClock

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every acknowledged request has finished its work."""
        assert await self.warroom.inflight.wait_idle(timeout), "bot work did not finish"


async def start_bot(settings: Settings, fake: FakeSlack, clock: ManualClock) -> AsyncIterator[Bot]:
    warroom = build(settings, clock=clock)
    await prepare(warroom)
    runner = web.AppRunner(web_app(warroom), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        async with SlackSender(url, settings.signing_secret, fake) as sender:
            yield Bot(warroom=warroom, fake=fake, slack=sender, url=url, clock=clock)
            await warroom.inflight.wait_idle(10)
    finally:
        await runner.cleanup()
        await warroom.close()


@pytest.fixture
async def bot(settings: Settings, fake: FakeSlack, clock: ManualClock) -> AsyncIterator[Bot]:
    async for running in start_bot(settings, fake, clock):
        yield running
