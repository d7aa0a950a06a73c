"""The sandbox's web page and the small JSON API behind it.

The page (plain HTML, CSS and JavaScript shipped in the package, nothing built or downloaded)
reads what one person sees from `GET /ui/state`, hears of every change in the workspace from
`GET /ui/events` (server-sent events) and sends what the person does as JSON posts.

The page is for the machine it runs on: requests must name this server as their host (a web
page elsewhere cannot reach it through DNS tricks), and every post must be JSON (which a page
of another origin cannot send without the browser asking first, and this server never agrees).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import web
from yarl import URL

from app.sandbox import page
from app.sandbox.requests import JsonDict
from app.sandbox.world import Refused, Sandbox
from app.services.status_updates import StatusUpdates
from app.status_site import StatusSite, add_routes

log = logging.getLogger(__name__)

STATIC_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
KEEPALIVE_SECONDS = 15.0
MAX_BODY = 256 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _static(name: str) -> bytes | None:
    folder = resources.files("app.sandbox").joinpath("static")
    if "/" in name or name.startswith(".") or not any(name.endswith(s) for s in STATIC_TYPES):
        return None
    item = folder.joinpath(name)
    return item.read_bytes() if item.is_file() else None


def _error(status: int, text: str) -> web.Response:
    return web.json_response({"ok": False, "error": text}, status=status)


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        host = URL(f"http://{request.host}").host
    except ValueError:
        host = None
    if host not in LOCAL_HOSTS:
        return _error(403, "This sandbox only answers pages served from this machine.")
    if request.method == "POST":
        if request.content_type != "application/json":
            return _error(415, "Send JSON.")
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            return _error(403, "Requests from other pages are refused.")
    response = await handler(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def web_app(sandbox: Sandbox) -> web.Application:
    app = web.Application(middlewares=[_guard], client_max_size=MAX_BODY)
    ui = _Routes(sandbox)
    app.router.add_get("/", ui.index)
    app.router.add_get("/static/{name}", ui.static)
    app.router.add_get("/ui/state", ui.state)
    app.router.add_get("/ui/events", ui.events)
    app.router.add_get("/ui/files/{file_id}", ui.file)
    app.router.add_post("/ui/command", ui.act(ui.command))
    app.router.add_post("/ui/message", ui.act(ui.message))
    app.router.add_post("/ui/pin", ui.act(ui.pin))
    app.router.add_post("/ui/react", ui.act(ui.react))
    app.router.add_post("/ui/action", ui.act(ui.action))
    app.router.add_post("/ui/submit", ui.act(ui.submit))
    app.router.add_post("/ui/close", ui.act(ui.close))
    app.router.add_post("/ui/home", ui.act(ui.home))
    if sandbox.settings.policy.statuspage.enabled:
        # The public status page the bot in the sandbox publishes to, as visitors would see it.
        add_routes(app, StatusSite(lambda: _public(sandbox).public_page(), _fingerprint(sandbox)))
    return app


def _public(sandbox: Sandbox) -> StatusUpdates:
    if sandbox.runtime is None:
        raise RuntimeError("the sandbox is starting")
    return sandbox.runtime.bot.public


def _fingerprint(sandbox: Sandbox) -> Callable[[], Awaitable[str]]:
    async def fingerprint() -> str:
        return await _public(sandbox).fingerprint()

    return fingerprint


def _text(body: JsonDict, key: str, limit: int = 40_000) -> str:
    value = body.get(key)
    if not isinstance(value, str) or len(value) > limit:
        raise Refused(f"Missing or too long: {key}.")
    return value


class _Routes:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    async def index(self, _request: web.Request) -> web.Response:
        body = _static("index.html")
        assert body is not None, "the sandbox page is missing from the package"
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    async def static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = _static(name)
        if body is None:
            return web.Response(status=404, text="not found")
        kind = STATIC_TYPES["." + name.rsplit(".", 1)[-1]]
        charset = "utf-8" if kind.startswith("text/") else None
        return web.Response(body=body, content_type=kind, charset=charset)

    async def state(self, request: web.Request) -> web.Response:
        viewer = request.query.get("as", "")
        channel = request.query.get("channel") or None
        return web.json_response(page.state(self.sandbox, viewer, channel))

    async def events(self, request: web.Request) -> web.StreamResponse:
        """One `data: <version>` line whenever the workspace changes; a comment line every
        15 seconds keeps the connection open."""
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
        )
        await response.prepare(request)
        changed = asyncio.Event()
        stop = self.sandbox.fake.on_change(lambda _version: changed.set())
        try:
            await response.write(f"data: {self.sandbox.fake.version}\n\n".encode())
            while True:
                try:
                    await asyncio.wait_for(changed.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": still here\n\n")
                    continue
                await asyncio.sleep(0.05)  # one line for a burst of changes
                changed.clear()
                await response.write(f"data: {self.sandbox.fake.version}\n\n".encode())
        except ConnectionError:
            return response
        finally:
            stop()

    async def file(self, request: web.Request) -> web.Response:
        """A shared file's text, for someone in a conversation it was shared in. Served as
        plain text that the browser may not sniff, run or frame."""
        sandbox = self.sandbox
        viewer = request.query.get("as", "")
        stored = sandbox.workspace.files.get(request.match_info["file_id"])
        if stored is None or stored.content is None:
            return web.Response(status=404, text="No such file.")
        channels = [sandbox.workspace.channels.get(c) for c in stored.channels]
        if not any(c is not None and sandbox.can_see(viewer, c) for c in channels):
            return web.Response(status=404, text="No such file.")
        safe_name = "".join(ch for ch in stored.name if ch.isalnum() or ch in "._-") or "file"
        return web.Response(
            body=stored.content,
            content_type="text/plain",
            charset="utf-8",
            headers={
                "Content-Disposition": f'inline; filename="{safe_name}"',
                "Content-Security-Policy": "sandbox; default-src 'none'",
            },
        )

    def act(self, work: Callable[[JsonDict], Awaitable[JsonDict]]) -> Handler:
        async def route(request: web.Request) -> web.StreamResponse:
            if not self.sandbox.ready:
                return _error(503, "The sandbox is still starting.")
            try:
                body = json.loads(await request.text())
            except (ValueError, UnicodeDecodeError):
                return _error(400, "Send a JSON object.")
            if not isinstance(body, dict):
                return _error(400, "Send a JSON object.")
            try:
                return web.json_response({"ok": True, **await work(body)})
            except Refused as exc:
                return _error(400, str(exc))
            except Exception:
                log.exception("sandbox: %s failed", request.path)
                return _error(500, "That failed in the sandbox (see its log).")

        return route

    # --- acts -----------------------------------------------------------------------------

    async def command(self, body: JsonDict) -> JsonDict:
        answer = await self.sandbox.command(
            _text(body, "as", 40), _text(body, "channel", 40), _text(body, "text", 4000)
        )
        return {"status": answer.status}

    async def message(self, body: JsonDict) -> JsonDict:
        thread = body.get("thread_ts")
        ts = self.sandbox.say(
            _text(body, "as", 40),
            _text(body, "channel", 40),
            _text(body, "text"),
            thread if isinstance(thread, str) and thread else None,
        )
        return {"ts": ts}

    async def pin(self, body: JsonDict) -> JsonDict:
        await self.sandbox.pin(
            _text(body, "as", 40), _text(body, "channel", 40), _text(body, "ts", 40)
        )
        return {}

    async def react(self, body: JsonDict) -> JsonDict:
        await self.sandbox.react(
            _text(body, "as", 40),
            _text(body, "channel", 40),
            _text(body, "ts", 40),
            _text(body, "name", 80),
        )
        return {}

    async def action(self, body: JsonDict) -> JsonDict:
        where = body.get("where")
        if not isinstance(where, dict):
            raise Refused("Nothing to click there.")
        chosen: dict[str, Any] = {}
        if "value" in body:
            chosen["value"] = body["value"]
        await self.sandbox.click(
            _text(body, "as", 40),
            where,
            _text(body, "block_id", 255),
            _text(body, "action_id", 255),
            **chosen,
        )
        return {}

    async def submit(self, body: JsonDict) -> JsonDict:
        values = body.get("values")
        if not isinstance(values, dict):
            raise Refused("Nothing was filled in.")
        result = await self.sandbox.submit(
            _text(body, "as", 40), _text(body, "view_id", 40), values
        )
        return {"submitted": result.ok, "errors": result.errors, "error": result.error}

    async def close(self, body: JsonDict) -> JsonDict:
        await self.sandbox.close_modal(_text(body, "as", 40), _text(body, "view_id", 40))
        return {}

    async def home(self, body: JsonDict) -> JsonDict:
        await self.sandbox.open_home(_text(body, "as", 40))
        return {}
