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
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.request.async_request import AsyncBoltRequest

from app.bootstrap import Runtime, identify
from app.config import HttpLimits
from app.domain.alerts import AlertSource, PayloadError
from app.integrations.alerts import PARSERS
from app.integrations.pagers import pagerduty_webhook
from app.services.ports import SlackError
from app.status_site import StatusSite, add_routes, status_app
from app.store.migrate import upgrade
from app.store.startup import check_sqlite_file, database_errors, wait_for_database
from app.telemetry.metrics import CONTENT_TYPE

log = logging.getLogger(__name__)

_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
# Slack's replay window, the one slack_sdk's SignatureVerifier applies.
_MAX_CLOCK_SKEW = 60 * 5
FORM = "application/x-www-form-urlencoded"
# The fields that make a form body one of Slack's: a slash command, an interactivity payload,
# or Slack's SSL check.
_SLACK_FORM_FIELDS = {"command", "payload", "ssl_check"}


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
    # Served by `listen`, a body left unread is drained for a moment (`LINGER`), then the
    # connection closed.
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


def status_site(runtime: Runtime) -> StatusSite | None:
    """The public status page, when the policy enables it: built from published updates only
    (`StatusUpdates.public_page`), rebuilt when what is published changes."""
    page = runtime.settings.policy.statuspage
    if not page.enabled:
        return None
    public = runtime.bot.public
    # The feed's links start at the origin of `url` (StatusSite's own rule).
    return StatusSite(public.public_page, public.fingerprint)


