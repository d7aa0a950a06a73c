"""Kill the real bot process (SIGKILL) before each Slack call of a declare and of a resolve,
start it again, and check every incident ends complete, with nothing done twice."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import IO

import aiohttp

from app.fake_slack import Call, FakeSlack
from tests.support.constants import ALICE, BOB, BOT_TOKEN, SIGNING_SECRET
from tests.support.factories import fresh_database
from tests.support.processes import clean_env, free_port
from tests.support.slackclient import SlackSender, eventually

POLICY = """
[escalation]
tick_seconds = 1
lease_seconds = 2
repair_after_seconds = 1
"""


class BotProcess:
    """`warroom serve --http` in its own process, against the fake."""

    def __init__(self, fake: FakeSlack, database_url: str, folder: Path) -> None:
        self.fake = fake
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "warroom.toml").write_text(POLICY)
        self.env = clean_env(
            folder,
            SLACK_BOT_TOKEN=BOT_TOKEN,
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=fake.api_url,
            DATABASE_URL=database_url,
            LOG_LEVEL="WARNING",
        )
        self.folder = folder
        self.port = free_port()
        self.proc: asyncio.subprocess.Process | None = None
        # What the process wrote to stderr, every run appended (WARNING and up).
        self.log_path = folder / "bot-stderr.log"

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        with self.log_path.open("ab") as stderr:
            self.proc = await self._spawn(stderr)
        await self.healthy()

    async def _spawn(self, stderr: IO[bytes]) -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            env=self.env,
            cwd=self.folder,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=stderr,
        )

    async def healthy(self) -> None:
        assert self.proc
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.proc.returncode is None, f"the bot exited during start-up: {self.log()}"
                assert time.monotonic() < deadline, "the bot did not become healthy"
                await asyncio.sleep(0.05)

    def kill_at(self, k: int, method: str | None = None) -> None:
        """SIGKILL the process when its k-th Slack call from now (of `method`, if given)
        arrives, before it applies."""
        seen = 0
        pid = self.proc.pid if self.proc else 0

        def observe(call: Call) -> bool:
            nonlocal seen
            if method is not None and call.method != method:
                return False
            seen += 1
            if seen == k:
                os.kill(pid, signal.SIGKILL)
                return True
            return False

        self.fake.before_call = observe

    async def wait_dead(self, finished: Callable[[], bool], timeout: float = 15) -> bool:
        """True once the process is dead; False when the flow finished first (this run made
        fewer Slack calls than the clean run, so the k-th never came): then it stays up."""
        assert self.proc
        deadline = time.monotonic() + timeout
        while self.proc.returncode is None:
            if finished():
                self.fake.before_call = None
                await asyncio.sleep(0.2)  # a kill already decided lands now, or never
                if self.proc.returncode is None:
                    return False
                break
            assert time.monotonic() < deadline, "neither killed nor finished"
            await asyncio.sleep(0.05)
        await asyncio.wait_for(self.proc.wait(), 15)
        self.fake.before_call = None
        return True

    async def stop(self) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 15)


def keys(fake: FakeSlack, dms: bool = True) -> Counter[str]:
    counted: Counter[str] = Counter()
    for message in fake.workspace.index.values():
        if not dms and message.channel.startswith("D"):
            continue
        payload = (message.metadata or {}).get("event_payload") or {}
        if "key" in payload:
            counted[str(payload["key"])] += 1
    return counted


def declared_completely(fake: FakeSlack) -> bool:
    rooms = [c for c in fake.workspace.channels.values() if c.name.startswith("incident-1")]
    assert len(rooms) <= 1, [c.name for c in rooms]
    if not rooms:
        return False
    room = rooms[0]
    seen = keys(fake)
    assert all(n == 1 for n in seen.values()), seen
    pinned = fake.pins(room.id)
    return bool(
        ALICE in room.members
        and seen.get("notification:1") == 1
        and seen.get("announcement:1") == 1
        and len(pinned) == 1
        and room.topic.startswith("Sev2 High · Investigating")
    )


async def declare(fake: FakeSlack, bot: BotProcess) -> None:
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as sender:
        await sender.command("declare sev2 Checkout API returning 500s")


async def new_world() -> FakeSlack:
    fake = FakeSlack(bot_token=BOT_TOKEN, bot_user_id="UBOT")
    fake.add_user(ALICE, name="alice")
    fake.add_channel("incidents", members=[ALICE])
    await fake.start()
    return fake


def briefed(fake: FakeSlack) -> bool:
    """The commander's brief reached them (a DM may come twice: see the known limits in
    docs/reliability.md)."""
    dms = [m for m in fake.workspace.index.values() if m.channel.startswith("D")]
    return any("Incident Commander for Incident #1" in m.text for m in dms)


def resolved_completely(fake: FakeSlack) -> bool:
    # Exactly once everywhere but in DMs: a DM whose answer was lost to the kill is sent again
    # (finding it would need im:history; see the known limits in docs/reliability.md). The
    # declare's DMs go out alongside its channel posts, so a kill early in the resolve can still
    # catch one.
    seen = keys(fake, dms=False)
    assert all(n == 1 for n in seen.values()), seen
    room = next(c for c in fake.workspace.channels.values() if c.name == "incident-1")
    resolutions = [
        m for m in fake.workspace.index.values() if "Issue Resolved" in m.text and m.user == "UBOT"
    ]
    announcement = next(
        m
        for m in fake.messages(fake.channel_by_name("incidents").id)  # type: ignore[union-attr]
        if m.thread_ts is None and m.user == "UBOT"
    )
    return bool(
        len(resolutions) == 2  # in the channel, and in the announcement's thread (broadcast)
        and {m.channel for m in resolutions} == {room.id, announcement.channel}
        and room.topic.startswith("Sev2 High · Resolved")
        and "*Resolved*" in announcement.text
    )


async def resolve_form(fake: FakeSlack, bot: BotProcess) -> dict:  # type: ignore[type-arg]
    room = fake.channel_by_name("incident-1")
    assert room
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as sender:
        await sender.command("resolve", channel=room.id)
    await eventually(
        lambda: [v for v in fake.views.values() if v["callback_id"] == "resolve_incident"]
    )
    return next(v for v in fake.views.values() if v["callback_id"] == "resolve_incident")


async def submit(fake: FakeSlack, bot: BotProcess, view: dict) -> None:  # type: ignore[type-arg]
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as sender:
        await sender.submit(view, {"root_cause": "A bad deploy", "impact_summary": "Checkout"})


async def scenario(folder: Path, kill_at: int | None, resolve: bool) -> int:
    """Declare (and resolve); kill the bot before Slack call `kill_at` of the flow under test,
    restart it, and wait for the incident to be complete. Returns the flow's call count."""
    fake = await new_world()
    try:
        async with fresh_database(folder) as url:
            bot = BotProcess(fake, url, folder)
            try:
                await bot.start()
                view = None
                if resolve:
                    await declare(fake, bot)
                    await eventually(partial(declared_completely, fake), timeout=45)
                    view = await resolve_form(fake, bot)
                before = len(fake.calls)
                if kill_at is not None:
                    bot.kill_at(kill_at)

                async def send() -> bool:
                    """True when the bot acknowledged the request before it died."""
                    try:
                        if view is not None:
                            await submit(fake, bot, view)
                        else:
                            await declare(fake, bot)
                    except aiohttp.ClientError:
                        return False
                    return True

                complete = resolved_completely if resolve else declared_completely

                def done() -> bool:
                    return complete(fake) and briefed(fake)

                acknowledged = await send()
                if kill_at is not None and await bot.wait_dead(done):
                    await bot.start()
                    if not acknowledged:
                        # Killed before it answered: Slack shows an error and the person
                        # submits again, as they would.
                        assert await send()

                try:
                    await eventually(done, timeout=45)
                except AssertionError as exc:
                    calls = [(c.method, c.error) for c in fake.calls[before:]]
                    raise AssertionError(
                        f"kill before call {kill_at}: {exc}; calls {calls}"
                    ) from None
                await asyncio.sleep(1.5)  # a few more ticks: nothing may be repeated
                assert done(), f"incomplete or repeated after a kill before call {kill_at}"
                return len(fake.calls) - before
            finally:
                await bot.stop()
    finally:
        await fake.stop()


