"""Starting Warroom, its database and its policy file, as an operator meets them: mostly the
real `warroom` command in its own process, with plain answers and no tracebacks."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import sys
import time
import types
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, get_args, get_origin

import aiohttp
import asyncpg
import pytest
from alembic.script import ScriptDirectory
from annotated_types import Ge, Le
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.engine import make_url

from app.config import ConfigError, load_policy, load_settings
from app.domain.policy import Policy
from app.fake_slack import FakeSlack
from app.store.db import Database
from app.store.migrate import alembic_config, upgrade
from tests.support.bot import Bot
from tests.support.constants import ALICE, BOT_TOKEN, SIGNING_SECRET

WARROOM = [sys.executable, "-m", "app.cli"]
ROOT = Path(__file__).resolve().parents[2]
REVISIONS = [
    rev.revision
    for rev in reversed(list(ScriptDirectory.from_config(alembic_config("x")).walk_revisions()))
]
HEAD = REVISIONS[-1]


# --- running `warroom` ----------------------------------------------------------------------


def env_for(folder: Path, **extra: str) -> dict[str, str]:
    """A clean environment for the `warroom` command: the checkout on PYTHONPATH, nothing else."""
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep}
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{folder / 'warroom.db'}"
    env.update(extra)
    return {k: v for k, v in env.items() if v is not None}


def slack_env(folder: Path, fake: FakeSlack | None = None, **extra: str) -> dict[str, str]:
    """Credentials and the fake's URL (a closed port without a fake), quiet logs, then `extra`."""
    values = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url if fake else "http://127.0.0.1:9/api/",
        "LOG_LEVEL": "WARNING",
    }
    return env_for(folder, **(values | extra))


async def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, str, str]:
    """Run `warroom args`; a process still running after `timeout` seconds fails the test."""
    proc = await asyncio.create_subprocess_exec(
        *WARROOM,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        pytest.fail(f"`warroom {' '.join(args)}` still running after {timeout} s")
    return proc.returncode or 0, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=BOT_TOKEN, bot_user_id="UBOT")
    fake.add_user(ALICE, name="alice")
    fake.add_channel("incidents", members=[ALICE])
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


# --- 17: every number in the policy has a range ---------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line"),
    [
        (
            "[severities.2]\nupdate_every_minutes = -1\n",
            "severities.2.update_every_minutes: must be at least 1 (got -1)",
        ),
        (
            "[severities.3]\nupdate_every_minutes = 0\n",
            "severities.3.update_every_minutes: must be at least 1 (got 0)",
        ),
        (
            "[severities.1]\nresponse_target_minutes = -5\n",
            "severities.1.response_target_minutes: must be at least 0 (got -5)",
        ),
        (
            "[severities.5]\nname = 'Trivial'\n",
            "severities.5: unknown severity level; severities are exactly levels 1, 2, 3 and 4",
        ),
        (
            "[severities.0]\nname = 'Worse than critical'\n",
            "severities.0: unknown severity level; severities are exactly levels 1, 2, 3 and 4",
        ),
        (
            "[escalation]\nlease_seconds = 0\n",
            "escalation.lease_seconds: must be at least 1 (got 0)",
        ),
        (
            "[escalation]\narchive_after_minutes = 99999999\n",
            "escalation.archive_after_minutes: must be at most 43200 (got 99999999)",
        ),
        (
            "[escalation]\ntick_seconds = 'often'\n",
            "escalation.tick_seconds: must be a whole number (got 'often')",
        ),
        (
            "[severities.2]\nupdate_every_minutes = 1.5\n",
            "severities.2.update_every_minutes: must be a whole number (got 1.5)",
        ),
        (
            "[[escalation.ladders.standard]]\nafter_minutes = -1\ncancel_on = 'acknowledged'\n"
            "say = 'Escalating.'\n",
            "escalation.ladders.standard.0.after_minutes: must be at least 0 (got -1)",
        ),
        (
            "[[escalation.ladders.standard]]\nafter_minutes = 5\ncancel_on = 'acknowledged'\n",
            "escalation.ladders.standard.0.say: required",
        ),
        (
            "[escalation.business_hours]\ndays = [1, 8]\n",
            "escalation.business_hours.days.1: must be at most 7 (got 8)",
        ),
    ],
)
def test_policy_numbers_have_ranges(tmp_path: Path, content: str, line: str) -> None:
    path = tmp_path / "warroom.toml"
    path.write_text(content)
    with pytest.raises(ConfigError) as caught:
        load_policy(str(path))
    assert str(caught.value) == f"{path}: {line}."


