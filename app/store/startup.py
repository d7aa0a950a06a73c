"""The database as start-up and the CLI meet it: where it is, each failure in one line, waiting
for it to come up, whether it holds a Warroom schema at the current revision, and the lock that
keeps one server per SQLite file.

Failures a person can fix (a server that is down, a database or a role that does not exist, a
SQLite file that cannot be created) become a `DatabaseProblem`: one sentence, and the fix when
the sentence does not already say it. Anything else raises as it is: a bug keeps its traceback.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.store.db import make_engine
from app.store.migrate import current_revision, head_revision, known_revisions

try:
    import fcntl
except ImportError:  # not POSIX: no lock file, one server per SQLite file is up to you
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

MIGRATE = "run `warroom db upgrade`"
# Each connection attempt gets at most this long (asyncpg would wait 60 s for a silent host).
ATTEMPT_SECONDS = 10.0


class DatabaseProblem(Exception):
    """The database cannot be used. `str()` is one line for the operator; `fix` is what to do,
    when the line does not say it already."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.fix = fix

    def sentence(self) -> str:
        return f"{self}" + (f" ({self.fix})" if self.fix else "")


class AlreadyServing(DatabaseProblem):
    """Another `warroom serve` holds the SQLite file."""


@dataclass(frozen=True)
class Failure:
    """What went wrong talking to the database."""

    reason: str  # short, e.g. "connection refused", 'database "warroom" does not exist'
    transient: bool  # may pass by itself: a server starting up, a database being created
    fix: str = ""


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (absolute), None for Postgres or SQLite in memory."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    name = parsed.database or ""
    if name in {"", ":memory:"} or name.startswith("file:"):
        return None
    return Path(name).expanduser().resolve()


def where(url: str) -> str:
    """The database's place for messages: the SQLite file, or the server's host:port."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return "SQLite in memory"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def diagnose(exc: BaseException, url: str) -> Failure | None:
    """The failure `exc` stands for, when it is the database's (None: not one we know)."""
    for error in _chain(exc):
        state = getattr(error, "sqlstate", None)
        if isinstance(state, str) and state:
            return _postgres(state, _first_line(error))
        if isinstance(error, sqlite3.Error):
            return _sqlite(_first_line(error))
        if isinstance(error, ConnectionRefusedError) or (
            isinstance(error, OSError)
            and error.errno is None
            and "Connect call failed" in str(error)  # every address of the host refused
        ):
            return Failure("connection refused", transient=True)
        if isinstance(error, socket.gaierror):
            host = make_url(url).host or "localhost"
            return Failure(f"cannot find host {host} ({error.strerror})", transient=True)
        if isinstance(error, TimeoutError):
            return Failure("no answer (timed out)", transient=True)
        if isinstance(error, ConnectionError):
            return Failure(error.strerror or type(error).__name__, transient=True)
    return None


def problem(exc: BaseException, url: str) -> DatabaseProblem | None:
    """`exc` as a one-line DatabaseProblem, or None when it is not a database failure."""
    if isinstance(exc, DatabaseProblem):
        return exc
    failure = diagnose(exc, url)
    if failure is None:
        return None
    return DatabaseProblem(describe(failure, url), failure.fix)


def describe(failure: Failure, url: str) -> str:
    path = sqlite_file(url)
    if path is not None:
        return f"cannot open the SQLite database {path}: {failure.reason}"
    return f"cannot use the database at {where(url)}: {failure.reason}"


@asynccontextmanager
async def database_errors(url: str) -> AsyncIterator[None]:
    """Turn the database's failures inside the block into a one-line DatabaseProblem."""
    try:
        yield
    except Exception as exc:
        found = problem(exc, url)
        if found is None or found is exc:
            raise
        raise found from None


