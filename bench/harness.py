"""Shared machinery for the benchmarks: the fake workspace, the real bot serving HTTP against it,
a client that signs requests as Slack does, and the plumbing every benchmark process needs.

Benchmarks must not import `tests/`: the suite is free to change its helpers, and a benchmark
that silently changed with it would stop being comparable with the numbers in
docs/performance.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import math
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from app.bootstrap import Runtime, build
from app.config import Settings, build_policy
from app.domain.policy import Policy
from app.fake_slack import FakeSlack
from app.fake_slack.state import Message
from app.server import prepare, web_app
from app.services.clock import Clock

SIGNING_SECRET = "bench-signing-secret"
BOT_TOKEN = "xoxb-bench-token"
BOT_USER = "UBOT"
TEAM = "T1"
ANNOUNCE = "incidents"
DECLARER = "UALICE"
ONCALL_GROUP = "SONCALL"

# The people of the benchmark workspace: every policy function has someone, so each step the
# bot takes (invites, pages, DMs) really happens instead of being skipped for lack of a target.
PEOPLE: dict[str, str] = {
    "UALICE": "alice",
    "UBOB": "bob",
    "UONCALL1": "oncall1",
    "UONCALL2": "oncall2",
    "UBACKUP": "backup",
    "UENGLEAD": "englead",
    "UTECHLEAD": "techlead",
    "UENGMGR": "engmgr",
    "UVPENG": "vpeng",
    "UVPOPS": "vpops",
    "UCEO": "ceo",
    "USPECIAL": "specialist",
}

RESULT_PREFIX = "BENCH-RESULT "
"""A benchmark process prints its rows on one stdout line after this marker."""


# --- results ----------------------------------------------------------------------------------


@dataclass
class Row:
    """One line of the final table: what was measured, the figure, the target, and the verdict.

    `ok` is None for figures reported for context only (they have no target to pass or miss).
    `why` explains a miss; `note` is detail too long for the table, printed under it.
    """

    benchmark: str
    measured: str
    target: str = "-"
    ok: bool | None = None
    why: str = ""
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "benchmark": self.benchmark,
            "measured": self.measured,
            "target": self.target,
            "ok": self.ok,
            "why": self.why,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(
            benchmark=str(data["benchmark"]),
            measured=str(data["measured"]),
            target=str(data.get("target", "-")),
            ok=data.get("ok"),
            why=str(data.get("why", "")),
            note=str(data.get("note", "")),
        )


@dataclass
class Outcome:
    """What one benchmark process hands back to `python -m bench`."""

    rows: list[Row]
    warnings: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rows": [r.to_json() for r in self.rows], "warnings": self.warnings}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Outcome:
        return cls(
            rows=[Row.from_json(r) for r in data.get("rows", [])],
            warnings={str(k): int(v) for k, v in (data.get("warnings") or {}).items()},
        )


class WarningTally(logging.Handler):
    """Counts log records at WARNING and above instead of printing them.

    The table is the output; a run that logs hundreds of retry warnings would bury it. The
    counts still travel with the results so a noisy run is visible and can be explained.
    """

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        # Group by the logger and the start of the message, not by incident numbers and IDs.
        key = f"{record.levelname} {record.name}: {_shape(message)}"
        self.counts[key] += 1


def _shape(message: str) -> str:
    words = []
    for word in message.split()[:8]:
        words.append("#" if any(ch.isdigit() for ch in word) else word)
    return " ".join(words)


def quiet_logs() -> WarningTally:
    """WARNING and above only, tallied rather than printed (see WarningTally)."""
    tally = WarningTally()
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(tally)
    root.setLevel(logging.WARNING)
    for name in ("aiohttp", "slack_bolt", "slack_sdk", "apscheduler", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return tally


def emit(outcome: Outcome) -> None:
    """Hand the results to the parent process on one marked line."""
    sys.stdout.write(RESULT_PREFIX + json.dumps(outcome.to_json()) + "\n")
    sys.stdout.flush()


def run_benchmark(main: Callable[[], Coroutine[Any, Any, list[Row]]]) -> None:
    """Entry point of a benchmark module: quiet logs, run `main()`, print the marked result
    line. One process per benchmark keeps each one's memory and event loop its own."""
    tally = quiet_logs()
    rows = asyncio.run(main())
    emit(Outcome(rows=rows, warnings=dict(tally.counts)))


