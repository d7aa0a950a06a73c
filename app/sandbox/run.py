"""`warroom sandbox`: the fake Slack, the real bot and the web page, in one process."""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import sys
import webbrowser
from dataclasses import replace
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url

from app.config import Settings
from app.sandbox.ui import web_app
from app.sandbox.world import Sandbox

log = logging.getLogger(__name__)

SANDBOX_DATABASE_URL = "sqlite+aiosqlite:///./warroom-sandbox.db"
HOST = "127.0.0.1"


def sandbox_settings(settings: Settings, environ: dict[str, str] | None = None) -> Settings:
    """The settings without their Slack credentials (the sandbox has its own) and with the
    sandbox's database unless DATABASE_URL names one."""
    env = os.environ if environ is None else environ
    database = settings.database_url if env.get("DATABASE_URL", "").strip() else None
    return replace(
        settings,
        bot_token="",
        app_token="",
        signing_secret="",
        database_url=database or SANDBOX_DATABASE_URL,
    )


def workspace_file(database_url: str) -> Path | None:
    """Where the fake workspace is kept between runs: next to a SQLite database file, else in
    the current folder; None for a database in memory. A workspace kept next to a SQLite file
    that is gone is dropped: its channels would not match the new database's incidents."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return Path("warroom-sandbox.slack.json")
    if not url.database or url.database == ":memory:":
        return None
    database = Path(url.database)
    kept = database.with_suffix(".slack.json")
    if not database.exists() and kept.exists():
        kept.unlink()
    return kept


def first_line(url: str, credentials: bool) -> str:
    if credentials:
        return f"Starting the local sandbox at {url} (it never connects to Slack)"
    return (
        f"No Slack credentials: starting the local sandbox at {url} — see docs/setup.md to "
        "connect a workspace"
    )


async def serve(
    settings: Settings,
    port: int,
    speed: float,
    open_browser: bool = False,
    socket_mode: bool = False,
) -> None:
    """Serve until SIGINT or SIGTERM."""
    credentials = bool(settings.bot_token)
    settings = sandbox_settings(settings)
    state_file = workspace_file(settings.database_url)
    sandbox = Sandbox(settings, speed=speed, state_file=state_file, socket_mode=socket_mode)
    runner = web.AppRunner(web_app(sandbox), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        reason = "it is in use" if exc.errno == errno.EADDRINUSE else str(exc)
        raise OSError(f"port {port} on {HOST}: {reason}; pick another with --port") from None
    bound = runner.addresses[0][1]
    url = f"http://{HOST}:{bound}"
    print(first_line(url, credentials), flush=True)
    try:
        await sandbox.start()
        database = make_url(sandbox.settings.database_url).render_as_string(hide_password=True)
        pace = "real time" if speed == 1 else f"{speed:g}× real time"
        how = "; Socket Mode" if socket_mode else ""
        print(f"Sandbox ready: {url}/ (database {database}; clock at {pace}{how})", flush=True)
        if open_browser:
            webbrowser.open(f"{url}/")
        await _until_stopped()
    finally:
        await runner.cleanup()
        await sandbox.stop()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    if sys.platform != "win32":
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
