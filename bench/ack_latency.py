"""Row 1: how long Slack waits for the bot's acknowledgment, against a bare Bolt app.

Slack gives a command or a form submission 3 seconds; the bot promises to answer at once and do
the work afterwards. The honest yardstick is not an absolute number (it depends on the machine)
but the same request answered by a Bolt `AsyncApp` whose listeners only call `ack()`, served the
same way on the same machine in the same run, in both of Bolt's modes: the default (the
listener runs as a task and Bolt answers when it calls `ack()`) and `process_before_response=True`
(Bolt answers once the listener returned, as on FaaS). The faster of the two at p99 is the
floor; the ratio ours / floor is what this row reports, and the row says which mode it was.

Each app runs in its own process (`python -m bench.ack_latency serve ours|bare|bare-pbr`), so
none shares an event loop with the client or with another app. The real bot keeps its post-ack
work (database writes, Slack calls to the in-process fake): that work competing with the next
acknowledgment is exactly what the comparison is meant to expose. Rounds alternate between the
apps, and the bot is allowed to finish its work before each bare round, so a bare app never
runs while the bot's leftovers take the CPU.

Two more rows, without targets, send one request at a time and let the bot finish its work
before the next: they separate the cost of the acknowledgment path itself from the cost of
sharing the event loop with earlier requests' work.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, cast

import aiohttp
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.authorization import AuthorizeResult

from app.bootstrap import Runtime
from app.config import Settings
from app.server import web_app
from app.slack import views
from bench.harness import (
    BOT_TOKEN,
    BOT_USER,
    RESULT_PREFIX,
    SIGNING_SECRET,
    TEAM,
    Control,
    Outcome,
    Row,
    SignedClient,
    client_session,
    command_body,
    emit,
    ms,
    new_fake,
    percentile,
    quiet_logs,
    running_bot,
    serve,
    sqlite_url,
    submission_body,
    until_stopped,
)

SEQUENTIAL_ROUNDS = 6
SEQUENTIAL_PER_ROUND = 50  # 300 samples per app and kind
CONCURRENT_CLIENTS = 50
CONCURRENT_ROUNDS = 2
CONCURRENT_PER_CLIENT = 5  # 50 clients x 10 requests per app and kind
WARM_UP = 30
IDLE_SAMPLES = 100  # per app and kind, for the diagnostic rows
RATIO_TARGET = 1.10
SLACK_LIMIT = 3.0
REQUEST_TIMEOUT = 10.0

COMMANDS = ("status 1", "declare sev3 Bench command {n}", "help")
"""Read-only, state-changing and answered-in-the-ack commands, in turn."""


# --- the servers ----------------------------------------------------------------------------


async def serve_ours() -> dict[str, Any]:
    """The real bot: `build`, `prepare`, `web_app` on aiohttp, against the in-process fake."""
    fake = new_fake()
    await fake.start()
    control = Control()
    try:
        async with sqlite_url("ack") as url, running_bot(fake, url) as bot:

            async def mint(body: dict[str, Any]) -> dict[str, Any]:
                return {"urls": [fake.new_response_url() for _ in range(int(body["n"]))]}

            async def settle(_body: dict[str, Any]) -> dict[str, Any]:
                return {"idle": await bot.settle(120)}

            async def view(body: dict[str, Any]) -> dict[str, Any]:
                found = [v for v in fake.views.values() if v.get("callback_id") == body["id"]]
                return {"view": found[-1] if found else None}

            async def stats(_body: dict[str, Any]) -> dict[str, Any]:
                return {"slack_calls": len(fake.calls)}

            control.route("POST", "/mint", mint)
            control.route("POST", "/settle", settle)
            control.route("POST", "/view", view)
            control.route("POST", "/stats", stats)
            runner, port = await serve(control.app)
            _announce(bot.url, port)
            try:
                await until_stopped()
            finally:
                await runner.cleanup()
            return {"slack_calls": len(fake.calls)}
    finally:
        await fake.stop()


@dataclass
class _BareHost:
    """Just enough of a `Warroom` for `web_app`, so the bare app is served by the very same
    aiohttp handler as the bot."""

    app: AsyncApp
    settings: Settings = field(default_factory=lambda: Settings(signing_secret=SIGNING_SECRET))


BARE_MODES = {"bare": "default", "bare-pbr": "process_before_response"}


def bare_app(process_before_response: bool = False) -> AsyncApp:
    """A Bolt app that verifies signatures, authorizes without calling Slack, and only acks."""

    async def authorize(**_: object) -> AuthorizeResult:
        return AuthorizeResult(
            enterprise_id=None,
            team_id=TEAM,
            bot_token=BOT_TOKEN,
            bot_user_id=BOT_USER,
            bot_id="BBOT",
        )

    app = AsyncApp(
        signing_secret=SIGNING_SECRET,
        authorize=authorize,
        process_before_response=process_before_response,
    )

    @app.command("/incident")
    async def command(ack: AsyncAck) -> None:
        await ack()

    @app.view(views.DECLARE)
    async def declare(ack: AsyncAck) -> None:
        await ack()

    @app.view(views.UPDATE)
    async def update(ack: AsyncAck) -> None:
        await ack()

    return app


async def serve_bare(process_before_response: bool) -> dict[str, Any]:
    control = Control()

    async def settle(_body: dict[str, Any]) -> dict[str, Any]:
        return {"idle": True}

    control.route("POST", "/settle", settle)
    host = _BareHost(bare_app(process_before_response))
    runner, port = await serve(web_app(cast(Runtime, host)))
    control_runner, control_port = await serve(control.app)
    _announce(f"http://127.0.0.1:{port}/slack/events", control_port)
    try:
        await until_stopped()
    finally:
        await control_runner.cleanup()
        await runner.cleanup()
    return {}


def _announce(events_url: str, control_port: int) -> None:
    print(json.dumps({"events": events_url, "control": f"http://127.0.0.1:{control_port}"}))
    sys.stdout.flush()


def server_main(kind: str) -> None:
    tally = quiet_logs()
    if kind not in ("ours", *BARE_MODES):
        raise SystemExit(f"unknown server {kind!r}")
    extra = asyncio.run(serve_ours() if kind == "ours" else serve_bare(kind == "bare-pbr"))
    print(RESULT_PREFIX + json.dumps({"warnings": dict(tally.counts), **extra}), flush=True)


# --- the client -------------------------------------------------------------------------------


@dataclass
class Server:
    """A server process, its events URL and its control URL."""

    name: str
    process: asyncio.subprocess.Process
    events: str
    control: str
    finished: dict[str, Any] = field(default_factory=dict)

    async def ask(self, session: aiohttp.ClientSession, path: str, **body: Any) -> Any:
        # Waiting for the bot to settle can take far longer than any measured request.
        wait = aiohttp.ClientTimeout(total=300)
        async with session.post(self.control + path, json=body, timeout=wait) as response:
            return await response.json()

    async def stop(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        output = await asyncio.wait_for(self.process.stdout.read(), 180)
        await self.process.wait()
        for line in output.decode().splitlines():
            if line.startswith(RESULT_PREFIX):
                self.finished = json.loads(line.removeprefix(RESULT_PREFIX))


async def start_server(kind: str) -> Server:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.ack_latency",
        "serve",
        kind,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), 60)
    if not line:
        raise RuntimeError(f"the {kind} server did not start")
    where = json.loads(line)
    return Server(kind, process, where["events"], where["control"])


@dataclass
class Sample:
    server: str
    kind: str
    mode: str
    seconds: float
    status: int


class Workload:
    """Builds request bodies: commands in turn, and the update and declare forms in turn."""

    def __init__(self, ours: Server, update_view: dict[str, Any], declare_view: dict[str, Any]):
        self.ours = ours
        self.update_view = update_view
        self.declare_view = declare_view
        self.urls: list[str] = []
        self.count = 0

    async def refill(self, session: aiohttp.ClientSession, needed: int) -> None:
        """Response URLs are single-purpose on the fake: mint them ahead, outside the timing."""
        if len(self.urls) < needed:
            minted = await self.ours.ask(session, "/mint", n=needed - len(self.urls) + 200)
            self.urls.extend(minted["urls"])

    def body(self, kind: str) -> str:
        self.count += 1
        n = self.count
        if kind == "command":
            text = COMMANDS[n % len(COMMANDS)].format(n=n)
            return command_body(text, self.urls.pop())
        if n % 2:
            view = self._reopened(self.update_view)
            answers = {"status": "identified", "investigation": f"Bench update {n}: recovering"}
        else:
            view = self._reopened(self.declare_view)
            answers = {"title": f"Bench form {n}", "severity": "3"}
        return submission_body(view, answers)

    def _reopened(self, view: dict[str, Any]) -> dict[str, Any]:
        """The form as if opened by its own command: each opening carries its own reply URL,
        and Slack lets a response URL be used only a few times."""
        meta = json.loads(view.get("private_metadata") or "{}")
        meta["reply_url"] = self.urls.pop()
        return {**view, "private_metadata": json.dumps(meta, separators=(",", ":"))}


async def _one(
    session: aiohttp.ClientSession, server: Server, body: str, kind: str, mode: str
) -> Sample:
    client = SignedClient(session, server.events)
    status, seconds, _ = await client.post(body)
    return Sample(server.name, kind, mode, seconds, status)


async def sequential(
    session: aiohttp.ClientSession, server: Server, work: Workload, kind: str, n: int
) -> list[Sample]:
    await work.refill(session, n)
    bodies = [work.body(kind) for _ in range(n)]
    return [await _one(session, server, body, kind, "sequential") for body in bodies]


async def concurrent(
    session: aiohttp.ClientSession,
    server: Server,
    work: Workload,
    kind: str,
    clients: int,
    each: int,
) -> list[Sample]:
    await work.refill(session, clients * each)
    queues = [[work.body(kind) for _ in range(each)] for _ in range(clients)]
    start = asyncio.Event()

    async def client(bodies: list[str]) -> list[Sample]:
        await start.wait()
        return [await _one(session, server, b, kind, "concurrent") for b in bodies]

    tasks = [asyncio.ensure_future(client(q)) for q in queues]
    await asyncio.sleep(0)
    start.set()
    return [s for batch in await asyncio.gather(*tasks) for s in batch]


async def alternate(
    session: aiohttp.ClientSession,
    servers: tuple[Server, ...],
    rounds: int,
    run: Callable[[Server], Awaitable[list[Sample]]],
) -> list[Sample]:
    """Run `rounds` rounds on each server, switching which goes first every round; the bot
    finishes its post-ack work after each of its rounds so the next round starts on a quiet
    machine whichever app it measures."""
    samples: list[Sample] = []
    for r in range(rounds):
        order = servers if r % 2 == 0 else servers[::-1]
        for server in order:
            samples.extend(await run(server))
            await server.ask(session, "/settle")
    return samples


async def on_idle_bot(
    session: aiohttp.ClientSession,
    servers: tuple[Server, ...],
    work: Workload,
    kind: str,
    n: int,
) -> list[Sample]:
    """One request at a time, each after the bot finished the previous one's work.

    Not a target row: it separates the cost of the bot's acknowledgment path itself from the
    cost of sharing the event loop with post-ack work, which the other rows include.
    """
    await work.refill(session, len(servers) * n)
    samples: list[Sample] = []
    for i in range(n):
        for server in servers if i % 2 == 0 else servers[::-1]:
            samples.append(await _one(session, server, work.body(kind), kind, "idle"))
            await server.ask(session, "/settle")
    return samples


async def prepare_forms(
    session: aiohttp.ClientSession, ours: Server
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Declare incident #1 and have the bot open the update and declare forms, as a person
    would, so the submissions carry the bot's own views."""
    client = SignedClient(session, ours.events)
    urls = (await ours.ask(session, "/mint", n=3))["urls"]
    for text, url in zip(
        ("declare sev3 Bench seed incident", "update #1", "declare"), urls, strict=True
    ):
        status, _, _ = await client.post(command_body(text, url))
        if status != 200:
            raise RuntimeError(f"/incident {text} answered {status}")
        await ours.ask(session, "/settle")
    update_view = (await ours.ask(session, "/view", id=views.UPDATE))["view"]
    declare_view = (await ours.ask(session, "/view", id=views.DECLARE))["view"]
    if not update_view or not declare_view:
        raise RuntimeError("the bot did not open the update and declare forms")
    return update_view, declare_view