def _numbers(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, list[Any]]]:
    """Every int in the policy model, with its constraints (through lists, dicts, Optional)."""

    def walk(annotation: Any, metadata: list[Any], where: str) -> Iterator[tuple[str, list[Any]]]:
        origin = get_origin(annotation)
        if annotation is int:
            yield where, metadata
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _numbers(annotation, where + ".")
        elif origin in (list, dict):
            yield from walk(get_args(annotation)[-1], [], where + ".*")
        elif origin in (types.UnionType,) or str(origin) == "typing.Union":
            for arg in get_args(annotation):
                yield from walk(arg, metadata, where)
        elif getattr(annotation, "__metadata__", None):  # Annotated[...]
            extra = [
                c for m in annotation.__metadata__ for c in getattr(m, "metadata", None) or [m]
            ]
            yield from walk(get_args(annotation)[0], extra, where)

    for name, info in model.model_fields.items():
        yield from walk(info.annotation, list(info.metadata), prefix + name)


def test_every_number_in_the_policy_has_a_range() -> None:
    found = dict(_numbers(Policy))
    assert "severities.*.update_every_minutes" in found
    unbounded = [
        where
        for where, metadata in found.items()
        if not any(isinstance(m, Ge) for m in metadata)
        or not any(isinstance(m, Le) for m in metadata)
    ]
    assert not unbounded, unbounded


async def test_a_policy_number_out_of_range_stops_start_up_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "warroom.toml").write_text("[severities.2]\nupdate_every_minutes = -1\n")
    code, _, err = await run(["serve", "--http"], slack_env(tmp_path), tmp_path)
    assert code == 2
    assert err.strip() == (
        "Configuration error: warroom.toml: severities.2.update_every_minutes: "
        "must be at least 1 (got -1)."
    )


# --- 12: events are acknowledged before the database is touched --------------------------------


@asynccontextmanager
async def frozen(database_url: str) -> AsyncIterator[None]:
    """Another connection holds the write lock: every write waits until the block ends."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        assert path
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    pg = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    transaction = pg.transaction()
    await transaction.start()
    await pg.execute("LOCK TABLE processed_events IN ACCESS EXCLUSIVE MODE")
    try:
        yield
    finally:
        await transaction.rollback()
        await pg.close()


async def test_events_are_acknowledged_while_the_database_is_frozen(
    bot: Bot, database_url: str
) -> None:
    opened = {"type": "app_home_opened", "user": ALICE, "channel": "D1", "tab": "home"}
    before = len(bot.fake.calls)
    async with frozen(database_url):
        for _ in range(2):  # the delivery, then Slack's retry of it
            started = time.monotonic()
            status = await asyncio.wait_for(bot.slack.event(opened, "EvFrozen1"), 10)
            assert status == 200
            assert time.monotonic() - started < 3
    await bot.settle(40)
    published = [
        c
        for c in bot.fake.calls[before:]
        if c.method == "views.publish" and c.args.get("user_id") == ALICE
    ]
    assert len(published) == 1, "the retried delivery ran again"


# --- Postgres ---------------------------------------------------------------------------------


def postgres_server() -> str:
    """The test Postgres server's URL; the test is skipped without one (a failure in CI)."""
    for name in ("WARROOM_TEST_POSTGRES_URL", "WARROOM_TEST_DATABASE_URL"):
        url = os.environ.get(name, "").strip()
        if url.startswith("postgres"):
            return url
    if os.environ.get("CI"):
        pytest.fail("WARROOM_TEST_POSTGRES_URL is not set: CI must provide Postgres")
    pytest.skip("set WARROOM_TEST_POSTGRES_URL to run the Postgres start-up tests")


def admin_dsn(server: str) -> str:
    return server.replace("postgresql+asyncpg://", "postgresql://")


