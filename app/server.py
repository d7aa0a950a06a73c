"""Running the bot: HTTP mode (aiohttp) or Socket Mode, after migrations and an auth check."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from app.bootstrap import Runtime, identify
from app.services.ports import SlackError
from app.store.migrate import upgrade

log = logging.getLogger(__name__)


def web_app(runtime: Runtime, path: str = "/slack/events") -> web.Application:
    """The HTTP surface: Slack's requests on `path`, and a health check for load balancers."""

    async def slack_events(request: web.Request) -> web.Response:
        try:
            body = (await request.read()).decode("utf-8")
        except UnicodeDecodeError:
            # Slack always sends UTF-8; anything else is not from Slack.
            return web.Response(status=400, text="request body is not UTF-8")
        bolt_request = AsyncBoltRequest(
            body=body,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        bolt_response = await runtime.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            await runtime.db.ping()
        except Exception as exc:  # the health check reports, it does not crash
            return web.json_response({"ok": False, "database": str(exc)[:200]}, status=503)
        refused = runtime.services.auth.problem
        if refused:
            # Slack refuses the bot token: messages and pages are held until it works again.
            return web.json_response({"ok": False, "database": "ok", "slack": refused}, status=503)
        return web.json_response({"ok": True, "database": "ok"})

    app = web.Application()
    app.router.add_post(path, slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def prepare(runtime: Runtime) -> None:
    """Migrate the database and learn who the bot is, before taking any request."""
    await upgrade(runtime.settings.database_url)
    await identify(runtime)
    # A restart under the same replica name resumes what it was doing, without waiting for
    # its own leases to lapse.
    await runtime.engine.take_back()
    # Looked up now so the first declare does not wait for it.
    try:
        await runtime.rooms.announce_channel_id()
    except SlackError as exc:
        log.warning("announcement channel not looked up yet: %s", exc.code)


async def start_engine(runtime: Runtime) -> None:
    """Fire what became due while the bot was down (once each), then tick on schedule."""
    await runtime.engine.tick()
    runtime.engine.start()


async def serve_http(runtime: Runtime, host: str, port: int) -> None:
    await prepare(runtime)
    runner = web.AppRunner(web_app(runtime), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    await start_engine(runtime)
    log.info("listening on http://%s:%d/slack/events", host, port)
    try:
        await _until_stopped()
    finally:
        await runner.cleanup()
        await runtime.close()


async def serve_socket(runtime: Runtime) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    await prepare(runtime)
    handler = AsyncSocketModeHandler(runtime.app, runtime.settings.app_token)
    await handler.connect_async()
    await start_engine(runtime)
    log.info("connected over Socket Mode")
    try:
        await _until_stopped()
    finally:
        await handler.close_async()
        await runtime.close()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
