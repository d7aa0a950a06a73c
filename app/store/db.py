"""The async engine and sessions. SQLite gets WAL and a busy timeout so concurrent handlers wait
for each other instead of failing with 'database is locked'.

SQLite takes one writer at a time, and a writer that finds it busy sleeps and polls (for up to
100 ms between tries): under a burst of requests some lose that lottery again and again, and a
request that must be recorded before Slack's 3-second deadline is refused. So on SQLite the
sessions of this process take turns in the event loop instead (`Turns`), in order of arrival,
with the inbox's records (`session(first=True)`) before the rest; a session opened inside
another by the same task shares its turn. Postgres locks rows, not the database: no turns.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import ORMExecuteState, Session
from sqlmodel.ext.asyncio.session import AsyncSession

SQLITE_BUSY_TIMEOUT_MS = 30_000


def make_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    if ":memory:" not in str(getattr(dbapi_connection, "_database", "")):
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class WriteLog:
    """Whether the work under way has committed a change: what a person is told when their
    request fails part-way ("saved, the rest follows" or "nothing changed, try again")."""

    def __init__(self) -> None:
        self.committed = False


_write_log: ContextVar[WriteLog | None] = ContextVar("warroom_write_log", default=None)


def track_writes() -> WriteLog:
    """Start recording commits for the current task (and the tasks it starts)."""
    log = WriteLog()
    _write_log.set(log)
    return log


@event.listens_for(Session, "after_flush")
def _flushed(session: Session, _context: Any) -> None:
    session.info["writes"] = True


@event.listens_for(Session, "do_orm_execute")
def _executed(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        state.session.info["writes"] = True


class Turns:
    """One holder at a time, served by rank (lower first), then by arrival; the holder's task
    may enter again without waiting (a session opened inside another)."""

    def __init__(self) -> None:
        self._holder: asyncio.Task[Any] | None = None
        self._depth = 0
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    @asynccontextmanager
    async def turn(self, rank: int) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if self._holder is not None and self._holder is task:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        if self._holder is not None or self._waiting:
            ready = asyncio.get_running_loop().create_future()
            heapq.heappush(self._waiting, (rank, next(self._seq), ready))
            try:
                await ready
            except asyncio.CancelledError:
                if ready.done() and not ready.cancelled():
                    self._pass_on()  # granted, then cancelled
                raise
        self._holder = task
        try:
            yield
        finally:
            self._pass_on()

    def _pass_on(self) -> None:
        self._holder = None
        while self._waiting:
            _, _, ready = heapq.heappop(self._waiting)
            if not ready.done():
                # Reserved for the waiter until it runs: nobody else may slip in meanwhile.
                self._holder = _RESERVED
                ready.set_result(None)
                return


_RESERVED: Any = object()


class Database:
    """Owns the engine; hands out sessions that commit on success and roll back on error."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False
        )
        self._turns = Turns() if url.startswith("sqlite") else None

    @asynccontextmanager
    async def session(self, first: bool = False) -> AsyncIterator[AsyncSession]:
        """A session; `first`: on SQLite, before sessions already waiting for their turn."""
        if self._turns is None:
            async with self._session() as session:
                yield session
            return
        async with self._turns.turn(0 if first else 1), self._session() as session:
            yield session

    @asynccontextmanager
    async def _session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            try:
                yield session
                await session.commit()
                log = _write_log.get()
                if log is not None and session.sync_session.info.pop("writes", False):
                    log.committed = True
            except BaseException:
                await session.rollback()
                raise

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()
