"""Nothing lost, nothing stuck: what happens to messages and escalation steps when Slack
refuses them for a reason that is not an outage (a revoked token, an archived room, a deleted
announcement, an invalid message), and how fast queued work goes out."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlmodel import col, select

from app.checks import run_checks
from app.config import Settings
from app.fake_slack import FakeSlack
from app.services.ports import ErrorKind, SlackError
from app.store.models import OutboxMessage
from tests.conftest import BOB, Bot
from tests.helpers import answers, channel


async def declared(bot: Bot, text: str = "declare sev3 Checkout is slow") -> str:
    """Declare through the command and return the war room's channel id."""
    await bot.slack.command(text)
    await bot.settle()
    return channel(bot.fake, "incident-1").id


async def health(bot: Bot) -> tuple[int, dict[str, Any]]:
    assert bot.slack.session
    async with bot.slack.session.get(bot.url.replace("/slack/events", "/healthz")) as response:
        return response.status, await response.json()


async def tick(bot: Bot, minutes: float = 1) -> None:
    bot.clock.advance(minutes=minutes)
    await bot.warroom.engine.tick()
    await bot.settle()


async def outbox_states(bot: Bot) -> list[str]:
    async with bot.warroom.db.session() as session:
        rows = await session.exec(select(OutboxMessage.state).order_by(col(OutboxMessage.id)))
        return list(rows.all())


def texts(fake: FakeSlack, channel_id: str) -> list[str]:
    return [m.text for m in fake.messages(channel_id) if m.user == "UBOT"]


def revoke_token(fake: FakeSlack) -> None:
    """Every call answers `token_revoked` until `reset_faults` (the token works again)."""
    fake.fail("*", "token_revoked", times=100_000)


def test_slack_errors_are_classified() -> None:
    kinds = {
        code: SlackError("chat.postMessage", code).kind
        for code in (
            "ratelimited",
            "http_503",
            "connection_error (ServerDisconnectedError)",
            "invalid_auth",
            "token_revoked",
            "is_archived",
            "channel_not_found",
            "not_in_channel",
            "thread_not_found",
            "message_not_found",
            "invalid_blocks",
            "msg_too_long",
        )
    }
    assert kinds == {
        "ratelimited": ErrorKind.TRANSIENT,
        "http_503": ErrorKind.TRANSIENT,
        "connection_error (ServerDisconnectedError)": ErrorKind.TRANSIENT,
        "invalid_auth": ErrorKind.CREDENTIAL,
        "token_revoked": ErrorKind.CREDENTIAL,
        "is_archived": ErrorKind.ROOM,
        "channel_not_found": ErrorKind.ROOM,
        "not_in_channel": ErrorKind.ROOM,
        "thread_not_found": ErrorKind.GONE_THREAD,
        "message_not_found": ErrorKind.GONE_THREAD,
        "invalid_blocks": ErrorKind.INVALID_MESSAGE,
        "msg_too_long": ErrorKind.INVALID_MESSAGE,
    }


# --- a refused token --------------------------------------------------------------------


async def test_a_revoked_token_holds_messages_until_it_works_again(
    bot: Bot,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    room = await declared(bot)
    announcements = channel(bot.fake, "incidents").id
    [headline] = [m for m in bot.fake.messages(announcements) if f"<#{room}>" in m.text]
    revoke_token(bot.fake)
    with caplog.at_level(logging.WARNING):
        await bot.slack.command("ack", channel=room, user=BOB)
        await bot.slack.command("update Rolling back the deploy", channel=room)
        await bot.settle()
        assert any("Saved" in a and "token_revoked" in a for a in answers(bot.fake))
        status, body = await health(bot)
        assert status == 503 and body["slack"] == "token_revoked"
        before = len(bot.fake.calls)
        for _ in range(5):
            await tick(bot)
        # Held, not hammered: only auth.test, on a backoff, while the token is refused.
        probes = {c.method for c in bot.fake.calls[before:]}
        assert probes == {"auth.test"}
        assert set(await outbox_states(bot)) == {"sent", "pending"}
        assert await run_checks(settings) == 1
        assert "holds 4 queued message(s)" in capsys.readouterr().out

        bot.fake.reset_faults()  # the token works again
        await tick(bot, minutes=10)
    refusals = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "token_revoked" in r.message
    ]
    assert len(refusals) == 1, [r.message for r in refusals]
    assert set(await outbox_states(bot)) == {"sent"}
    said = texts(bot.fake, room)
    assert sum("acknowledged Incident" in t for t in said) == 1
    assert sum("Rolling back the deploy" in t for t in said) == 1
    thread = [m.text for m in bot.fake.replies(announcements, headline.ts)]
    assert sum("acknowledged Incident" in t for t in thread) == 1
    assert sum("Rolling back the deploy" in t for t in thread) == 1
    assert (await health(bot))[0] == 200