async def create_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn(server))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(server: str, name: str) -> None:
    conn = await asyncpg.connect(admin_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@asynccontextmanager
async def postgres_database(create: bool = True) -> AsyncIterator[tuple[str, str]]:
    """(server URL, name) of a database of its own, dropped afterwards; created unless asked."""
    server = postgres_server()
    name = f"warroom_startup_{uuid.uuid4().hex[:10]}"
    if create:
        await create_database(server, name)
    try:
        yield server, name
    finally:
        await drop_database(server, name)


def with_database(server: str, name: str, port: int | None = None) -> str:
    url = make_url(server).set(database=name)
    if port is not None:
        url = url.set(host="127.0.0.1", port=port)
    return url.render_as_string(hide_password=False)


async def revision(url: str) -> str | None:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    finally:
        await db.dispose()


# --- 14: replicas starting together migrate once ------------------------------------------------


@asynccontextmanager
async def empty_database(kind: str, folder: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'warroom.db'}"
        return
    async with postgres_database() as (server, name):
        yield with_database(server, name)


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
async def test_replicas_starting_together_all_migrate(kind: str, tmp_path: Path) -> None:
    for attempt in range(3):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        async with empty_database(kind, folder) as url:
            env = env_for(folder, DATABASE_URL=url)
            results = await asyncio.gather(*(run(["db", "upgrade"], env, folder) for _ in range(3)))
            for code, out, err in results:
                assert "Traceback" not in err, err
                assert code == 0, err
                assert "Database is up to date" in out
            assert await revision(url) == HEAD


# --- 16: database errors are one line ------------------------------------------------------------


def database_cases(folder: Path) -> Iterator[tuple[str, str, str]]:
    """(case, DATABASE_URL, what the one line says)."""
    (folder / "a-file").write_text("not a folder")
    yield (
        "unwritable SQLite path",
        f"sqlite:///{folder / 'a-file' / 'warroom.db'}",
        str(folder / "a-file" / "warroom.db"),
    )
    yield (
        "unparsable URL",
        "warroom database on the db host",
        "Configuration error: DATABASE_URL is not a database URL",
    )
    yield (
        "MySQL",
        "mysql://warroom:s3cret@db.internal/warroom",
        "Configuration error: DATABASE_URL: mysql is not supported",
    )


POSTGRES_CASES = {
    "missing database": ("postgres", "warroom_no_such_db", 'database "warroom_no_such_db"'),
    "unknown role": ("warroom_no_such_role", "postgres", 'role "warroom_no_such_role"'),
}


async def one_line_each(
    url: str, said: str, folder: Path, fake: FakeSlack, tmp_name: str = ""
) -> None:
    env = slack_env(folder, fake, DATABASE_URL=url, WARROOM_DB_WAIT_SECONDS="0")
    commands = [
        ["serve", "--http", "--host", "127.0.0.1", "--port", "0"],
        ["db", "upgrade"],
        ["stats"],
        ["export", "1"],
    ]
    results = await asyncio.gather(*(run(args, env, folder, timeout=30) for args in commands))
    for args, (code, _, err) in zip(commands, results, strict=True):
        assert code == 2, (args, err)
        assert "Traceback" not in err, (args, err)
        assert len(err.strip().splitlines()) == 1, (args, err)
        assert said in err, (args, err)
        assert "s3cret" not in err


@pytest.mark.parametrize("case", ["unwritable SQLite path", "unparsable URL", "MySQL"])
async def test_database_errors_are_one_line(tmp_path: Path, slack: FakeSlack, case: str) -> None:
    cases = {name: (url, said) for name, url, said in database_cases(tmp_path)}
    url, said = cases[case]
    await one_line_each(url, said, tmp_path, slack)


@pytest.mark.parametrize("case", sorted(POSTGRES_CASES))
async def test_postgres_errors_are_one_line(tmp_path: Path, slack: FakeSlack, case: str) -> None:
    user, database, said = POSTGRES_CASES[case]
    server = make_url(postgres_server())
    url = server.set(username=user, password="s3cret", database=database)
    await one_line_each(url.render_as_string(hide_password=False), said, tmp_path, slack)


async def test_read_only_commands_never_create_a_database(tmp_path: Path, slack: FakeSlack) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = slack_env(elsewhere, slack)
    del env["DATABASE_URL"]  # the default, ./warroom.db, in a folder that has none
    path = (elsewhere / "warroom.db").resolve()
    for args in (["stats"], ["export", "1"]):
        code, out, err = await run(args, env, elsewhere)
        assert code == 2, err
        assert err.strip() == (
            f"Database error: no Warroom database at {path}; "
            "run `warroom db upgrade` or set DATABASE_URL."
        )
        assert not path.exists()
    code, out, _ = await run(["check"], env, elsewhere)
    assert code == 1
    assert f"FAIL no Warroom database at {path}" in out
    assert "All good" not in out
    assert not path.exists()
    code, _, err = await run(["db", "upgrade"], env, elsewhere)
    assert code == 0, err
    code, out, err = await run(["stats"], env, elsewhere)
    assert code == 0, err


async def test_check_reports_an_unmigrated_database(tmp_path: Path, slack: FakeSlack) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'warroom.db'}"
    await upgrade(url, REVISIONS[-2])
    env = slack_env(tmp_path, slack, DATABASE_URL=url)
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1, out
    assert (
        f"FAIL database not migrated (at revision {REVISIONS[-2]}, head {HEAD}): "
        "run `warroom db upgrade`"
    ) in out
    assert "All good" not in out
    code, _, err = await run(["stats"], env, tmp_path)
    assert code == 2
    assert err.strip() == (
        f"Database error: database not migrated (at revision {REVISIONS[-2]}, head {HEAD}): "
        "run `warroom db upgrade`."
    )
    code, _, err = await run(["db", "upgrade"], env, tmp_path)
    assert code == 0, err
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 0, out
    assert "ok   database answers" in out and "All good." in out


