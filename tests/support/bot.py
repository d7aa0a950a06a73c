"""The real bot serving Slack's HTTP requests on a local port, in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from app.bootstrap import Runtime, build
from app.config import Settings
from app.fake_slack import FakeSlack
from app.server import prepare, web_app
from app.services.clock import ManualClock
from tests.support.slackclient import SlackSender


@dataclass
class Bot:
    """The running bot, the fake it talks to, and a client that speaks Slack to it."""

    warroom: Runtime
    fake: FakeSlack
    slack: SlackSender
    url: str
    clock: ManualClock

    async def settle(self, timeout: float = 10.0) -> None:
        """Wait until every acknowledged request has finished its work."""
        assert await self.warroom.inflight.wait_idle(timeout), "bot work did not finish"


async def start_bot(settings: Settings, fake: FakeSlack, clock: ManualClock) -> AsyncIterator[Bot]:
    warroom = build(settings, clock=clock)
    await prepare(warroom)
    runner = web.AppRunner(web_app(warroom), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        async with SlackSender(url, settings.signing_secret, fake) as sender:
            yield Bot(warroom=warroom, fake=fake, slack=sender, url=url, clock=clock)
            await warroom.inflight.wait_idle(10)
    finally:
        await runner.cleanup()
        await warroom.close()
