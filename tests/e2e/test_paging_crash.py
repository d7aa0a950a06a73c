"""Kill the real bot process after a pager took a page but before the bot heard the answer:
after the restart the page is sent again with the same dedup key (so the pager counts one
page), the call is recorded once, and nothing else is paged twice."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlmodel import select

from app.store.db import Database
from app.store.models import PagerCall
from tests.e2e.test_crash import BotProcess
from tests.support.constants import ALICE, SIGNING_SECRET
from tests.support.factories import fake_workspace, fresh_database
from tests.support.servers import serving
from tests.support.slackclient import SlackSender, eventually

SECRET = "crash-hook-secret-0123456789"


class KillingReceiver:
    """Takes every page; on the first one it kills the bot before answering."""

    def __init__(self) -> None:
        self.taken: list[dict[str, Any]] = []
        self.pid = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers["X-Warroom-Timestamp"]
        expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        assert request.headers["X-Warroom-Signature"] == f"v1={expected.hexdigest()}"
        self.taken.append(json.loads(body))
        if len(self.taken) == 1 and self.pid:
            os.kill(self.pid, signal.SIGKILL)
            await asyncio.sleep(0.5)  # the bot is gone before it hears anything
        return web.json_response({"ok": True})


async def test_a_kill_between_the_pagers_answer_and_the_bookkeeping_pages_once(
    tmp_path: Path,
) -> None:
    receiver = KillingReceiver()
    async with serving("/page", receiver.handle) as hook_url:
        await crash_once(tmp_path, receiver, hook_url)


async def crash_once(tmp_path: Path, receiver: KillingReceiver, hook_url: str) -> None:
    """Declare, page by hand (the receiver kills the bot), restart, and count."""
    fake = fake_workspace()
    await fake.start(host="127.0.0.1", port=0)
    try:
        async with fresh_database(tmp_path) as url:
            bot = BotProcess(fake, url, tmp_path / "bot")
            policy = (tmp_path / "bot" / "warroom.toml").read_text() + (
                "\n[paging.targets.hook]\n"
                'provider = "webhook"\n'
                f'url = "{hook_url}"\n'
                'secret_env = "HOOK_SECRET"\n'
            )
            (tmp_path / "bot" / "warroom.toml").write_text(policy)
            bot.env["HOOK_SECRET"] = SECRET
            await bot.start()
            assert bot.proc is not None
            receiver.pid = bot.proc.pid
            async with SlackSender(f"{bot.url}/slack/events", SIGNING_SECRET, fake) as slack:
                await slack.command("declare sev3 Queue backlog growing", user=ALICE)
                await eventually(lambda: fake.channel_by_name("incident-1") is not None)
                room = fake.channel_by_name("incident-1")
                assert room is not None
                await slack.command("page hook backlog over 1M", user=ALICE, channel=room.id)
                # The receiver kills the bot when the page arrives (not a timing check: a
                # loaded machine may take a while to get there).
                await asyncio.wait_for(bot.proc.wait(), 60)
                assert len(receiver.taken) == 1

                await bot.start()
                await eventually(lambda: len(receiver.taken) >= 2, timeout=20)
                await asyncio.sleep(2.5)  # a lease's length: nothing more comes
            await bot.stop()
            assert len(receiver.taken) == 2
            first, again = receiver.taken
            assert first["dedup_key"] == again["dedup_key"] == "warroom-incident-1-hook"
            assert first["event"] == again["event"] == "trigger"
            db = Database(url)
            try:
                async with db.session() as session:
                    rows = list((await session.exec(select(PagerCall))).all())
            finally:
                await db.dispose()
            assert [(r.action, r.state) for r in rows] == [("trigger", "sent")]
    finally:
        await fake.stop()
