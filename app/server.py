"""Running the bot: HTTP mode (aiohttp) or Socket Mode, after migrations and an auth check."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from app.slack.bot import Warroom, identify
from app.slack.gateway import SlackError
from app.store.migrate import upgrade

log = logging.getLogger(__name__)


def web_app(warroom: Warroom, path: str = "/slack/events") -> web.Application:
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
        bolt_response = await warroom.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            await warroom.db.ping()
        except Exception as exc:  # the health check reports, it does not crash
            return web.json_response({"ok": False, "database": str(exc)[:200]}, status=503)
        return web.json_response({"ok": True, "database": "ok"})

    app = web.Application()
    app.router.add_post(path, slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def prepare(warroom: Warroom) -> None:
    """Migrate the database and learn who the bot is, before taking any request."""
    await upgrade(warroom.settings.database_url)
    await identify(warroom)
    # Looked up now so the first declare does not wait for it.
    try:
        await warroom.war_room.announce_channel_id()
    except SlackError as exc:
        log.warning("announcement channel not looked up yet: %s", exc.code)


async def start_engine(warroom: Warroom) -> None:
    """Fire what became due while the bot was down (once each), then tick on schedule."""
    await warroom.engine.tick()
    warroom.engine.start()


async def serve_http(warroom: Warroom, host: str, port: int) -> None:
    await prepare(warroom)
    runner = web.AppRunner(web_app(warroom), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    await start_engine(warroom)
    log.info("listening on http://%s:%d/slack/events", host, port)
    try:
        await _until_stopped()
    finally:
        await runner.cleanup()
        await warroom.close()


async def serve_socket(warroom: Warroom) -> None:
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    await prepare(warroom)
    handler = AsyncSocketModeHandler(warroom.app, warroom.settings.app_token)
    await handler.connect_async()
    await start_engine(warroom)
    log.info("connected over Socket Mode")
    try:
        await _until_stopped()
    finally:
        await handler.close_async()
        await warroom.close()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
