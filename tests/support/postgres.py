"""A Postgres server for the end-to-end tests that need one (real processes on one
database, a database the test stops), and fresh databases on it."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

LOCAL_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


async def postgres_server() -> str:
    """WARROOM_TEST_POSTGRES_URL (or a Postgres WARROOM_TEST_DATABASE_URL), else the local
    server if it answers. Without one the test is skipped, and in CI (`CI` set) it fails: a
    test that needs Postgres must not pass there by not running."""
    for name in ("WARROOM_TEST_POSTGRES_URL", "WARROOM_TEST_DATABASE_URL"):
        url = os.environ.get(name, "").strip()
        if url.startswith("postgres"):
            return url
    try:
        conn = await asyncio.wait_for(asyncpg.connect(admin_dsn(LOCAL_POSTGRES)), 3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        if os.environ.get("CI"):
            pytest.fail("no Postgres server: CI must provide WARROOM_TEST_POSTGRES_URL")
        pytest.skip("no Postgres server (WARROOM_TEST_POSTGRES_URL, or 127.0.0.1:5432)")
    await conn.close()
    return LOCAL_POSTGRES


def admin_dsn(server: str) -> str:
    return server.replace("postgresql+asyncpg://", "postgresql://")


@asynccontextmanager
async def new_database(server: str, prefix: str) -> AsyncIterator[str]:
    """The name of a new, empty database `<prefix>_<random>` on `server`, dropped after."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(admin_dsn(server))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield name
    finally:
        conn = await asyncpg.connect(admin_dsn(server))
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