def web_app(
    runtime: Runtime, path: str = "/slack/events", site: StatusSite | None = None
) -> web.Application:
    """The HTTP surface: Slack's requests on `path`, and a health check for load balancers.

    A request to `path` is checked in order of cost: its signature headers (401) and declared
    size (413) before any of the body is read; then the body, read within a time limit (408);
    then the signature over the raw bytes (401); then its shape (400). Only then does Bolt see it.
    """
    limits = runtime.settings.http
    secret = runtime.settings.signing_secret.encode()
    health = Health(lambda: runtime.db.ping(), limits.health_timeout)

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
        raw = await read_body(request, limits, _refused)
        if isinstance(raw, web.Response):
            return raw
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

    async def metrics(_request: web.Request) -> web.Response:
        body = await runtime.metrics.exposition()
        # prometheus_client's content type carries its own charset parameter.
        response = web.Response(body=body)
        response.headers["Content-Type"] = CONTENT_TYPE
        return response

    async def healthz(_request: web.Request) -> web.Response:
        if not await health.check():
            return web.json_response({"ok": False, "database": "unavailable"}, status=503)
        refused = runtime.services.auth.problem
        if refused:
            # Slack refuses the bot token: messages and pages are held until it works again.
            return web.json_response({"ok": False, "database": "ok", "slack": refused}, status=503)
        return web.json_response({"ok": True, "database": "ok"})

    app = web.Application(client_max_size=limits.max_body_bytes)
    app.router.add_post(path, slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    app.router.add_post("/alerts/{source}", AlertIntake(runtime).receive)
    app.router.add_post("/webhooks/pagerduty", PagerDutyWebhook(runtime).receive)
    if site is not None:
        add_routes(app, site)
    return app


Refuse = Callable[[web.Request, int, str], web.Response]

# An accepted alert webhook's answer carries what was done (declare, triage, ...) under this key
# of the response's own state; a refusal counts as its status says.
_OUTCOME = "warroom_outcome"
_OUTCOMES = {
    400: "rejected",
    401: "unauthorised",
    404: "unknown_source",
    408: "rejected",
    413: "rejected",
    503: "error",
}


async def read_body(
    request: web.Request, limits: HttpLimits, refuse: Refuse
) -> bytes | web.Response:
    """The request's body within the size and time limits, or the refusal to answer with."""
    declared = request.content_length
    if declared is not None and declared > limits.max_body_bytes:
        return refuse(request, 413, f"body of {declared} bytes is over the limit")
    try:
        async with asyncio.timeout(limits.body_timeout):
            return await request.read()
    except TimeoutError:
        return refuse(request, 408, "body not received in time")
    except web.HTTPRequestEntityTooLarge:
        return refuse(request, 413, "body over the limit")
    except ConnectionError:  # the caller went away; nothing to answer, nothing to report
        return web.Response(status=400)


def _said_no(request: web.Request, status: int, reason: str) -> web.Response:
    """A refused alert: one log line, and the reason in one line for whoever sets the sender
    up (it says what is wrong, never a secret)."""
    log.info("refused %s %s (%d): %s", request.method, request.path, status, reason)
    return web.json_response({"ok": False, "error": reason}, status=status)


def signature_matches(secret: str, raw: bytes, header: str) -> bool:
    """A generic source's HMAC-SHA256 of the raw body, hex, bare or as `sha256=<hex>`."""
    expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    given = header.strip().removeprefix("sha256=").lower()
    return hmac.compare_digest(given.encode(), expected.encode())


class AlertIntake:
    """`POST /alerts/<source>`: a monitoring system's webhook.

    Checked in order of cost: the source (404), its secret (401) and declared size (413)
    before the body is read; then the body (408, 413), its signature for a generic source with
    `hmac_env` (401), its JSON and shape (400). The alerts are committed before the 200; a
    failure to store them answers 503, so the sender retries. Declaring, the triage card and
    the incident's summary follow the answer (and the scheduler's sweep finishes them if this
    process cannot).
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.tasks: set[asyncio.Task[None]] = set()

    def _authorised(self, source: AlertSource, request: web.Request, raw: bytes | None) -> bool:
        secrets = self.runtime.settings.alert_secrets
        token = secrets.get(source.token_env, "") if source.token_env else ""
        given = request.headers.get("Authorization", "")
        scheme, _, credentials = given.partition(" ")
        if token and scheme.lower() == "bearer":
            if hmac.compare_digest(credentials.strip().encode(), token.encode()):
                return True
        key = secrets.get(source.hmac_env, "") if source.hmac_env else ""
        header = request.headers.get(source.signature_header, "")
        if key and header and raw is not None:
            return signature_matches(key, raw, header)
        return False

    async def receive(self, request: web.Request) -> web.Response:
        """The answer, counted by source and outcome (an unknown source counts as "unknown",
        so a scanner cannot mint label values)."""
        response = await self._receive(request)
        name = request.match_info["source"]
        known = name in self.runtime.settings.policy.alerts.sources
        outcome = response.get(_OUTCOME) or _OUTCOMES.get(response.status, "other")
        self.runtime.metrics.alert_webhook(name if known else "unknown", outcome)
        return response

    async def _receive(self, request: web.Request) -> web.Response:
        runtime = self.runtime
        limits = runtime.settings.http
        name = request.match_info["source"]
        source = runtime.settings.policy.alerts.sources.get(name)
        if source is None:
            return _said_no(request, 404, "no such alert source")
        secrets = runtime.settings.alert_secrets
        if not any(secrets.get(env) for env in (source.token_env, source.hmac_env) if env):
            return _said_no(request, 401, f"the source's secret ({source.token_env}) is not set")
        uses_hmac = bool(source.hmac_env and request.headers.get(source.signature_header))
        if not uses_hmac and not self._authorised(source, request, None):
            return _said_no(request, 401, "missing or wrong Bearer token")
        raw = await read_body(request, limits, _said_no)
        if isinstance(raw, web.Response):
            return raw
        if uses_hmac and not self._authorised(source, request, raw):
            return _said_no(request, 401, "wrong signature")
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            return _said_no(request, 400, "body is not JSON")
        if not isinstance(data, dict):
            return _said_no(request, 400, "body is JSON but not an object")
        try:
            batch = PARSERS[source.type](data)
        except PayloadError as exc:
            return _said_no(request, 400, f"not a {source.type} payload: {exc}")
        try:
            received = await runtime.alerts.receive(name, batch)
        except Exception as exc:  # the sender retries on 5xx: nothing is lost
            log.warning("alerts from %s not stored: %s", name, f"{type(exc).__name__}: {exc}"[:300])
            return web.json_response({"ok": False, "error": "not stored; retry"}, status=503)
        if received.group_id is not None:
            self._follow_up(received.group_id)
        answer = web.json_response(
            {
                "ok": True,
                "group": received.group_id,
                "action": received.action,
                "changed": received.changed,
            }
        )
        answer[_OUTCOME] = received.action or "ok"
        return answer

    def _follow_up(self, group_id: int) -> None:
        """After the answer: the sender is not kept waiting for Slack."""
        work = self.runtime.inflight.track(self.runtime.alerts.follow_up)
        task = asyncio.get_running_loop().create_task(self._logged(work, group_id))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    @staticmethod
    async def _logged(work: Callable[[int], Awaitable[None]], group_id: int) -> None:
        try:
            await work(group_id)
        except Exception:
            log.exception("alert group %d: follow-up failed; the sweep tries again", group_id)


class PagerDutyWebhook:
    """`POST /webhooks/pagerduty`: PagerDuty telling what people did with a page.

    Closed (401) when no secret is configured; a missing or wrong signature is 401 and nothing
    changes; a body that is not a v3 webhook is 400; an event about a page Warroom did not send
    is answered 200 and ignored (PagerDuty sends a subscription every event of its services).
    The change is committed before the 200; a failure answers 503, so PagerDuty retries.
    """

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def receive(self, request: web.Request) -> web.Response:
        runtime = self.runtime
        paging = runtime.settings.policy.paging
        configured = runtime.settings.pager_secrets.get(paging.pagerduty_webhook_secret_env, "")
        secrets = [s.strip() for s in configured.split(",") if s.strip()]
        if not secrets:
            return _said_no(
                request, 401, f"{paging.pagerduty_webhook_secret_env} is not set: webhooks closed"
            )
        header = request.headers.get(pagerduty_webhook.SIGNATURE_HEADER, "")
        if not header:
            return _said_no(request, 401, "missing X-PagerDuty-Signature")
        raw = await read_body(request, runtime.settings.http, _said_no)
        if isinstance(raw, web.Response):
            return raw
        if not pagerduty_webhook.signature_valid(secrets, raw, header):
            return _said_no(request, 401, "wrong signature")
        try:
            event = pagerduty_webhook.parse(json.loads(raw))
        except (ValueError, RecursionError) as exc:
            return _said_no(request, 400, f"not a PagerDuty v3 webhook: {exc}"[:200])
        state = event.state
        if state is None or not (event.incident_key or event.title):
            return web.json_response({"ok": True, "done": f"ignored: {event.event_type}"[:100]})
        if event.by_integration:
            # Made through the Events API: Warroom's own acknowledge or resolve, echoed.
            return web.json_response({"ok": True, "done": "ignored: made through an integration"})
        try:
            done = await runtime.bot.flows.pager_event(
                "PagerDuty", event.id, event.incident_key, state, event.who, title=event.title
            )
        except Exception as exc:  # PagerDuty retries on 5xx: nothing is lost
            log.warning("PagerDuty webhook not handled: %s", f"{type(exc).__name__}"[:100])
            return web.json_response({"ok": False, "error": "not stored; retry"}, status=503)
        log.info("PagerDuty webhook %s (%s): %s", event.id, event.event_type, done)
        return web.json_response({"ok": True, "done": done})


async def prepare(runtime: Runtime) -> None:
    """Wait for the database, migrate it and learn who the bot is, before taking any request."""
    url = runtime.settings.database_url
    await asyncio.to_thread(check_sqlite_file, url)
    await wait_for_database(url, runtime.settings.db_wait_seconds)
    async with database_errors(url):
        await upgrade(url)
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
    site = status_site(runtime)
    listener = await listen(runtime, host, port, site)
    public = await listen_status(runtime, site)
    await start_engine(runtime)
    log.info("listening on http://%s:%d/slack/events", host, listener.port)
    try:
        await _until_stopped()
    finally:
        if public is not None:
            await public.close()
        await listener.close()
        await runtime.close()


async def listen_status(runtime: Runtime, site: StatusSite | None) -> Listener | None:
    """The status page alone on its own address, when one is configured."""
    port = runtime.settings.status_port
    if site is None or port is None:
        return None
    host = runtime.settings.status_host
    listener = await _serve_app(runtime, status_app(site), host, port)
    log.info("public status page on http://%s:%d/status", host, listener.port)
    return listener


# How long a refused request's unread body is drained before its connection closes, so that
# the caller reads the refusal rather than a reset.
LINGER = 2.0


@dataclass
class Listener:
    """The HTTP server, listening."""

    runner: web.AppRunner
    server: asyncio.Server
    connections: Connections

    @property
    def port(self) -> int:
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        self.server.close()
        await self.runner.cleanup()


async def listen(
    runtime: Runtime, host: str, port: int, site: StatusSite | None = None
) -> Listener:
    """Serve `web_app(runtime)` on host:port within the connection limits of the settings."""
    return await _serve_app(runtime, web_app(runtime, site=site), host, port)


async def _serve_app(runtime: Runtime, app: web.Application, host: str, port: int) -> Listener:
    limits = runtime.settings.http
    connections = Connections(limits)
    app.middlewares.append(connections.middleware)
    runner = web.AppRunner(
        app,
        access_log=None,
        # aiohttp's own idle timer; Connections also covers a connection's first request, which
        # aiohttp before 3.14 does not.
        keepalive_timeout=limits.idle_timeout,
        lingering_time=LINGER,
        logger=_ProtocolLog(logging.getLogger("aiohttp.server"), {}),
    )
    await runner.setup()
    assert runner.server is not None
    server = await asyncio.get_running_loop().create_server(
        connections.protocol_factory(runner.server), host, port
    )
    return Listener(runner=runner, server=server, connections=connections)


class _ProtocolLog(logging.LoggerAdapter):
    """aiohttp's connection log. Malformed HTTP, which anyone on the network may send, is one
    line at INFO rather than an error with a traceback; errors in the handlers keep theirs."""

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info")
        if isinstance(exc, HttpProcessingError):
            del kwargs["exc_info"]
            reason = " ".join(f"{type(exc).__name__}: {exc}".split())[:200]
            level, msg = logging.INFO, f"{msg}: {reason}"
        super().log(level, msg, *args, **kwargs)


@dataclass
class _Connection:
    busy: int = 0
    idle_timer: asyncio.TimerHandle | None = None


class Connections:
    """The open connections of the HTTP server: at most `max_connections`, none idle for long.

    A connection is idle when no request is in progress on it: from when it opens until a
    request's headers have arrived, and from each response to the next request. An idle
    connection is closed after `idle_timeout` (a client sending headers byte by byte gets no
    more). When a new connection would pass the cap, the connection idle longest is closed to
    make room; if every connection has a request in progress, the new one is answered 503 and
    closed. Held-open connections therefore cannot lock Slack out.
    """

    def __init__(self, limits: HttpLimits) -> None:
        self.limit = limits.max_connections
        self.idle_timeout = limits.idle_timeout
        # Insertion order is idle order: a connection moves to the end when a request finishes.
        self.open: dict[asyncio.BaseTransport, _Connection] = {}
        self.evicted = 0
        self.refused = 0
        self._warned_at: float | None = None

    def protocol_factory(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        return lambda: _Counted(server(), self)

    def admit(self, transport: asyncio.BaseTransport) -> bool:
        if len(self.open) >= self.limit:
            made_room = self._make_room()
            if not made_room:
                self.refused += 1
            self._warn_full()
            if not made_room:
                return False
        conn = _Connection()
        self.open[transport] = conn
        self._idle(transport, conn)
        return True

    def release(self, transport: asyncio.BaseTransport) -> None:
        conn = self.open.pop(transport, None)
        if conn is not None and conn.idle_timer is not None:
            conn.idle_timer.cancel()

    def _make_room(self) -> bool:
        for transport, conn in self.open.items():
            if conn.busy == 0:
                self.release(transport)
                transport.close()
                self.evicted += 1
                return True
        return False

    def _warn_full(self) -> None:
        now = asyncio.get_running_loop().time()
        if self._warned_at is None or now - self._warned_at >= 60:
            self._warned_at = now
            log.warning(
                "%d connections open, the limit (WARROOM_HTTP_MAX_CONNECTIONS): "
                "%d idle ones closed to make room, %d refused so far",
                len(self.open),
                self.evicted,
                self.refused,
            )

    def _idle(self, transport: asyncio.BaseTransport, conn: _Connection) -> None:
        loop = asyncio.get_running_loop()
        conn.idle_timer = loop.call_later(self.idle_timeout, self._expire, transport)

    def _expire(self, transport: asyncio.BaseTransport) -> None:
        conn = self.open.get(transport)
        if conn is not None and conn.busy == 0:
            self.release(transport)
            transport.close()

    @web.middleware
    async def middleware(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        transport = request.transport
        conn = self.open.get(transport) if transport is not None else None
        if transport is None or conn is None:
            return await handler(request)
        conn.busy += 1
        if conn.idle_timer is not None:
            conn.idle_timer.cancel()
            conn.idle_timer = None
        try:
            return await handler(request)
        finally:
            conn.busy -= 1
            if conn.busy == 0 and self.open.get(transport) is conn:
                self.open[transport] = self.open.pop(transport)  # now the most recently idle
                self._idle(transport, conn)


_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, admitted by `Connections` or refused with 503."""

    def __init__(self, inner: asyncio.Protocol, connections: Connections) -> None:
        self.inner = inner
        self.connections = connections
        self.transport: asyncio.BaseTransport | None = None
        self.admitted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.admitted = self.connections.admit(transport)
        if not self.admitted:
            assert isinstance(transport, asyncio.Transport)
            transport.write(_BUSY)
            transport.close()
            return
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.admitted:
            assert self.transport is not None
            self.connections.release(self.transport)
            self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.admitted:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.admitted else None

    def pause_writing(self) -> None:
        if self.admitted:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.admitted:
            self.inner.resume_writing()


async def serve_socket(runtime: Runtime, host: str = "127.0.0.1", port: int = 0) -> None:
    """Socket Mode: Slack's requests come over the socket. The HTTP server still listens on
    host:port, for `/healthz` and `/metrics` (a load balancer's or Prometheus's), and for the
    alert and pager webhooks when they are configured; `/slack/events` there refuses every
    request unless a signing secret is set."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    await prepare(runtime)
    site = status_site(runtime)
    listener = await listen(runtime, host, port, site)
    public = await listen_status(runtime, site)
    if runtime.settings.webhooks_wanted:
        log.info(
            "/healthz, /metrics and webhooks (alerts, pagers) on http://%s:%d", host, listener.port
        )
    else:
        log.info("/healthz and /metrics on http://%s:%d", host, listener.port)
    handler = AsyncSocketModeHandler(runtime.app, runtime.settings.app_token)
    await handler.connect_async()
    await start_engine(runtime)
    log.info("connected over Socket Mode")
    try:
        await _until_stopped()
    finally:
        await handler.close_async()
        if public is not None:
            await public.close()
        await listener.close()
        await runtime.close()


async def _until_stopped() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