async def test_check_knows_each_token_by_its_kind(tmp_path: Path, slack: FakeSlack) -> None:
    env = slack_env(tmp_path, slack, SLACK_APP_TOKEN="xoxb-not-an-app-token")
    code, _, err = await run(["db", "upgrade"], env, tmp_path)
    assert code == 0, err
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1, out
    assert "FAIL SLACK_APP_TOKEN must start with xapp- (this one starts with xoxb-)" in out
    assert "Slack token works" in out
    env.update(SLACK_BOT_TOKEN="xapp-1-A1-not-a-bot-token", SLACK_APP_TOKEN="xapp-1-A1-ok")
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1, out
    assert "FAIL SLACK_BOT_TOKEN must start with xoxb- (this one starts with xapp-)" in out
    assert "SLACK_APP_TOKEN must" not in out


async def test_an_unreachable_slack_is_not_blamed_on_the_token(tmp_path: Path) -> None:
    api = "https://slack.invalid/api/"
    env = slack_env(tmp_path, SLACK_API_URL=api)
    code, _, err = await run(["db", "upgrade"], env, tmp_path)
    assert code == 0, err
    code, out, _ = await run(["check"], env, tmp_path)
    assert code == 1, out
    assert f"FAIL cannot reach Slack at {api}: " in out
    assert "refused" not in out and "token" not in out.split("FAIL", 1)[1]
    code, _, err = await run(["serve", "--http", "--port", "0"], env, tmp_path)
    assert code == 2, err
    assert err.strip().startswith(f"Cannot start: cannot reach Slack at {api}: "), err
    assert len(err.strip().splitlines()) == 1, err


class Server:
    """`warroom serve --http` in its own process."""

    def __init__(self, env: dict[str, str], cwd: Path) -> None:
        self.env = env | {"LOG_LEVEL": "INFO"}  # `healthy` waits for "listening on"
        self.cwd = cwd
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        self.stderr = cwd / f"serve-{self.port}.log"

    @property
    def pid(self) -> int:
        assert self.proc
        return self.proc.pid

    async def start(self) -> None:
        with self.stderr.open("wb") as log:
            self.proc = await asyncio.create_subprocess_exec(
                *WARROOM,
                *["serve", "--http", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                cwd=self.cwd,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
            )

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")

    async def healthy(self, timeout: float = 30) -> None:
        assert self.proc
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"http://127.0.0.1:{self.port}/healthz") as response:
                        # /healthz answers before the signal handlers are in place; the log
                        # line comes after, and a SIGTERM from then on is a clean stop.
                        if response.status == 200 and "listening on" in self.log():
                            return
                except aiohttp.ClientError:
                    pass
                assert self.proc.returncode is None, f"the bot exited: {self.log()}"
                assert time.monotonic() < deadline, f"the bot did not become healthy: {self.log()}"
                await asyncio.sleep(0.1)

    async def stop(self) -> int:
        assert self.proc
        if self.proc.returncode is None:
            self.proc.terminate()
        return await asyncio.wait_for(self.proc.wait(), 20)


# --- 15: waiting for the database ---------------------------------------------------------------


@pytest.mark.parametrize(
    "args", [["db", "upgrade"], ["serve", "--http", "--host", "127.0.0.1", "--port", "0"]]
)
async def test_start_up_waits_for_the_database_then_gives_up(
    tmp_path: Path, args: list[str]
) -> None:
    port = free_port()  # nothing listens there
    env = slack_env(
        tmp_path,
        DATABASE_URL=f"postgresql://warroom@127.0.0.1:{port}/warroom",
        WARROOM_DB_WAIT_SECONDS="3",
    )
    started = time.monotonic()
    code, _, err = await run(args, env, tmp_path, timeout=30)
    took = time.monotonic() - started
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    waits = [line for line in lines if "waiting for the database" in line]
    assert len(waits) >= 2, err
    assert re.search(
        rf"waiting for the database at 127\.0\.0\.1:{port} \(attempt 2, \d s of 3\)", err
    ), err
    assert lines[-1] == (
        f"Database error: gave up waiting for the database at 127.0.0.1:{port} after 3 s: "
        "connection refused."
    )
    assert 3 <= took < 20


