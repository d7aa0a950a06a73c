"""Two replicas (`warroom serve --http`, real processes) started at the same instant on a new,
empty Postgres database: both migrate it (one waits for the other's migration lock), both
come up, and requests sent to either are carried out once, each message delivered once."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from pathlib import Path

from sqlalchemy.engine import make_url

from app.fake_slack import FakeSlack
from tests.e2e.test_crash import BotProcess, declare, declared_completely, keys, new_world
from tests.e2e.test_faults_e2e import in_thread, posted
from tests.support.constants import SIGNING_SECRET
from tests.support.postgres import new_database, postgres_server
from tests.support.slackclient import SlackSender, eventually

UPDATES = 6
# "Delivered within a few seconds" of the last acknowledgment; generous for a loaded machine.
DELIVERED_WITHIN = 15


async def update(fake: FakeSlack, bot: BotProcess, n: int) -> bool:
    """`/incident update #1 …` sent to `bot`; whether it was acknowledged as received."""
    async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as sender:
        status, said = await sender.command(f"update #1 replica round {n:02d}")
    return status == 200 and not said


async def test_two_replicas_started_together_on_an_empty_database(tmp_path: Path) -> None:
    server = await postgres_server()
    fake = await new_world()
    try:
        async with new_database(server, "warroom_e2e") as name:
            url = make_url(server).set(database=name).render_as_string(hide_password=False)
            bots = [BotProcess(fake, url, tmp_path / f"replica-{n}") for n in (1, 2)]
            try:
                # Both start (and migrate) at the same instant.
                await asyncio.gather(*(bot.start() for bot in bots))
                for bot in bots:
                    assert "Traceback" not in bot.log(), bot.log()

                await declare(fake, bots[0])
                await eventually(partial(declared_completely, fake), timeout=15)
                room = fake.channel_by_name("incident-1")
                assert room

                # Updates alternate between the replicas, all at once.
                acknowledged = await asyncio.gather(
                    *(update(fake, bots[n % 2], n) for n in range(UPDATES))
                )
                sent = time.monotonic()
                assert all(acknowledged), acknowledged
                words = [f"replica round {n:02d}" for n in range(UPDATES)]
                await eventually(
                    lambda: all(posted(fake, room.id, w) and in_thread(fake, w) for w in words),
                    timeout=DELIVERED_WITHIN + 5,
                )
                took = time.monotonic() - sent
                assert took < DELIVERED_WITHIN, f"delivered {took:.1f}s after the last ack"
                await asyncio.sleep(2)  # a few more ticks on both: nothing may be repeated
                for w in words:
                    assert posted(fake, room.id, w) == 1, (w, "in the room")
                    assert in_thread(fake, w) == 1, (w, "in the thread")
                assert all(n == 1 for n in keys(fake).values()), keys(fake)
                rooms = [c for c in fake.workspace.channels.values() if c.name.startswith("inc")]
                assert [c.name for c in rooms if c.name != "incidents"] == ["incident-1"]
                for bot in bots:
                    assert "Traceback" not in bot.log(), bot.log()
            finally:
                await asyncio.gather(*(bot.stop() for bot in bots))
    finally:
        await fake.stop()