# --- statistics -------------------------------------------------------------------------------


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), interpolating between the two nearest ranks.

    Interpolation keeps p99 of a few hundred samples from jumping to the single worst one.
    """
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = math.ceil(rank)
    if low == high:
        return ordered[low]
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def ms(seconds: float) -> str:
    """Milliseconds with a precision that suits the size."""
    value = seconds * 1000
    if value < 10:
        return f"{value:.2f} ms"
    if value < 100:
        return f"{value:.1f} ms"
    return f"{value:.0f} ms"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


# --- the workspace and the bot ------------------------------------------------------------


def bench_policy() -> Policy:
    """The benchmark organisation: the built-in process with every function staffed, and the
    on-call rota as a user group, as most real workspaces keep it."""
    return build_policy(
        {
            "directory": {
                "on_call": [ONCALL_GROUP],
                "on_call_backup": ["UBACKUP"],
                "tech_lead": ["UTECHLEAD"],
                "engineering_manager": ["UENGMGR"],
                "engineering_lead": ["UENGLEAD"],
                "vp_engineering": ["UVPENG"],
                "vp_ops": ["UVPOPS"],
                "ceo": ["UCEO"],
                "specialists": ["USPECIAL"],
            },
            "links": {"status_page": "https://status.example.com"},
            # One declarer sends every declare here, and the benchmarks measure the bot doing
            # each one's work: the per-person limit must never bind.
            "limits": {"declares_per_person": 1000, "declare_window_minutes": 1},
        }
    )


def new_fake() -> FakeSlack:
    """A fake workspace with the benchmark people, the on-call group and #incidents."""
    fake = FakeSlack(bot_token=BOT_TOKEN, bot_user_id=BOT_USER, team_id=TEAM, seed=7)
    for user_id, name in PEOPLE.items():
        fake.add_user(user_id, name=name, real_name=name.capitalize())
    fake.add_usergroup(ONCALL_GROUP, handle="oncall", users=["UONCALL1", "UONCALL2"])
    fake.add_channel(ANNOUNCE, members=[DECLARER], bot_member=False)
    fake.add_channel("general", members=[DECLARER, "UBOB"], bot_member=False)
    return fake


def settings_for(api_url: str, database_url: str, pacing: float = 0.0) -> Settings:
    """The bot's settings against the fake Slack serving `api_url`.

    `pacing` is `WARROOM_SLACK_PACING`: the fake's own scale where it enforces Slack's limits
    (as the bot paces to Slack's real windows in production), 0 where it enforces none (the
    benchmark measures the bot, not limits its Slack does not have)."""
    return Settings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_url=api_url,
        database_url=database_url,
        announce_channel=ANNOUNCE,
        log_level="WARNING",
        policy=bench_policy(),
        slack_pacing=pacing,
    )


@asynccontextmanager
async def sqlite_url(name: str) -> AsyncIterator[str]:
    """A database URL for a SQLite file in a temporary folder that is removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="warroom-bench-") as folder:
        yield f"sqlite+aiosqlite:///{Path(folder) / f'{name}.db'}"


async def serve(app: web.Application) -> tuple[web.AppRunner, int]:
    """Serve an aiohttp application on 127.0.0.1 on a free port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = int(runner.addresses[0][1])
    return runner, port


class Control:
    """A small HTTP side door into a server process (mint response URLs, wait for the bot to
    finish its post-ack work, read its CPU time...). Served on its own port so the measured app
    is exactly the production one."""

    def __init__(self) -> None:
        self.app = web.Application()

    def route(
        self, method: str, path: str, handler: Callable[[dict[str, Any]], Awaitable[Any]]
    ) -> None:
        async def wrapped(request: web.Request) -> web.Response:
            body = await request.json() if request.body_exists else {}
            return web.json_response(await handler(body))

        self.app.router.add_route(method, path, wrapped)