def summarize(samples: list[Sample], kind: str, mode: str, label: str) -> Row:
    def times(server: str) -> list[float]:
        return [
            s.seconds for s in samples if s.server == server and s.kind == kind and s.mode == mode
        ]

    ours = times("ours")
    bare = {name: times(name) for name in BARE_MODES}
    failed = [s for s in samples if s.kind == kind and s.mode == mode and s.status != 200]
    o50, o99 = percentile(ours, 50), percentile(ours, 99)
    floor = min(BARE_MODES, key=lambda name: percentile(bare[name], 99))
    ratio = o99 / percentile(bare[floor], 99)
    worst = max(ours)
    apps = ", ".join(
        f"bare {BARE_MODES[name]} {ms(percentile(bare[name], 50))} / "
        f"{ms(percentile(bare[name], 99))}"
        for name in BARE_MODES
    )
    measured = (
        f"ours {ms(o50)} / {ms(o99)}, {apps} (p50 / p99); floor: bare {BARE_MODES[floor]}; "
        f"p99 ratio {ratio:.2f}; ours max {ms(worst)}"
    )
    if failed:
        measured += f"; {len(failed)} non-200 answers"
    if mode == "idle":
        return Row(
            f"Ack {label}, one at a time on an idle bot (n={len(ours)} each)",
            measured,
            "context only",
        )
    ok = ratio <= RATIO_TARGET and worst < SLACK_LIMIT and not failed
    why = ""
    if not ok:
        why = (
            f"p99 ratio {ratio:.2f}: before answering, the bot commits the request to its inbox "
            "(a bare app stores nothing), and the work of earlier requests shares the process's "
            "CPU and database"
            if ratio > RATIO_TARGET
            else f"slowest acknowledgment {ms(worst)} or {len(failed)} failed answers"
        )
    return Row(
        f"Ack {label}, {mode} (n={len(ours)} each)",
        measured,
        f"p99 ratio to the floor <= {RATIO_TARGET:.2f}; < 3 s",
        ok,
        why,
    )


