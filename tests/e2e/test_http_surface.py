"""The HTTP surface as an outside caller meets it: what is parsed, refused, logged and answered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import resource
import socket
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from app.config import ConfigError, HttpLimits, load_settings
from app.fake_slack import FakeSlack
from app.server import ParsedBoltRequest, parse_slack_body
from tests.support.bot import Bot
from tests.support.constants import ALICE, BOT_TOKEN, SIGNING_SECRET
from tests.support.helpers import bot_messages, channel
from tests.support.slackclient import TEAM, SlackSender, eventually

FORM = "application/x-www-form-urlencoded"


async def command_from(
    bot: Bot, text: str, channel_id: str = "CGENERAL", channel_name: str = "general"
) -> int:
    """A signed `/incident` slash command, typed in the channel given by ID and name."""
    fields = {
        "token": "legacy-unused",
        "team_id": TEAM,
        "team_domain": "acme",
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": ALICE,
        "user_name": "alice",
        "command": "/incident",
        "text": text,
        "api_app_id": "A1",
        "response_url": bot.fake.new_response_url(),
        "trigger_id": bot.fake.new_trigger_id(),
    }
    status, _ = await bot.slack.post_form(fields)
    return status


# -- Commands that mention "payload" -------------------------------------------------------------


async def test_a_declare_that_says_payload_is_handled(bot: Bot) -> None:
    assert await command_from(bot, "declare sev1 Payload service rejecting payload") == 200
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.title == "Payload service rejecting payload" and snap.severity == 1


async def test_an_update_that_says_payload_is_posted(bot: Bot) -> None:
    assert await command_from(bot, "declare sev3 Uploads failing") == 200
    await bot.settle()
    assert await command_from(bot, "update #1 payload size fixed") == 200
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.last_update_at is not None
    room = channel(bot.fake, "incident-1").id
    assert any("payload size fixed" in m.text for m in bot_messages(bot.fake, room))


async def test_commands_from_a_channel_named_payload_team_are_handled(bot: Bot) -> None:
    team = bot.fake.add_channel("payload-team", members=[ALICE])
    status = await command_from(bot, "declare sev2 Cache cold", team, "payload-team")
    assert status == 200
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).title == "Cache cold"


async def test_interactivity_payloads_still_work(bot: Bot) -> None:
    await bot.slack.command("declare")
    await bot.settle()
    view = next(v for v in bot.fake.views.values() if v.get("callback_id") == "declare_incident")
    status, _ = await bot.slack.submit(view, {"title": "From the form"})
    assert status == 200
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).title == "From the form"


def test_bolt_copies_of_a_request_keep_the_parsed_body() -> None:
    """Bolt copies a request for lazy listeners; the copy must not re-parse the raw body."""
    body = urlencode({"command": "/incident", "text": "update payload fixed", "team_id": TEAM})
    request = ParsedBoltRequest(
        raw_body=body,
        body=parse_slack_body(body, FORM),
        query="",
        headers={"content-type": FORM},
    )
    copy = request.to_copyable()
    assert request.mode == copy.mode == "http"
    assert request.raw_body == copy.raw_body == body
    assert request.body["text"] == copy.body["text"] == "update payload fixed"
    assert copy.context.team_id == TEAM


# -- Malformed bodies: 401 unless signed, 400 if signed, never a traceback -----------------------

MALFORMED: list[tuple[str, str]] = [
    ("payload=%7Bnot-json", FORM),
    ("payload=%5B1%2C2%5D", FORM),  # a payload that is JSON, but not an object
    ("[" * 100_000, "application/json"),
    ("[" * 100_000, FORM),
    ("[1, 2, 3]", "application/json"),
    ('"just a string"', "application/json"),
    ("{not json", "application/json"),
]


def signed_bytes(body: bytes) -> dict[str, str]:
    """Slack's signature headers over `body` as bytes, as Slack computes them."""
    ts = str(int(time.time()))
    base = b"v0:" + ts.encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + digest}


def no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    assert not [r for r in caplog.records if r.exc_info], caplog.text[:2000]
    assert "Traceback" not in caplog.text
    assert len(caplog.records) <= len(MALFORMED) * 2 + 1, caplog.text[:2000]