async def until_stopped() -> None:
    """Serve until the parent closes our stdin (or signals us)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    reader = asyncio.ensure_future(asyncio.to_thread(sys.stdin.readline))
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({reader, waiter}, return_when=asyncio.FIRST_COMPLETED)
    waiter.cancel()


@dataclass
class RunningBot:
    """The real bot, served over HTTP like `warroom serve --http`, and the fake it talks to."""

    warroom: Runtime
    fake: FakeSlack
    url: str

    async def settle(self, timeout: float = 60.0) -> bool:
        """Wait until the work the bot acknowledged has finished."""
        return await self.warroom.inflight.wait_idle(timeout)


@asynccontextmanager
async def running_bot(
    fake: FakeSlack, database_url: str, clock: Clock | None = None, pacing: float = 0.0
) -> AsyncIterator[RunningBot]:
    """Build the bot from settings (`build`), migrate and identify (`prepare`), and serve its
    `web_app` on a local port: the same path a request takes in production. `pacing`: see
    `settings_for`."""
    warroom = build(settings_for(fake.api_url, database_url, pacing), clock=clock)
    await prepare(warroom)
    runner, port = await serve(web_app(warroom))
    try:
        yield RunningBot(warroom, fake, f"http://127.0.0.1:{port}/slack/events")
    finally:
        await warroom.inflight.wait_idle(30)
        await runner.cleanup()
        await warroom.close()


def bot_messages(fake: FakeSlack, channel_name: str) -> list[Message]:
    """Messages the bot posted at the top of a channel (none when the channel is unknown)."""
    channel = fake.channel_by_name(channel_name)
    if channel is None:
        return []
    return [m for m in fake.messages(channel.id) if m.user == BOT_USER]


async def wait_until(check: Callable[[], bool], timeout: float, interval: float = 0.002) -> bool:
    """Poll `check` until it holds; False when `timeout` seconds pass first."""
    deadline = time.perf_counter() + timeout
    while not check():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(interval)
    return True


# --- signed requests --------------------------------------------------------------------------


class SignedClient:
    """Sends commands and form submissions the way Slack does: form-encoded and signed.

    Signing happens before the clock starts, as Slack signs before it sends; the measured time
    is the HTTP exchange alone, up to the last byte of the acknowledgment.
    """

    _serial = itertools.count(1)

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session = session
        self.url = url
        self.signer = SignatureVerifier(SIGNING_SECRET)

    @staticmethod
    def unique(prefix: str) -> str:
        """Trigger and view IDs must differ per request, or the bot takes a repeat for a retry."""
        return f"{prefix}{next(SignedClient._serial)}{uuid.uuid4().hex[:6]}"

    def signed(self, body: str) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": self.signer.generate_signature(timestamp=timestamp, body=body),
        }

    async def post(self, body: str) -> tuple[int, float, str]:
        """POST a body; returns the status, the seconds until the answer arrived, the answer."""
        headers = self.signed(body)
        started = time.perf_counter()
        async with self.session.post(self.url, data=body, headers=headers) as response:
            text = await response.text()
        return response.status, time.perf_counter() - started, text


def command_body(
    text: str, response_url: str, user: str = DECLARER, channel: str = "CGENERAL"
) -> str:
    """The form Slack posts for `/incident <text>`."""
    return urlencode(
        {
            "token": "unused-legacy-token",
            "team_id": TEAM,
            "team_domain": "bench",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/incident",
            "text": text,
            "api_app_id": "ABENCH",
            "response_url": response_url,
            "trigger_id": SignedClient.unique("T."),
        }
    )


def submission_body(view: dict[str, Any], answers: dict[str, Any], user: str = DECLARER) -> str:
    """The form Slack posts when someone submits `view` with `answers` ({block_id: value}).

    Each submission gets a fresh view ID, as each opening of a form has its own on Slack.
    """
    submitted = {
        **view,
        "id": SignedClient.unique("V"),
        "state": {"values": form_state(view, answers)},
    }
    payload = {
        "type": "view_submission",
        "team": {"id": TEAM},
        "user": {"id": user, "name": user.lower()},
        "api_app_id": "ABENCH",
        "trigger_id": SignedClient.unique("T."),
        "view": submitted,
    }
    return urlencode({"payload": json.dumps(payload)})


def form_state(view: dict[str, Any], answers: dict[str, Any]) -> dict[str, Any]:
    """`view.state.values` as Slack builds it: one entry per input block, shaped by the type of
    its element; blocks without an answer keep their initial value."""
    state: dict[str, Any] = {}
    inputs = (b for b in view.get("blocks", []) if b.get("type") == "input")
    for block in inputs:
        element = block["element"]
        kind = element["type"]
        answer = answers.get(block["block_id"])
        entry: dict[str, Any] = {"type": kind}
        if kind == "static_select":
            wanted = (
                answer if answer is not None else (element.get("initial_option") or {}).get("value")
            )
            entry["selected_option"] = next(
                (o for o in element.get("options", []) if o["value"] == wanted), None
            )
        elif kind == "users_select":
            entry["selected_user"] = answer or element.get("initial_user")
        elif kind == "checkboxes":
            chosen = set(answer or [])
            entry["selected_options"] = [o for o in element["options"] if o["value"] in chosen]
        elif kind == "datetimepicker":
            entry["selected_date_time"] = answer
        else:
            entry["value"] = answer if answer is not None else element.get("initial_value")
        state[block["block_id"]] = {element["action_id"]: entry}
    return state


def client_session(timeout: float = 30.0, connections: int = 128) -> aiohttp.ClientSession:
    """One keep-alive session for all requests; enough connections that 50 concurrent clients
    never queue inside the client itself."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections),
        timeout=aiohttp.ClientTimeout(total=timeout),
    )


# --- the machine ------------------------------------------------------------------------------


def machine() -> str:
    """CPU model, cores and Python version, for the line under the table."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = os.cpu_count() or 0
    python = sys.version.split()[0]
    return f"{model}, {cores} cores, Python {python} ({sys.platform})"


def rss_mb() -> tuple[float, float]:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), in MB."""
    values: dict[str, float] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in {"VmRSS", "VmHWM"}:
            values[key] = int(rest.split()[0]) / 1024
    return values.get("VmRSS", math.nan), values.get("VmHWM", math.nan)