def test_the_wait_is_configured_in_seconds() -> None:
    assert load_settings(env={}, dotenv=False).db_wait_seconds == 60
    assert load_settings(env={"WARROOM_DB_WAIT_SECONDS": "5"}, dotenv=False).db_wait_seconds == 5
    for wrong in ("soon", "-1", "1.5"):
        with pytest.raises(ConfigError, match=r"WARROOM_DB_WAIT_SECONDS: .* is not a number"):
            load_settings(env={"WARROOM_DB_WAIT_SECONDS": wrong}, dotenv=False)


async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


@asynccontextmanager
async def proxy(port: int, target: tuple[str, int]) -> AsyncIterator[None]:
    """A TCP proxy on 127.0.0.1:`port` to `target`: the database 'coming up' late."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*target)
        await asyncio.gather(forward(reader, up_writer), forward(up_reader, writer))

    server = await asyncio.start_server(pipe, "127.0.0.1", port)
    try:
        yield
    finally:
        server.close()


async def test_start_up_waits_for_a_database_that_comes_up_late(
    tmp_path: Path, slack: FakeSlack
) -> None:
    async with postgres_database() as (server, name):
        target = make_url(server)
        port = free_port()
        env = slack_env(
            tmp_path,
            slack,
            DATABASE_URL=with_database(server, name, port=port),
            WARROOM_DB_WAIT_SECONDS="60",
        )
        bot = Server(env, tmp_path)
        await bot.start()
        waiting = f"waiting for the database at 127.0.0.1:{port} (attempt 2"
        try:
            # The database comes up only once the bot has tried twice and kept waiting.
            deadline = asyncio.get_running_loop().time() + 30
            while waiting not in bot.log():
                assert asyncio.get_running_loop().time() < deadline, bot.log()
                await asyncio.sleep(0.1)
            assert bot.proc and bot.proc.returncode is None, bot.log()
            async with proxy(port, (target.host or "127.0.0.1", target.port or 5432)):
                await bot.healthy(timeout=30)
                assert await bot.stop() == 0
        finally:
            await bot.stop()


async def test_db_upgrade_waits_for_a_database_that_is_created_late(tmp_path: Path) -> None:
    async with postgres_database(create=False) as (server, name):
        env = env_for(
            tmp_path, DATABASE_URL=with_database(server, name), WARROOM_DB_WAIT_SECONDS="60"
        )
        proc = await asyncio.create_subprocess_exec(
            *WARROOM,
            "db",
            "upgrade",
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert proc.stdout and proc.stderr
        try:
            # The database is created only once the command has found it missing and waits
            # (however long the interpreter takes to start on a busy machine).
            said: list[str] = []
            missing = f'database "{name}" does not exist'
            while not any(missing in line for line in said):
                line = await asyncio.wait_for(proc.stderr.readline(), 30)
                assert line, f"`warroom db upgrade` ended without waiting: {said}"
                said.append(line.decode())
            assert proc.returncode is None
            await create_database(server, name)
            out, err = await asyncio.wait_for(
                asyncio.gather(proc.stdout.read(), proc.stderr.read()), 60
            )
            assert await proc.wait() == 0, "".join(said) + err.decode()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        assert "Database is up to date" in out.decode()
        assert await revision(with_database(server, name)) == HEAD


# --- 13: one server per SQLite file --------------------------------------------------------------


async def test_a_second_server_on_one_sqlite_file_is_refused(
    tmp_path: Path, slack: FakeSlack
) -> None:
    env = slack_env(tmp_path, slack)
    first = Server(env, tmp_path)
    await first.start()
    try:
        await first.healthy()
        code, _, err = await run(
            ["serve", "--http", "--host", "127.0.0.1", "--port", str(free_port())],
            env,
            tmp_path,
            timeout=20,
        )
        path = (tmp_path / "warroom.db").resolve()
        assert code == 2, err
        assert err.strip() == (
            f"Cannot start: another Warroom is already serving {path} (pid {first.pid}); "
            "use Postgres for several replicas."
        )
        # Reading is still allowed while it serves.
        code, out, err = await run(["stats"], env, tmp_path)
        assert code == 0, err
        assert "Sev2" in out
    finally:
        assert await first.stop() == 0
    # The lock goes with the process: the next one starts.
    again = Server(env, tmp_path)
    await again.start()
    try:
        await again.healthy()
    finally:
        assert await again.stop() == 0
