"""Running the `warroom` command as a real process, with a clean environment."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

WARROOM = [sys.executable, "-m", "app.cli"]
ROOT = Path(__file__).resolve().parents[2]


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A minimal environment, so the developer's .env and exports do not leak into a test.

    COVERAGE_* variables pass through: with them the child process is measured too."""
    keep = {"PATH", "HOME", "LANG", "SYSTEMROOT"}
    env = {k: v for k, v in os.environ.items() if k in keep or k.startswith("COVERAGE_")}
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    # The fake Slack of the tests enforces no rate limits unless a test turns them on (and
    # then sets its own pacing): pacing to Slack's real windows would only slow bursts down.
    env["WARROOM_SLACK_PACING"] = "0"
    env.update(extra)
    return env


async def run(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str, str]:
    """`warroom <args>` to completion: exit code, stdout, stderr."""
    proc = await asyncio.create_subprocess_exec(
        *WARROOM,
        *args,
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Served:
    """A `warroom serve --http` process, healthy; `stderr` holds its log once it stopped."""

    def __init__(self, proc: asyncio.subprocess.Process, base: str) -> None:
        self.proc = proc
        self.base = base
        self.stderr = ""


@asynccontextmanager
async def serving(
    env: dict[str, str], cwd: Path, port: int, http: bool = True
) -> AsyncIterator[Served]:
    """Start the bot in HTTP mode (or Socket Mode, serving /healthz and alert webhooks) on
    `port`, wait until /healthz answers 200, and stop it (SIGTERM) afterwards, keeping what it
    logged."""
    mode = ["--http"] if http else []
    proc = await asyncio.create_subprocess_exec(
        *WARROOM,
        *("serve", *mode, "--host", "127.0.0.1", "--port", str(port)),
        env=env,
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(proc, f"http://127.0.0.1:{port}")
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while not await _healthy(session, served.base):
                if proc.returncode is not None:
                    raise AssertionError(f"the bot exited: {await _stderr(proc)}")
                assert time.monotonic() < deadline, "the bot did not become healthy"
                await asyncio.sleep(0.1)
        yield served
    finally:
        if proc.returncode is None:
            proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        served.stderr = err.decode()


async def _healthy(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/healthz") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def _stderr(proc: asyncio.subprocess.Process) -> str:
    assert proc.stderr is not None
    return (await proc.stderr.read()).decode()


ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
AMTOOL = "/usr/bin/amtool"


def alertmanager_config(webhook: str, token: str) -> str:
    """One route grouping by alertname with a second's waits, one webhook receiver with a
    Bearer token: the set-up docs/alerts.md gives, with short timers."""
    return f"""
route:
  receiver: warroom
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: warroom
    webhook_configs:
      - url: {webhook}
        send_resolved: true
        http_config:
          authorization:
            credentials: {token}
"""


@asynccontextmanager
async def alertmanager(folder: Path, webhook: str, token: str) -> AsyncIterator[str]:
    """A real Alertmanager on a free 127.0.0.1 port, without clustering, its data in `folder`,
    sending to `webhook`; yields its URL once ready, and stops it (SIGTERM) afterwards."""
    config = folder / "am.yml"
    await asyncio.to_thread(_write_config, config, alertmanager_config(webhook, token))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        ALERTMANAGER,
        f"--config.file={config}",
        f"--storage.path={folder / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            while not await _ready(session, base):
                if proc.returncode is not None:
                    raise AssertionError(f"alertmanager exited: {await _stderr(proc)}")
                assert time.monotonic() < deadline, "alertmanager did not become ready"
                await asyncio.sleep(0.1)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.communicate(), 15)


def _write_config(config: Path, text: str) -> None:
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(text)


async def _ready(session: aiohttp.ClientSession, base: str) -> bool:
    try:
        async with session.get(f"{base}/-/ready") as response:
            return response.status == 200
    except aiohttp.ClientError:
        return False


async def amtool(base: str, *args: str) -> str:
    """`amtool --alertmanager.url=<base> <args>`; its output, or an AssertionError."""
    proc = await asyncio.create_subprocess_exec(
        AMTOOL,
        f"--alertmanager.url={base}",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    return out.decode()


PROMETHEUS = "/usr/bin/prometheus"


def prometheus_config(targets: dict[str, str], rules: Path | None = None) -> str:
    """Scrape each `targets` {mode: host:port} every second, as job `warroom` with a `mode`
    label; evaluate `rules` every second when given."""
    static = "\n".join(
        f"      - targets: ['{address}']\n        labels: {{mode: {mode}}}"
        for mode, address in targets.items()
    )
    rule_files = f"rule_files: ['{rules}']\n" if rules else ""
    return f"""
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
{rule_files}scrape_configs:
  - job_name: warroom
    static_configs:
{static}
"""


@asynccontextmanager
async def prometheus(
    folder: Path, targets: dict[str, str], rules: Path | None = None
) -> AsyncIterator[str]:
    """A real Prometheus on a free 127.0.0.1 port, its data in `folder`, scraping `targets`;
    yields its URL once ready, and stops it (SIGTERM) afterwards."""
    config = folder / "prometheus.yml"
    await asyncio.to_thread(_write_config, config, prometheus_config(targets, rules))
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        PROMETHEUS,
        f"--config.file={config}",
        f"--storage.tsdb.path={folder / 'tsdb'}",
        f"--web.listen-address=127.0.0.1:{port}",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 60
            while not await _ready(session, base):
                if proc.returncode is not None:
                    raise AssertionError(f"prometheus exited: {await _stderr(proc)}")
                assert time.monotonic() < deadline, "prometheus did not become ready"
                await asyncio.sleep(0.2)
        yield base
    finally:
        if proc.returncode is None:
            proc.terminate()
        await asyncio.wait_for(proc.communicate(), 30)


async def promql(base: str, query: str) -> list[tuple[dict[str, str], float]]:
    """An instant query through Prometheus's HTTP API: each series' labels and value."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base}/api/v1/query", params={"query": query}) as response,
    ):
        data = await response.json()
    assert data["status"] == "success", data
    return [(r["metric"], float(r["value"][1])) for r in data["data"]["result"]]
