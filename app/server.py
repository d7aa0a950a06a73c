"""Running the bot: HTTP mode (aiohttp) or Socket Mode, after migrations and an auth check."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import signal
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from app.bootstrap import Runtime, identify
from app.services.ports import SlackError
from app.store.migrate import upgrade

log = logging.getLogger(__name__)

_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Slack's replay window, the one slack_sdk's SignatureVerifier applies.
_MAX_CLOCK_SKEW = 60 * 5
FORM = "application/x-www-form-urlencoded"
# The fields that make a form body one of Slack's: a slash command, an interactivity payload,
# or Slack's SSL check.
_SLACK_FORM_FIELDS = {"command", "payload", "ssl_check"}
# /healthz answers within this long even when the database hangs.
HEALTH_TIMEOUT = 2.0


class MalformedBody(ValueError):
    """A signed body that is not one of Slack's request shapes."""


def parse_slack_body(body: str, content_type: str) -> dict[str, Any]:
    """The body of a Slack request as Bolt's listeners expect it.

    Events API callbacks are JSON; slash commands are form fields; interactivity is one form field,
    `payload`, holding JSON. Raises MalformedBody for anything else.
    """
    if content_type == "application/json" or (content_type != FORM and body.startswith("{")):
        data = _json_object(body)
    else:
        fields = dict(parse_qsl(body, keep_blank_values=True))
        if not _SLACK_FORM_FIELDS & fields.keys():
            raise MalformedBody("a form without command, payload or ssl_check")
        if "payload" not in fields:
            return fields
        data = _json_object(fields["payload"])
    return data


def _json_object(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        raise MalformedBody("not JSON") from None
    if not isinstance(data, dict):
        raise MalformedBody("JSON, but not an object")
    return data


class ParsedBoltRequest(AsyncBoltRequest):
    """An HTTP request handed to Bolt with its body already parsed, and its raw body kept.

    Bolt's own parser (slack_bolt/request/internals.py, `parse_body`, slack_bolt 1.30) decides a
    form body is an interactivity payload when the body contains the substring "payload"
    anywhere: `/incident declare sev1 Payload service down`, `/incident update payload fixed`,
    or any command typed in a channel named #payload-team, became an empty body and a 404. To be
    reported upstream; until then the body is parsed here (`parse_slack_body`).

    Bolt takes a parsed body only in Socket Mode, so the request is built that way and then put
    back into HTTP mode with the raw body, which Bolt's signature check reads.
    """

    def __init__(
        self,
        *,
        raw_body: str,
        body: dict[str, Any],
        query: str | dict[str, Sequence[str]] | None,
        headers: dict[str, str | Sequence[str]],
        context: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(
            body=body, query=query, headers=headers, context=context, mode="socket_mode"
        )
        self.raw_body = raw_body
        self.mode = "http"

    def to_copyable(self) -> ParsedBoltRequest:
        # Bolt copies the request for lazy listeners; the copy must not go back to its parser.
        return ParsedBoltRequest(
            raw_body=self.raw_body,
            body=self.body,
            query=self.query,
            headers=dict(self.headers),
            context=self.context.to_copyable(),
        )


def _signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Slack's request signature, over the body's bytes as received. (slack_sdk's
    SignatureVerifier decodes the body as UTF-8 first, and raises on anything else.)"""
    base = b"v0:" + timestamp.encode("ascii") + b":" + body
    return "v0=" + hmac.new(secret, base, hashlib.sha256).hexdigest()


def _refused(request: web.Request, status: int, reason: str) -> web.Response:
    """A refusal: one short log line, no traceback, and nothing about why to the caller."""
    log.info(
        "refused %s %s from %s (%d): %s",
        request.method,
        request.path,
        request.remote,
        status,
        reason,
    )
    return web.json_response({"ok": False}, status=status)


class Health:
    """The database probe behind /healthz: bounded in time, its error logged once, never shown."""

    def __init__(self, ping: Callable[[], Awaitable[None]], timeout: float) -> None:
        self.ping = ping
        self.timeout = timeout
        self.failing: str | None = None

    async def check(self) -> bool:
        try:
            async with asyncio.timeout(self.timeout):
                await self.ping()
        except Exception as exc:  # the health check reports, it does not crash
            if isinstance(exc, TimeoutError):
                detail = f"no answer within {self.timeout:g} s"
            else:
                detail = f"{type(exc).__name__}: {exc}"[:300]
            if detail != self.failing:
                log.warning("health check: database unavailable: %s", detail)
                self.failing = detail
            return False
        if self.failing is not None:
            log.info("health check: database answering again")
            self.failing = None
        return True


def web_app(runtime: Runtime, path: str = "/slack/events") -> web.Application:
    """The HTTP surface: Slack's requests on `path`, and a health check for load balancers.

    A request to `path` is checked before anything parses it: its signature headers, then the
    signature over the raw bytes (401); then its shape (400). Only then does Bolt see it.
    """
    secret = runtime.settings.signing_secret.encode()
    health = Health(lambda: runtime.db.ping(), HEALTH_TIMEOUT)

    async def slack_events(request: web.Request) -> web.Response:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        if not secret:
            return _refused(request, 401, "SLACK_SIGNING_SECRET is not set")
        if not _SIGNATURE.fullmatch(signature):
            return _refused(request, 401, "no Slack signature")
        if not _TIMESTAMP.fullmatch(timestamp) or (
            abs(time.time() - int(timestamp)) > _MAX_CLOCK_SKEW
        ):
            return _refused(request, 401, "request timestamp missing or stale")
        try:
            raw = await request.read()
        except ConnectionError:  # the caller went away; nothing to answer, nothing to report
            return web.Response(status=400)
        if not hmac.compare_digest(signature, _signature(secret, timestamp, raw)):
            return _refused(request, 401, "wrong signature")
        try:
            body = raw.decode("utf-8")
            parsed = parse_slack_body(body, request.content_type)
        except UnicodeDecodeError:
            # Slack always sends UTF-8.
            return _refused(request, 400, "signed body is not UTF-8")
        except MalformedBody as exc:
            return _refused(request, 400, f"signed body is not a Slack request: {exc}")
        headers: dict[str, str | Sequence[str]] = dict(request.headers)
        bolt_request = ParsedBoltRequest(
            raw_body=body, body=parsed, query=request.query_string, headers=headers
        )
        bolt_response = await runtime.app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def healthz(_request: web.Request) -> web.Response:
        if not await health.check():
            return web.json_response({"ok": False, "database": "unavailable"}, status=503)
        return web.json_response({"ok": True, "database": "ok"})

    app = web.Application()
    app.router.add_post(path, slack_events)
    app.router.add_get("/healthz", healthz)
    return app


async def prepare(runtime: Runtime) -> None:
    """Migrate the database and learn who the bot is, before taking any request."""
    await upgrade(runtime.settings.database_url)
    await identify(runtime)
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
