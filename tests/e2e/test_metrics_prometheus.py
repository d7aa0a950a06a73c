"""/metrics as Prometheus reads it: a real Prometheus scrapes a real `warroom serve --http` and
one in Socket Mode, both against the fake Slack, and answers queries about them.

Needs /usr/bin/prometheus (`apt-get install prometheus`; `.ci/run` installs it). Without it the
Prometheus test is skipped, except in CI, where it fails.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest

from app.fake_slack import FakeSlack
from tests.support.constants import BOT_TOKEN, SIGNING_SECRET
from tests.support.processes import (
    PROMETHEUS,
    ROOT,
    clean_env,
    free_port,
    prometheus,
    promql,
    serving,
)
from tests.support.slackclient import SlackSender

IN_CI = bool(os.environ.get("CI"))
RULES = ROOT / "docs" / "examples" / "prometheus-rules.yml"


def _needs_prometheus() -> None:
    if Path(PROMETHEUS).exists():
        return
    reason = f"needs {PROMETHEUS}: apt-get install prometheus; CI installs it"
    if IN_CI:
        pytest.fail(f"In CI the Prometheus test must run, but it {reason}")
    pytest.skip(reason)


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 30) -> None:
    """Poll `check` until it holds, failing with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, f"not within {timeout:g} s: {what}"
        await asyncio.sleep(0.25)


def http_env(tmp_path: Path, fake: FakeSlack, **extra: str) -> dict[str, str]:
    folder = tmp_path / "http"
    folder.mkdir(exist_ok=True)
    return clean_env(
        folder,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        **extra,
    )


def socket_env(tmp_path: Path, fake: FakeSlack) -> dict[str, str]:
    folder = tmp_path / "socket"
    folder.mkdir(exist_ok=True)
    return clean_env(
        folder,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_APP_TOKEN=fake.app_token,
        SLACK_API_URL=fake.api_url,
    )


async def test_socket_mode_serves_healthz_and_metrics_on_its_port(
    tmp_path: Path, fake: FakeSlack
) -> None:
    """With no webhook configured, Socket Mode still listens on --host/--port for /healthz
    (which `serving` waits for) and /metrics."""
    async with serving(socket_env(tmp_path, fake), tmp_path, free_port(), http=False) as served:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{served.base}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"ok": True, "database": "ok"}
            async with session.get(f"{served.base}/metrics") as response:
                assert response.status == 200
                assert response.content_type == "text/plain"
                text = await response.text()
        # The health port answers before the socket is up (a load balancer may ask while the
        # bot connects): wait for the connection itself rather than for its log line.
        await fake.sockets.wait_connected(15)
    assert 'warroom_build_info{python="' in text
    assert 'warroom_slack_api_calls_total{method="auth.test",outcome="ok"}' in text
    assert 'warroom_incidents_open{severity="1"} 0.0' in text
    assert "warroom_outbox_depth 0.0" in text


async def test_prometheus_scrapes_both_modes_and_sees_a_declare(
    tmp_path: Path, fake: FakeSlack
) -> None:
    _needs_prometheus()
    http_port, socket_port = free_port(), free_port()
    http = serving(http_env(tmp_path, fake), tmp_path / "http", http_port)
    socket = serving(socket_env(tmp_path, fake), tmp_path / "socket", socket_port, http=False)
    targets = {"http": f"127.0.0.1:{http_port}", "socket": f"127.0.0.1:{socket_port}"}
    (tmp_path / "prom").mkdir()
    async with (
        http as served,
        socket,
        prometheus(tmp_path / "prom", targets, RULES) as prom,
        SlackSender(f"{served.base}/slack/events", SIGNING_SECRET, fake) as sender,
    ):
        status, _ = await sender.command("declare sev2 Checkout API returning 500s")
        assert status == 200

        def holds(query: str, wanted: Callable[[float], bool]) -> Callable[[], Awaitable[bool]]:
            async def check() -> bool:
                found = await promql(prom, query)
                return bool(found) and wanted(found[0][1])

            return check

        checks: list[tuple[str, Callable[[float], bool]]] = [
            ('count(up{job="warroom"} == 1)', lambda v: v == 2),
            ('count(warroom_build_info{job="warroom"})', lambda v: v == 2),
            ('sum(warroom_incidents_declared_total{mode="http"})', lambda v: v == 1),
            ('warroom_incidents_declared_total{mode="http",severity="2"}', lambda v: v == 1),
            ('sum(warroom_incidents_declared_total{mode="socket"})', lambda v: v == 0),
            ('warroom_incidents_open{mode="http",severity="2"}', lambda v: v == 1),
            ('warroom_ack_seconds_count{mode="http",surface="command"}', lambda v: v >= 1),
            (
                'sum(warroom_slack_api_calls_total{mode="http",method="conversations.create",'
                'outcome="ok"})',
                lambda v: v >= 1,
            ),
            ('warroom_outbox_depth{mode="http"}', lambda v: v == 0),
        ]
        for query, wanted in checks:
            await until(holds(query, wanted), query)
        # The example rules loaded, and none fires for a healthy bot.
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{prom}/api/v1/rules") as response,
        ):
            groups = (await response.json())["data"]["groups"]
        names = {rule["name"] for group in groups for rule in group["rules"]}
        assert {"WarroomOutboxStuck", "WarroomSlackTokenRefused"} <= names
        assert await promql(prom, 'ALERTS{alertstate="firing"}') == []
