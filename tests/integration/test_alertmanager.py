"""A real Alertmanager (Debian's `prometheus-alertmanager`) sending to the real bot: alerts
fired and resolved through its API and `amtool`, grouped and re-sent as it does.

`.ci/run` installs Alertmanager; without it these tests are skipped, except in CI, where they
fail.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlmodel import col, func, select

from app.config import Settings
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.store.models import AlertGroup, AlertRow, Incident
from tests.support.alerts import PROM_TOKEN, add_triage_channel, base_of, with_alerts
from tests.support.bot import Bot, start_bot
from tests.support.helpers import bot_messages, channel
from tests.support.processes import ALERTMANAGER, alertmanager, amtool, free_port
from tests.support.slackclient import eventually

# Alertmanager flushes a group every second here; on a loaded machine give it ample time.
WAIT = 60.0


@pytest.fixture(autouse=True)
def _needs_alertmanager() -> None:
    if not Path(ALERTMANAGER).exists():
        reason = f"{ALERTMANAGER} is not installed (apt-get install prometheus-alertmanager)"
        if os.environ.get("CI"):
            pytest.fail(f"In CI the Alertmanager tests must run, but {reason}")
        pytest.skip(reason)


@pytest.fixture
async def alerting(
    settings: Settings, fake: FakeSlack, clock: ManualClock
) -> AsyncIterator[Callable[[list[dict[str, Any]] | None], Any]]:
    """Start the bot with the given alert routes (None: the test defaults)."""
    add_triage_channel(fake)
    running: list[AsyncIterator[Bot]] = []

    async def start(routes: list[dict[str, Any]] | None = None) -> Bot:
        bots = start_bot(with_alerts(settings, routes), fake, clock)
        running.append(bots)
        return await bots.__anext__()

    yield start
    for bots in running:
        with pytest.raises(StopAsyncIteration):
            await bots.__anext__()


def when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def fire(
    am: str, start: datetime, *label_sets: dict[str, str], end: datetime | None = None
) -> None:
    """POST /api/v2/alerts: alerts firing from `start` (or resolved at `end`)."""
    alerts = []
    for labels in label_sets:
        alert: dict[str, Any] = {
            "labels": labels,
            "annotations": {"summary": f"{labels['alertname']} on {labels['instance']}"},
            "startsAt": when(start),
            "generatorURL": "http://prometheus.example.com/graph",
        }
        if end is not None:
            alert["endsAt"] = when(end)
        alerts.append(alert)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{am}/api/v2/alerts", json=alerts) as response,
    ):
        assert response.status == 200, await response.text()


async def count(bot: Bot, model: Any, *where: Any) -> int:
    async with bot.warroom.db.session() as session:
        query = select(func.count()).select_from(model).where(*where)
        return int((await session.exec(query)).one())


def cards(bot: Bot) -> list[Any]:
    return bot_messages(bot.fake, channel(bot.fake, "alerts").id)


async def test_one_card_per_group_through_the_partial_resolve_sequence(
    alerting: Callable[..., Any], tmp_path: Path
) -> None:
    bot: Bot = await alerting()
    webhook = f"{base_of(bot.url)}/alerts/prom"
    async with alertmanager(tmp_path / "am", webhook, PROM_TOKEN) as am:
        start = datetime.now(UTC) - timedelta(seconds=30)
        db1 = {"alertname": "DiskFull", "instance": "db1", "severity": "warning"}
        db2 = {"alertname": "DiskFull", "instance": "db2", "severity": "warning"}
        await fire(am, start, db1, db2)
        await eventually(lambda: cards(bot) and "*2* firing" in cards(bot)[0].text, WAIT)

        # One alert clears: a `firing` webhook with it marked resolved inside.
        await amtool(
            am,
            "alert",
            "add",
            *(f"{k}={v}" for k, v in db2.items()),
            f"--start={when(start)}",
            f"--end={when(start + timedelta(seconds=1))}",
        )
        await eventually(lambda: "*1* firing, 1 cleared" in cards(bot)[0].text, WAIT)
        # The last one clears: a `resolved` webhook listing only it.
        await fire(am, start, db1, end=start + timedelta(seconds=2))
        await eventually(lambda: "all clear" in cards(bot)[0].text, WAIT)

    await bot.settle()
    [card] = cards(bot)
    assert len(card.edits) >= 2  # edited in place, never a new message per webhook
    assert await count(bot, AlertRow) == 2
    assert await count(bot, AlertRow, col(AlertRow.resolved_at).is_(None)) == 0
    assert await count(bot, AlertGroup) == 1


async def test_auto_declare_exactly_once_per_group(
    alerting: Callable[..., Any], tmp_path: Path
) -> None:
    bot: Bot = await alerting()
    webhook = f"{base_of(bot.url)}/alerts/prom"
    async with alertmanager(tmp_path / "am", webhook, PROM_TOKEN) as am:
        start = datetime.now(UTC) - timedelta(minutes=3)
        for instance in ("api1", "api2", "api3"):
            labels = {"alertname": "ApiDown", "instance": instance, "severity": "critical"}
            await amtool(
                am,
                "alert",
                "add",
                *(f"{k}={v}" for k, v in labels.items()),
                "--annotation=summary=API down",
                f"--start={when(start)}",
            )
        # Every alert stored means every webhook so far was handled.
        await eventually(lambda: channel(bot.fake, "incident-1"), WAIT)

        async def all_three() -> None:
            assert await count(bot, AlertRow) == 3

        await _eventually_async(all_three, WAIT)
        await bot.settle()

    assert await count(bot, Incident) == 1
    async with bot.warroom.db.session() as session:
        incident = (await session.exec(select(Incident))).one()
    assert incident.declared_by == "Alertmanager (prom)"
    assert incident.title == "API down"
    assert incident.detected_at <= bot.clock.now()
    assert not cards(bot)


async def test_a_retry_after_a_503_adds_nothing(
    alerting: Callable[..., Any], tmp_path: Path
) -> None:
    """The first webhook reaches the bot, which stores it; the answer Alertmanager gets is a
    503 (a proxy stands in for a bot that failed after committing). Alertmanager sends it
    again: the bot answers that nothing changed, and there is one alert and one card."""
    bot: Bot = await alerting()
    target = f"{base_of(bot.url)}/alerts/prom"
    seen: list[dict[str, Any]] = []

    async def proxy(request: web.Request) -> web.Response:
        body = await request.read()
        headers = {"Authorization": request.headers.get("Authorization", "")}
        headers["Content-Type"] = "application/json"
        async with (
            aiohttp.ClientSession() as session,
            session.post(target, data=body, headers=headers) as answer,
        ):
            seen.append({"status": answer.status, **(await answer.json())})
        if len(seen) == 1:
            return web.json_response({"ok": False}, status=503)
        return web.json_response(seen[-1], status=answer.status)

    app = web.Application()
    app.router.add_post("/alerts/prom", proxy)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        webhook = f"http://127.0.0.1:{port}/alerts/prom"
        async with alertmanager(tmp_path / "am", webhook, PROM_TOKEN) as am:
            start = datetime.now(UTC) - timedelta(seconds=30)
            labels = {"alertname": "QueueStuck", "instance": "q1", "severity": "warning"}
            await fire(am, start, labels)
            await eventually(lambda: len(seen) >= 2, WAIT)
    finally:
        await runner.cleanup()
    await bot.settle()
    assert seen[0]["status"] == 200 and seen[0]["changed"] is True
    assert seen[1]["status"] == 200 and seen[1]["changed"] is False
    assert await count(bot, AlertRow) == 1
    [card] = await eventually(lambda: cards(bot), WAIT)
    assert "*1* firing" in card.text


async def test_a_group_correlated_into_an_open_incident(
    alerting: Callable[..., Any], tmp_path: Path
) -> None:
    bot: Bot = await alerting(
        [
            {"match": ["severity=critical"], "action": "declare"},
            {
                "match": ["service=api"],
                "action": "triage",
                "attach_window_minutes": 60,
                "correlate_on": ["service"],
            },
        ]
    )
    webhook = f"{base_of(bot.url)}/alerts/prom"
    async with alertmanager(tmp_path / "am", webhook, PROM_TOKEN) as am:
        start = datetime.now(UTC) - timedelta(minutes=2)
        down = {"alertname": "ApiDown", "instance": "api1", "severity": "critical"}
        await fire(am, start, {**down, "service": "api"})
        room = await eventually(lambda: channel(bot.fake, "incident-1"), WAIT)
        await bot.settle()
        slow = {"alertname": "ApiSlow", "instance": "api2", "severity": "warning"}
        await fire(am, start, {**slow, "service": "api"})

        def said() -> bool:
            return any("ApiSlow on api2" in m.text for m in bot_messages(bot.fake, room.id))

        await eventually(said, WAIT)
    await bot.settle()
    assert await count(bot, Incident) == 1
    assert await count(bot, AlertGroup, col(AlertGroup.incident_id) == 1) == 2
    assert not cards(bot)  # attached, so no triage card


async def _eventually_async(check: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            await check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        await asyncio.sleep(0.1)
