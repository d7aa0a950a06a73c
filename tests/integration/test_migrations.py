"""Migrations upgrade from empty and from every earlier revision, keeping the data."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from app.store.db import Database
from app.store.migrate import alembic_config, upgrade
from tests.support.factories import fresh_database

REVISIONS = [
    rev.revision
    for rev in reversed(list(ScriptDirectory.from_config(alembic_config("x")).walk_revisions()))
]


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database (the shared fixture's is migrated already): these tests migrate it."""
    async with fresh_database(tmp_path) as url:
        yield url


def test_the_chain_is_linear() -> None:
    assert REVISIONS[0] == "0001" and len(REVISIONS) >= 3
    script = ScriptDirectory.from_config(alembic_config("x"))
    assert len(script.get_heads()) == 1


async def columns(url: str, table: str) -> set[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: {c["name"] for c in inspect(sync).get_columns(table)}
            )
    finally:
        await db.dispose()


@pytest.mark.parametrize("start", REVISIONS[:-1])
async def test_upgrade_from_each_revision_keeps_incidents(database_url: str, start: str) -> None:
    await upgrade(database_url, start)
    db = Database(database_url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO incidents (title, severity, status, description, service, "
                    "is_private, declared_by, notification_pinned, war_room_ready, detected_at, "
                    "declared_at, root_cause, impact_summary, users_affected, next_steps) VALUES "
                    "('Old one', 2, 'investigating', '', '', false, 'U1', false, true, "
                    "'2025-01-01 00:00:00', '2025-01-01 00:00:00', '', '', '', '')"
                )
            )
    finally:
        await db.dispose()
    await upgrade(database_url)
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            row = (await conn.execute(text("SELECT title, version FROM incidents"))).one()
    finally:
        await db.dispose()
    assert tuple(row) == ("Old one", 0)
    assert {"version", "published_version", "retro_held_at"} <= await columns(
        database_url, "incidents"
    )


async def test_downgrade_to_empty_and_back(database_url: str) -> None:
    await upgrade(database_url)
    await asyncio.to_thread(command.downgrade, alembic_config(database_url), "base")
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await db.dispose()
    assert tables <= {"alembic_version"}
    await upgrade(database_url)
    assert "destination" in await columns(database_url, "outbox")


async def test_the_migrated_schema_is_the_models_schema(database_url: str) -> None:
    """A model changed without a migration (or a migration that differs from its model) shows
    here, on SQLite and on Postgres alike."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import app.store.models  # noqa: F401  (registers the tables)

    await upgrade(database_url)
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            drift = await conn.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}),
                    SQLModel.metadata,
                )
            )
    finally:
        await db.dispose()
    assert drift == []
