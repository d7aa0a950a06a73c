"""Apply alembic migrations from code: `warroom serve` and `warroom db upgrade` share one path.

Replicas that start together migrate one at a time. The whole upgrade runs in one transaction
that first takes a lock on the database: `pg_advisory_xact_lock` on Postgres, `BEGIN
EXCLUSIVE` on SQLite. Whoever gets the lock second waits, then finds the schema at head and has
nothing left to do; the lock goes with the transaction's commit (or the process).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.store.db import make_engine

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

# Any number every replica agrees on: the advisory lock Postgres holds while one migrates.
MIGRATION_LOCK_KEY = 0x5741_5252_4D49_4752  # "WARRMIGR"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


async def upgrade(url: str, revision: str = "head") -> None:
    """Migrate to `revision`, holding the migration lock for the whole upgrade."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await _lock(conn)
            await conn.run_sync(_upgrade, url, revision)
            await conn.commit()
    finally:
        await engine.dispose()


def upgrade_sync(url: str, revision: str = "head") -> None:
    asyncio.run(upgrade(url, revision))


async def _lock(conn: AsyncConnection) -> None:
    """Begin the migration's transaction with the lock that makes other migrators wait."""
    if conn.dialect.name == "postgresql":
        await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    elif conn.dialect.name == "sqlite":
        # Waits for the other writer up to the busy timeout (see app.store.db).
        await conn.exec_driver_sql("BEGIN EXCLUSIVE")


def _upgrade(connection: Connection, url: str, revision: str) -> None:
    # On a connection already in a transaction, alembic runs inside it and leaves the commit
    # to us (the env reads the connection from the config's attributes).
    config = alembic_config(url)
    config.attributes["connection"] = connection
    command.upgrade(config, revision)


def head_revision() -> str:
    """The newest revision this Warroom knows."""
    head = ScriptDirectory.from_config(alembic_config("")).get_current_head()
    assert head, "the migrations folder has no revisions"
    return head


def known_revisions() -> set[str]:
    return {
        rev.revision for rev in ScriptDirectory.from_config(alembic_config("")).walk_revisions()
    }


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at (None: never migrated, no `alembic_version` table)."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