async def test_declare_survives_a_kill_before_each_slack_call(tmp_path: Path) -> None:
    total = await scenario(tmp_path / "clean", None, resolve=False)
    assert total >= 6
    for k in range(1, total + 1):
        await scenario(tmp_path / f"kill-{k}", k, resolve=False)


async def test_resolve_survives_a_kill_before_each_slack_call(tmp_path: Path) -> None:
    total = await scenario(tmp_path / "clean", None, resolve=True)
    assert total >= 4
    for k in range(1, total + 1):
        await scenario(tmp_path / f"kill-{k}", k, resolve=True)


async def test_a_burst_of_updates_survives_a_kill(tmp_path: Path) -> None:
    """50 updates at once, the bot SIGKILLed in the middle of them and restarted: every update
    Slack was told "received" is posted in the channel exactly once; none is posted twice."""
    fake = await new_world()
    try:
        async with fresh_database(tmp_path) as url:
            bot = BotProcess(fake, url, tmp_path)
            try:
                await bot.start()
                await declare(fake, bot)
                await eventually(partial(declared_completely, fake), timeout=45)
                room = fake.channel_by_name("incident-1")
                assert room
                bot.kill_at(12)

                async def update(n: int) -> str:
                    """ "received" when Slack was told so: a 200 with nothing to say; "refused"
                    when the answer says the request could not be recorded and nothing was
                    done; "unanswered" when the bot died first (Slack shows an error)."""
                    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as s:
                        try:
                            status, said = await s.command(f"update #1 burst item {n:02d}")
                        except aiohttp.ClientError:
                            return "unanswered"
                    if status == 200 and not said:
                        return "received"
                    return "refused" if status == 200 else "unanswered"

                answered = await asyncio.gather(*(update(n) for n in range(50)))
                assert await bot.wait_dead(lambda: False, timeout=30)
                await bot.start()
                restarted = time.monotonic()
                received = [n for n, said in enumerate(answered) if said == "received"]
                refused = [n for n, said in enumerate(answered) if said == "refused"]
                assert received, "the bot died before acknowledging anything"

                def posted() -> Counter[int]:
                    return Counter(
                        int(m.text.split("burst item ")[1][:2])
                        for m in fake.messages(room.id)
                        if m.user == "UBOT" and "burst item " in m.text
                    )

                def all_received_posted() -> bool:
                    return all(posted()[n] >= 1 for n in received)

                await eventually(all_received_posted, timeout=90)
                # "Carried out soon after the restart", not a benchmark: well under the 120 s a
                # lease takes to lapse (so the restarted bot took its own work back at once),
                # with room for Slack's one-message-a-second pace per channel and a loaded machine.
                caught_up = time.monotonic() - restarted
                assert caught_up < 60, f"the received updates took {caught_up:.1f}s after restart"
                await asyncio.sleep(2)  # a few more ticks: nothing may be repeated
                counts = posted()
                assert all(counts[n] == 1 for n in received), counts
                assert all(c == 1 for c in counts.values()), counts
                # Told nothing was done: never done.
                assert not any(counts[n] for n in refused), (refused, counts)
            finally:
                await bot.stop()
    finally:
        await fake.stop()