async def test_unsigned_malformed_bodies_get_401_without_a_traceback(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    for body, content_type in MALFORMED:
        status, text = await bot.slack.post_raw(body, {}, content_type)
        assert status == 401, (body[:40], text[:200])
        forged = {"X-Slack-Request-Timestamp": "now", "X-Slack-Signature": "v0=abc"}
        status, text = await bot.slack.post_raw(body, forged, content_type)
        assert status == 401, (body[:40], text[:200])
    no_traceback(caplog)
    assert await bot.warroom.incidents.open_incidents() == []


async def test_signed_malformed_bodies_get_400_without_a_traceback(
    bot: Bot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.clear()
    for body, content_type in MALFORMED:
        status, text = await bot.slack.post_raw(body, bot.slack.headers(body), content_type)
        assert status == 400, (body[:40], text[:200])
    # Bytes that are not UTF-8, signed as received.
    raw = b"command=%2Fincident&text=declare+sev3+\xff\xfe&user_id=UALICE"
    status, _ = await bot.slack.post_raw(raw, signed_bytes(raw), FORM)
    assert status == 400
    no_traceback(caplog)
    # And a well-formed request on the same server still works.
    status, _ = await bot.slack.command("declare sev3 Still answering")
    assert status == 200
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).title == "Still answering"


# -- /healthz ------------------------------------------------------------------------------------


async def get_health(bot: Bot, timeout: float = 6.0) -> tuple[int, Any, float]:
    assert bot.slack.session
    url = bot.url.replace("/slack/events", "/healthz")
    started = asyncio.get_running_loop().time()
    async with bot.slack.session.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        body = json.loads(await resp.text())
    return resp.status, body, asyncio.get_running_loop().time() - started


async def test_healthz_hides_database_errors_and_logs_them_once(
    bot: Bot, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "password authentication failed for user warroom at db.internal:5432"

    async def broken() -> None:
        raise OSError(secret)

    monkeypatch.setattr(bot.warroom.db, "ping", broken)
    caplog.set_level(logging.INFO)
    for _ in range(3):
        status, body, _ = await get_health(bot)
        assert (status, body) == (503, {"ok": False, "database": "unavailable"})
    logged = [r for r in caplog.records if secret in r.getMessage()]
    assert len(logged) == 1 and not logged[0].exc_info
    monkeypatch.undo()
    status, body, _ = await get_health(bot)
    assert (status, body) == (200, {"ok": True, "database": "ok"})


async def test_healthz_answers_when_the_database_hangs(
    bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def hangs() -> None:
        await asyncio.sleep(3600)

    monkeypatch.setattr(bot.warroom.db, "ping", hangs)
    status, body, took = await get_health(bot)
    assert (status, body) == (503, {"ok": False, "database": "unavailable"})
    assert took < 3.5


# -- Connection limits, on the real `warroom serve --http` process --------------------------------

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Served:
    port: int
    log: Path

    @property
    def events(self) -> str:
        return f"http://127.0.0.1:{self.port}/slack/events"

    def logged(self) -> str:
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _limit_open_files(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return apply


@asynccontextmanager
async def serving(
    tmp_path: Path, fake: FakeSlack, open_files: int | None = None, **env: str
) -> AsyncIterator[Served]:
    """`warroom serve --http` on a free loopback port, its log in a file; stopped afterwards."""
    port = _free_port()
    environ = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    environ |= {
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'serve.db'}",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
        "LOG_LEVEL": "INFO",
        **env,
    }
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "app.cli",
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=environ,
            cwd=tmp_path,
            stdout=sink,
            stderr=sink,
            preexec_fn=_limit_open_files(open_files) if open_files else None,
        )
    served = Served(port, log)
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
            deadline = time.monotonic() + 30
            while True:
                assert proc.returncode is None, served.logged()
                assert time.monotonic() < deadline, "bot did not become healthy"
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        if response.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                await asyncio.sleep(0.1)
        yield served
    finally:
        if proc.returncode is None:
            proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.kill()
            await proc.wait()


def plausible_headers(content_length: int, signed: bool = True) -> bytes:
    """Request headers that pass every check made before the body is read."""
    lines = [
        "POST /slack/events HTTP/1.1",
        "Host: 127.0.0.1",
        f"Content-Type: {FORM}",
        f"Content-Length: {content_length}",
    ]
    if signed:
        lines += [
            f"X-Slack-Request-Timestamp: {int(time.time())}",
            "X-Slack-Signature: v0=" + "0" * 64,
        ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def closed_within(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float, dribble: bytes = b""
) -> tuple[float, bytes]:
    """Keep sending `dribble` every 0.2 s until the server answers or closes; (time, answer)."""
    started = time.monotonic()
    answer = b""
    while time.monotonic() - started < seconds:
        try:
            if dribble:
                writer.write(dribble)
                await writer.drain()
            data = await asyncio.wait_for(reader.read(4096), 0.2)
        except TimeoutError:
            continue
        except ConnectionError:
            break
        if not data:
            break
        answer += data
    return time.monotonic() - started, answer


async def test_slow_and_idle_connections_are_closed(tmp_path: Path, fake: FakeSlack) -> None:
    limits = {"WARROOM_HTTP_IDLE_TIMEOUT": "1", "WARROOM_HTTP_BODY_TIMEOUT": "1"}
    async with serving(tmp_path, fake, **limits) as served:
        # Headers sent a few bytes at a time: closed once the idle timeout has passed.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        took, answer = await closed_within(reader, writer, 6, dribble=b"X-Slow: a\r\n")
        assert took < 3 and answer == b"", (took, answer)
        writer.close()
        # A connection that sends nothing at all.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        took, answer = await closed_within(reader, writer, 6)
        assert took < 3 and answer == b"", (took, answer)
        writer.close()
        # Headers whole, body never finished: 408 once the body timeout has passed.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(plausible_headers(100) + b"command=%2Fincident")
        took, answer = await closed_within(reader, writer, 8)
        assert answer.startswith(b"HTTP/1.1 408") and took < 5, (took, answer[:100])
        writer.close()
        # Legitimate requests are unaffected.
        async with SlackSender(served.events, SIGNING_SECRET, fake) as sender:
            status, _ = await sender.command("declare sev3 Still here")
            assert status == 200
    assert "Traceback" not in served.logged() and " ERROR " not in served.logged()


async def test_held_open_connections_do_not_lock_slack_out(tmp_path: Path, fake: FakeSlack) -> None:
    """Idle connections past the cap make way; past the cap with all busy, 503 and close."""
    limits = {
        "WARROOM_HTTP_MAX_CONNECTIONS": "40",
        "WARROOM_HTTP_IDLE_TIMEOUT": "60",
        "WARROOM_HTTP_BODY_TIMEOUT": "60",
    }
    held: list[asyncio.StreamWriter] = []
    # 250 idle connections against a process that may open 200 files.
    async with serving(tmp_path, fake, open_files=200, **limits) as served:
        try:
            for _ in range(250):
                try:
                    _, writer = await asyncio.wait_for(
                        asyncio.open_connection("127.0.0.1", served.port), 2
                    )
                except (TimeoutError, OSError):
                    continue
                held.append(writer)
            async with SlackSender(served.events, SIGNING_SECRET, fake) as sender:
                status, _ = await asyncio.wait_for(sender.command("declare sev2 Held open"), 10)
                assert status == 200

                def declared() -> bool:
                    return fake.channel_by_name("incident-1") is not None

                await eventually(declared, timeout=10)
            # Now 40 connections each with a request in progress (a body still to come).
            for writer in held:
                writer.close()
            held.clear()
            for _ in range(40):
                reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
                writer.write(plausible_headers(100))
                await writer.drain()
                held.append(writer)
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            took, answer = await closed_within(reader, writer, 5)
            assert answer.startswith(b"HTTP/1.1 503") and took < 2, (took, answer)
            writer.close()
        finally:
            for writer in held:
                writer.close()
    assert "Traceback" not in served.logged() and " ERROR " not in served.logged()


async def test_oversize_and_unsigned_bodies_are_refused_before_they_are_read(
    tmp_path: Path, fake: FakeSlack
) -> None:
    big = 50 * 1024 * 1024
    async with serving(tmp_path, fake, WARROOM_HTTP_MAX_BODY_BYTES="65536") as served:
        for signed, expected in [(True, b"HTTP/1.1 413"), (False, b"HTTP/1.1 401")]:
            reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
            writer.write(plausible_headers(big, signed=signed) + b"x" * 16384)
            answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
            assert answer.startswith(expected), (signed, answer[:100])
            writer.close()
        # No declared length (chunked): refused once more than the limit has arrived.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        head = plausible_headers(0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        chunk = b"x" * 100_000
        writer.write(head + f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:100]
        writer.close()
        # Malformed HTTP framing: refused, one log line, no traceback.
        reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nX-Long: " + b"a" * 20000 + b"\r\n\r\n")
        _, answer = await closed_within(reader, writer, 5)
        assert answer[:8] in {b"HTTP/1.0", b"HTTP/1.1"} and answer[9:10] == b"4", answer[:100]
        writer.close()
        async with SlackSender(served.events, SIGNING_SECRET, fake) as sender:
            status, _ = await sender.command("declare sev3 Small enough")
            assert status == 200
    assert "Traceback" not in served.logged() and " ERROR " not in served.logged()


# -- Settings ------------------------------------------------------------------------------------


def test_connection_limits_come_from_the_environment() -> None:
    assert load_settings(env={}, dotenv=False).http == HttpLimits()
    settings = load_settings(
        env={
            "WARROOM_HTTP_MAX_BODY_BYTES": "65536",
            "WARROOM_HTTP_MAX_CONNECTIONS": "40",
            "WARROOM_HTTP_IDLE_TIMEOUT": "2.5",
            "WARROOM_HTTP_BODY_TIMEOUT": "3",
            "WARROOM_HTTP_HEALTH_TIMEOUT": "0.5",
        },
        dotenv=False,
    )
    assert settings.http == HttpLimits(65536, 40, 2.5, 3.0, 0.5)
    for name, value, message in [
        (
            "WARROOM_HTTP_MAX_CONNECTIONS",
            "lots",
            "WARROOM_HTTP_MAX_CONNECTIONS: 'lots' is not a whole number.",
        ),
        ("WARROOM_HTTP_IDLE_TIMEOUT", "0", "WARROOM_HTTP_IDLE_TIMEOUT: '0' must be more than 0."),
        (
            "WARROOM_HTTP_BODY_TIMEOUT",
            "nan",
            "WARROOM_HTTP_BODY_TIMEOUT: 'nan' must be more than 0.",
        ),
        (
            "WARROOM_HTTP_HEALTH_TIMEOUT",
            "soon",
            "WARROOM_HTTP_HEALTH_TIMEOUT: 'soon' is not a number of seconds.",
        ),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_settings(env={name: value}, dotenv=False)
        assert str(caught.value) == message