def hold_for_serving(url: str) -> int | None:
    """Refuse a second server on one SQLite file: the incident lock is in-process, so two
    processes would both accept the same change. Takes an exclusive `flock` on `<file>.lock`,
    next to the database, and returns its descriptor: keep it open for the life of the process
    (the lock goes when the process does, however it ends). None for Postgres, which is made for
    several replicas. Raises AlreadyServing, or DatabaseProblem when the lock file cannot be
    made."""
    path = sqlite_file(url)
    if path is None or fcntl is None:
        return None
    lock = path.with_name(path.name + ".lock")
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DatabaseProblem(
            f"cannot open the SQLite database {path}: cannot create {lock.name} next to it "
            f"({exc.strerror})",
            "check that its folder exists and Warroom may write there",
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise AlreadyServing(
            f"another Warroom is already serving {path} (pid {holder}); "
            "use Postgres for several replicas"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def check_sqlite_file(url: str) -> None:
    """Refuse a SQLite path that cannot be opened for writing, before the driver tries (and
    leaves a thread behind when it fails). Blocking: call it from a thread in async code."""
    path = sqlite_file(url)
    if path is None:
        return
    fix = "check that its folder exists and Warroom may write there"
    folder = path.parent
    if path.is_dir():
        raise DatabaseProblem(f"cannot open the SQLite database {path}: it is a folder")
    if not folder.exists():
        raise DatabaseProblem(f"cannot open the SQLite database {path}: no folder {folder}", fix)
    if not folder.is_dir():
        raise DatabaseProblem(f"cannot open the SQLite database {path}: {folder} is a file", fix)
    # SQLite writes its -wal and -shm files next to the database.
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise DatabaseProblem(f"cannot open the SQLite database {path}: not writable", fix)


async def wait_for_database(url: str, seconds: float) -> None:
    """Connect until the database answers, trying for up to `seconds`: containers start in any
    order, and a database server may come up (or its database be created) after Warroom. A
    failure that will not pass by itself (a wrong role, an unwritable file) stops at once.
    Raises DatabaseProblem."""
    started = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        left = seconds - (time.monotonic() - started)
        try:
            await asyncio.wait_for(_ping(url), max(2.0, min(ATTEMPT_SECONDS, left)))
            return
        except Exception as exc:
            failure = diagnose(exc, url)
            if failure is None:
                raise
        elapsed = time.monotonic() - started
        left = seconds - elapsed
        if not failure.transient or left <= 0:
            if failure.transient and seconds > 0:
                raise DatabaseProblem(
                    f"gave up waiting for the database at {where(url)} after {seconds:g} s: "
                    f"{failure.reason}",
                    failure.fix,
                ) from None
            raise DatabaseProblem(describe(failure, url), failure.fix) from None
        log.warning(
            "waiting for the database at %s (attempt %d, %d s of %g): %s",
            where(url),
            attempt,
            elapsed,
            seconds,
            failure.reason,
        )
        await asyncio.sleep(min(2.0 ** (attempt - 1), 5.0, left))


async def _ping(url: str) -> None:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def require_schema(url: str) -> str:
    """Check, creating and changing nothing, that `url` holds a Warroom database migrated to
    the current revision; return that revision. Raises DatabaseProblem."""
    path = sqlite_file(url)
    if path is not None and not await asyncio.to_thread(path.is_file):
        raise DatabaseProblem(f"no Warroom database at {path}; {MIGRATE} or set DATABASE_URL")
    engine = make_engine(url)
    try:
        async with database_errors(url):
            current = await current_revision(engine)
    finally:
        await engine.dispose()
    head = head_revision()
    if current == head:
        return head
    if current is not None and current not in known_revisions():
        raise DatabaseProblem(
            f"the database is at revision {current}, which this Warroom does not know "
            f"(its newest is {head})",
            "install the Warroom that migrated it, or a newer one",
        )
    raise DatabaseProblem(
        f"database not migrated (at revision {current or 'none'}, head {head}): {MIGRATE}"
    )


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the driver's error SQLAlchemy wraps, and their causes."""
    found: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo and len(found) < 12:
        error = todo.pop(0)
        if error is None or any(error is seen for seen in found):
            continue
        found.append(error)
        todo += [getattr(error, "orig", None), error.__cause__]
    return found


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _postgres(state: str, message: str) -> Failure | None:
    """Postgres refusals by SQLSTATE: https://www.postgresql.org/docs/current/errcodes-appendix.html"""
    if state == "3D000":  # invalid_catalog_name: may be created by another container's start-up
        return Failure(message, True, "create it, or fix the database name in DATABASE_URL")
    if state.startswith("28"):  # invalid authorization: no such role, wrong password
        return Failure(message, False, "check the user and password in DATABASE_URL")
    if state == "42501":  # insufficient_privilege, e.g. no CREATE on the schema
        return Failure(message, False, "let the DATABASE_URL user create tables in the database")
    if state.startswith("08") or state in {"57P03", "53300"}:  # connection, starting up, full
        return Failure(message, True)
    return None


def _sqlite(message: str) -> Failure | None:
    if message.startswith(("unable to open database file", "attempt to write a readonly")):
        return Failure(message, False, "check that its folder exists and Warroom may write there")
    if message.startswith(("file is not a database", "database disk image is malformed")):
        return Failure(message, False, "point DATABASE_URL at a Warroom database")
    if message.startswith(("disk I/O error", "database or disk is full")):
        return Failure(message, False)
    return None
