"""The test organisation's policy and settings, the fake workspace, and a fresh database."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from app.config import Settings, build_policy
from app.domain.policy import Policy
from app.fake_slack import FakeSlack
from tests.support.constants import (
    ALICE,
    BOB,
    BOT_TOKEN,
    CAROL,
    CEO,
    DAVE,
    ENG_LEAD,
    ENG_MGR,
    ERIN,
    ONCALL,
    ONCALL_BACKUP,
    ONCALL_GROUP,
    SIGNING_SECRET,
    SPECIALIST,
    VP_ENG,
    VP_OPS,
)


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


def settings_for(
    fake: FakeSlack, database_url: str, slack_pacing: float = 0.0, **workspace: str
) -> Settings:
    """The bot's settings against the fake. No pacing unless asked: the fake enforces no rate
    limits unless a test turns them on, and real Slack windows would only slow tests down."""
    return Settings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=fake.api_url,
        database_url=database_url,
        announce_channel="incidents",
        policy=policy_with(workspace=workspace),
        slack_pacing=slack_pacing,
    )


def fake_workspace() -> FakeSlack:
    """The fake Slack with the test organisation's people, on-call group and channels, unstarted."""
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
    return slack


# One migrated database per test process, made by the real migrations; each test that wants a
# migrated database gets a copy, which takes milliseconds where migrating takes most of a
# second. tests/integration/test_migrations.py and the end-to-end tests still migrate empty
# databases, so the migrations themselves stay under test.
_templates: dict[str, str] = {}
# A thread lock, not an asyncio one: each test runs its own event loop.
_template_lock = threading.Lock()


def _admin_url(server: str) -> str:
    return server.replace("postgresql+asyncpg://", "postgresql://")


def _template(server: str) -> str:
    """The migrated template for `server` ("" for SQLite): a file path, or a database name.
    Made on first use (in a thread: the migrations run their own event loop)."""
    with _template_lock:
        if server in _templates:
            return _templates[server]
        from app.store.migrate import upgrade_sync

        tag = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{os.getpid()}"
        if not server:
            path = Path(tempfile.gettempdir()) / f"warroom-template-{tag}.db"
            path.unlink(missing_ok=True)
            upgrade_sync(f"sqlite+aiosqlite:///{path}")
            _templates[server] = str(path)
            return str(path)
        name = f"warroom_template_{tag}"
        asyncio.run(_recreate(server, name))
        upgrade_sync(f"{server.rsplit('/', 1)[0]}/{name}")
        _templates[server] = name
        return name


async def _recreate(server: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin_url(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def _copy_sqlite(source: str, target: Path) -> None:
    """A consistent copy whatever the source's journal holds (SQLite's backup API)."""
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def drop_templates() -> None:
    """Remove this process's templates (at the end of the test session)."""
    for server, name in list(_templates.items()):
        if server:
            asyncio.run(_drop(server, name))
        else:
            Path(name).unlink(missing_ok=True)
    _templates.clear()


async def _drop(server: str, name: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(_admin_url(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def fresh_database(folder: Path, *, migrated: bool = False) -> AsyncIterator[str]:
    """A new database: a SQLite file in `folder`, or a new one on the test Postgres server
    (WARROOM_TEST_DATABASE_URL), dropped afterwards. Empty, or with `migrated` already at the
    newest revision (a copy of one migrated by the real migrations)."""
    server = os.environ.get("WARROOM_TEST_DATABASE_URL", "").strip()
    if not server:
        await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
        path = folder / "warroom.db"
        if migrated:
            template = await asyncio.to_thread(_template, "")
            await asyncio.to_thread(_copy_sqlite, template, path)
        yield f"sqlite+aiosqlite:///{path}"
        return
    import asyncpg

    name = f"warroom_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_url(server)
    template = f' TEMPLATE "{await asyncio.to_thread(_template, server)}"' if migrated else ""
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"{template}')
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