async def test_a_resolve_form_acknowledged_before_a_kill_is_carried_out_after_it(
    tmp_path: Path,
) -> None:
    """A resolve form is acknowledged (it is in the inbox before the acknowledgment) and the bot
    SIGKILLed at its first Slack call after it: the sight check of a private incident, so
    before anything of the resolve is stored. Restarted, the bot carries it out: the incident
    is resolved and the resolution posted exactly once."""
    fake = await new_world()
    fake.add_user(BOB, name="bob")
    try:
        async with fresh_database(tmp_path) as url:
            bot = BotProcess(fake, url, tmp_path)
            # Bob, a member of the room but no role holder, may resolve.
            policy = tmp_path / "warroom.toml"
            policy.write_text(policy.read_text() + '[permissions]\nrestricted = ["close"]\n')
            try:
                await bot.start()
                async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as s:
                    await s.command("declare")
                    form = await eventually(
                        lambda: [
                            v for v in fake.views.values() if v["callback_id"] == "declare_incident"
                        ],
                        timeout=15,
                    )
                    await s.submit(form[0], {"title": "Secret breach", "private": ["private"]})
                    room = await eventually(lambda: fake.channel_by_name("incident-1"), timeout=45)
                    assert room.is_private
                    # The room is recorded on the incident once the notification is pinned.
                    await eventually(lambda: fake.pins(room.id), timeout=45)
                    fake.join(room.id, BOB)
                    await s.command("resolve", channel=room.id, user=BOB)
                    view = await eventually(
                        lambda: [
                            v for v in fake.views.values() if v["callback_id"] == "resolve_incident"
                        ],
                        timeout=15,
                    )
                    await asyncio.sleep(1)  # the declare's and the form's own calls are over
                    # The sight check is the submission's first Slack call, made right after
                    # the acknowledgment; the engine's own calls (a tick) must not set the kill
                    # off. Bolt sends the acknowledgment up to 10 ms after `ack()` (it polls), so
                    # the kill may come first: then Slack shows the person an error and they
                    # submit again, as they would; the recorded request and the new one must
                    # still resolve the incident once.
                    bot.kill_at(1, method="conversations.members")
                    fields = {"root_cause": "A bad deploy", "impact_summary": "Checkout"}
                    try:
                        status, answer = await s.submit(view[0], fields, user=BOB)
                        acknowledged = True
                    except aiohttp.ClientError:
                        acknowledged = False
                if acknowledged:
                    assert status == 200 and not answer.get("errors"), answer
                assert await bot.wait_dead(lambda: False, timeout=15)
                assert not room.topic or "Resolved" not in room.topic

                def resolutions() -> list[object]:
                    return [
                        m
                        for m in fake.messages(room.id)
                        if "Issue Resolved" in m.text and m.user == "UBOT"
                    ]

                await bot.start()
                if not acknowledged:
                    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as s:
                        await s.submit(view[0], fields, user=BOB)
                await eventually(lambda: resolutions() and "Resolved" in room.topic, timeout=30)
                await asyncio.sleep(2)  # a few more ticks: nothing may be repeated
                assert len(resolutions()) == 1
                assert all(n == 1 for n in keys(fake).values()), keys(fake)
            finally:
                await bot.stop()
    finally:
        await fake.stop()
