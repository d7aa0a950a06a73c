"""Pacing against the fake Slack enforcing Slack's limits (windows shortened): bursts queue in
the bot instead of collecting 429s, and nothing is lost or sent twice."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import replace

from sqlmodel import select

from app.fake_slack import FakeSlack
from app.integrations.slack_web import SlackGateway, make_client
from app.messages.blocks import Message
from app.services.clock import ManualClock
from app.slack.listeners.gate import NOT_STORED
from app.store.models import Incident
from tests.support.bot import start_bot
from tests.support.constants import BOT_TOKEN
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import bot_messages, channel

# Every window a twentieth of Slack's: conversations.create allows 20 calls in any 3 s,
# chat.postMessage 5 in any 0.25 s per channel.
SCALE = 0.05
ROOM = re.compile(r"^incident-(\d+)(?:-\d+)?$")
TITLE = re.compile(r"Paced storm (\d+)\b")


def refused(fake: FakeSlack) -> list[str]:
    """The calls the fake answered 429."""
    return [c.method for c in fake.calls if c.status == 429]


async def test_a_burst_over_two_limits_goes_through_paced_with_no_429(fake: FakeSlack) -> None:
    fake.enforce_rate_limits(scale=SCALE)
    gateway = SlackGateway(make_client(BOT_TOKEN, fake.api_url), pacing=SCALE)
    general = channel(fake, "general").id
    posts = 12  # 5 allowed in any window: three windows' worth
    creates = 25  # 20 allowed in any window: two windows' worth

    async def post(n: int) -> str:
        return await gateway.post(general, Message(text=f"burst message {n}"))

    async def create(n: int) -> str:
        room = await gateway.create_channel(lambda attempt: f"paced-{n}-{attempt}", False)
        return str(room["id"])

    done = await asyncio.wait_for(
        asyncio.gather(*(post(n) for n in range(posts)), *(create(n) for n in range(creates))),
        timeout=120,
    )

    assert refused(fake) == []
    sent = Counter(m.text for m in bot_messages(fake, general))
    assert sent == Counter(f"burst message {n}" for n in range(posts))
    names = Counter(c.name for c in fake.workspace.channels.values() if c.name.startswith("paced-"))
    assert names == Counter(f"paced-{n}-1" for n in range(creates))
    assert len(set(done)) == posts + creates
    # The limits did bind: more calls than one window allows went out.
    assert len(fake.calls_to("conversations.create")) == creates


async def test_a_declare_storm_through_the_bot_collects_no_429(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    storm, wave = 24, 4  # more conversations.create calls than one window allows (20)
    scale = 0.1  # a 6 s window: the storm's requests all arrive within it
    settings = replace(
        settings_for(fake, database_url, slack_pacing=scale),
        policy=policy_with(limits={"declares_per_person": storm}),
    )
    fake.enforce_rate_limits(scale=scale)
    async for bot in start_bot(settings, fake, clock):
        # A few at a time; their work (the Slack calls) piles up all the same. A declare the
        # database could not store in time on a loaded machine is sent again, as its answer
        # asks: it was not carried out.
        pending = list(range(storm))
        for _ in range(5):
            again = []
            for first in range(0, len(pending), wave):
                sent = pending[first : first + wave]
                acks = await asyncio.gather(
                    *(bot.slack.command(f"declare sev2 Paced storm {n}") for n in sent)
                )
                assert [status for status, _ in acks] == [200] * len(sent)
                answered = zip(sent, acks, strict=True)
                again += [n for n, (_, ack) in answered if ack.get("text") == NOT_STORED]
            pending = again
        assert pending == []
        await bot.settle(timeout=180)
        async with bot.warroom.db.session() as session:
            rooms_ready = (
                await session.exec(select(Incident.id).where(Incident.war_room_ready))
            ).all()

    assert refused(fake) == []
    assert len(rooms_ready) == storm
    rooms = Counter(
        int(found.group(1))
        for c in fake.workspace.channels.values()
        if (found := ROOM.match(c.name or ""))
    )
    assert rooms == Counter(range(1, storm + 1))  # one room per incident, none twice
    announced = Counter(
        int(found.group(1))
        for m in bot_messages(fake, channel(fake, "incidents").id)
        if (found := TITLE.search(m.text or ""))
    )
    assert announced == Counter(range(storm))  # one announcement per declare
    assert len(fake.calls_to("conversations.create")) == storm


async def test_a_retry_slack_sdk_makes_takes_a_token_of_its_own(fake: FakeSlack) -> None:
    """slack_sdk sends a call again after a 500: that attempt is a call Slack may count, so it
    waits for a token like any other instead of riding on the first attempt's."""
    fake.enforce_rate_limits(scale=SCALE)  # conversations.create: 20 in any 3 s
    fake.fail_http("conversations.create", status=500, times=1)
    gateway = SlackGateway(make_client(BOT_TOKEN, fake.api_url), pacing=SCALE)
    limit = 20

    async def create(n: int) -> None:
        await gateway.create_channel(lambda attempt: f"retried-{n}-{attempt}", False)

    await asyncio.wait_for(asyncio.gather(*(create(n) for n in range(limit))), timeout=120)

    attempts = fake.calls_to("conversations.create")
    assert len(attempts) == limit + 1 and sum(c.status == 500 for c in attempts) == 1
    assert refused(fake) == []
    # The 21st attempt (the retry) waited for a token: one window after the first answer, so
    # no window holds more than 20 attempts, the refused one included.
    window = 60.0 * SCALE
    arrived = sorted(c.at for c in attempts)
    assert arrived[limit] - arrived[0] >= window
    names = Counter(c.name for c in fake.workspace.channels.values())
    assert all(names[f"retried-{n}-1"] == 1 for n in range(limit))
