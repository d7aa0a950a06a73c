"""The HTTP surface as an outside caller meets it: what is parsed, refused, logged and answered."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from app.server import ParsedBoltRequest, parse_slack_body
from tests.conftest import ALICE, SIGNING_SECRET, Bot
from tests.helpers import bot_messages, channel
from tests.slackclient import TEAM

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