async def measure() -> tuple[list[Row], dict[str, int]]:
    ours, bare, pbr = await asyncio.gather(
        start_server("ours"), start_server("bare"), start_server("bare-pbr")
    )
    servers = (bare, pbr, ours)
    samples: list[Sample] = []
    try:
        async with client_session(timeout=REQUEST_TIMEOUT) as session:
            update_view, declare_view = await prepare_forms(session, ours)
            work = Workload(ours, update_view, declare_view)
            for kind in ("command", "submission"):
                await alternate(
                    session, servers, 1, lambda s, k=kind: sequential(session, s, work, k, WARM_UP)
                )
            for kind in ("command", "submission"):
                samples += await alternate(
                    session,
                    servers,
                    SEQUENTIAL_ROUNDS,
                    lambda s, k=kind: sequential(session, s, work, k, SEQUENTIAL_PER_ROUND),
                )
                samples += await alternate(
                    session,
                    servers,
                    CONCURRENT_ROUNDS,
                    lambda s, k=kind: concurrent(
                        session, s, work, k, CONCURRENT_CLIENTS, CONCURRENT_PER_CLIENT
                    ),
                )
                samples += await on_idle_bot(session, servers, work, kind, IDLE_SAMPLES)
            calls = (await ours.ask(session, "/stats"))["slack_calls"]
    finally:
        for server in servers:
            with contextlib.suppress(Exception):
                await server.stop()
    rows = []
    labels = (("command", "/incident"), ("submission", "form submission"))
    for kind, label in labels:
        for mode in ("sequential", "concurrent"):
            rows.append(summarize(samples, kind, mode, label))
    idle = {kind: summarize(samples, kind, "idle", label) for kind, label in labels}
    for row in rows:
        if row.ok is False and "ratio" in row.why:
            kind = "command" if row.benchmark.startswith("Ack /incident") else "submission"
            row.why += f" (with no post-ack work running, {_ratio_of(idle[kind])})"
    rows.extend(idle.values())
    to_ours = sum(1 for s in samples if s.server == "ours")
    rows.append(
        Row(
            "Ack: the bot's work behind those acks",
            f"{to_ours:,} measured requests to the bot (a third of the commands and half of "
            f"the forms declare an incident) made {calls:,} Slack calls",
        )
    )
    return rows, warnings_of(servers)


def _ratio_of(row: Row) -> str:
    return next((part.strip() for part in row.measured.split(";") if "ratio" in part), row.measured)


def warnings_of(servers: tuple[Server, ...]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for server in servers:
        for key, count in (server.finished.get("warnings") or {}).items():
            name = f"[{server.name} server] {key}"
            merged[name] = merged.get(name, 0) + int(count)
    return merged


def main() -> None:
    if sys.argv[1:2] == ["serve"]:
        server_main(sys.argv[2])
        return
    tally = quiet_logs()
    rows, server_warnings = asyncio.run(measure())
    emit(Outcome(rows=rows, warnings={**dict(tally.counts), **server_warnings}))


if __name__ == "__main__":
    main()
