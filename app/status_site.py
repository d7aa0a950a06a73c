"""Serving the public status page: /status (HTML), /status.json, /status/feed.atom and
/status/style.css.

A status page is read most when something is wrong: an outage sends every customer to it at
once, while the database behind it is under stress too. So a burst of visitors costs one cheap
query: `fingerprint()` is asked at most once per `recheck_seconds`, and the page is loaded and
rendered again only when the fingerprint changed. Everything a visitor gets is rendered once per
change and cached as bytes with its ETag. When loading fails the last good page keeps being
served (marked by the `Warroom-Stale` header); with no good page yet the answer is a plain 503.

The site takes two callables rather than a database session so it knows nothing of the store
and can be served from the bot's own web app (`add_routes`) or on a separate public address
(`status_app`).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from app.domain.statuspage import PublicPage
from app.messages.status_page import iso, render_atom, render_css, render_html, render_json

log = logging.getLogger(__name__)

HTML = "text/html; charset=utf-8"
JSON = "application/json"
ATOM = "application/atom+xml"
CSS = "text/css; charset=utf-8"
STALE_HEADER = "Warroom-Stale"
UNAVAILABLE = "The status page is unavailable for a moment. Please try again shortly.\n"
# A logo's origin, as a CSP source may name it; anything else falls back to `https:`.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

Load = Callable[[], Awaitable[PublicPage]]
Fingerprint = Callable[[], Awaitable[str]]


@dataclass(frozen=True)
class Rendered:
    """One representation, ready to send."""

    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class Built:
    """Every representation of one page, and the fingerprint it was built at."""

    fingerprint: str
    built_at: float  # the site clock's time
    generated_at: str  # the page's own time, ISO 8601
    csp: str
    outputs: dict[str, Rendered]


class Unavailable(Exception):
    """No page can be served: loading failed and no good page was built before."""


def csp_for(page: PublicPage) -> str:
    """No scripts, no inline styles, nothing framed, no forms; images from the site and the
    logo's origin only. The logo URL is validated as http(s) by the policy, but only a plain
    origin is written into the header (a `;` in a host would start a new directive)."""
    images = "'self'"
    if page.logo_url:
        parts = urlsplit(page.logo_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        images += " " + (origin if _ORIGIN.match(origin) else "https:")
    return (
        "default-src 'none'; "
        f"img-src {images}; "
        "style-src 'self'; "
        "base-uri 'none'; "
        "form-action 'none'; "
        "frame-ancestors 'none'"
    )


def _rendered(body: str, content_type: str) -> Rendered:
    data = body.encode("utf-8")
    return Rendered(data, content_type, f'"{hashlib.sha256(data).hexdigest()[:32]}"')


def render_all(page: PublicPage, base_url: str) -> dict[str, str]:
    """Each route's body, for one page (the site caches them; tests read them)."""
    return {
        "html": render_html(page),
        "json": json.dumps(render_json(page), ensure_ascii=False, separators=(",", ":")),
        "atom": render_atom(page, base_url),
        "css": render_css(page),
    }


def site_base(base_url: str, page: PublicPage) -> str:
    """Where the site is served, for the feed's absolute links: the configured `base_url`, else
    the origin of the page's public URL. Never the request's Host header: the feed is cached
    and shared, and a forged Host must not end up in everyone's copy."""
    if base_url:
        return base_url.rstrip("/")
    if page.url:
        parts = urlsplit(page.url)
        return f"{parts.scheme}://{parts.netloc}"
    return "http://localhost"


class StatusSite:
    """The status page's routes, with the cache that keeps a visitor burst off the database."""

    def __init__(
        self,
        load: Load,
        fingerprint: Fingerprint,
        *,
        base_url: str = "",
        recheck_seconds: float = 2.0,
        max_age: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._load = load
        self._fingerprint = fingerprint
        self.base_url = base_url
        self.recheck_seconds = recheck_seconds
        self.max_age = max_age
        self._clock = clock
        self._built: Built | None = None
        self._stale = False  # the last refresh failed; `_built` is older than it should be
        self._next_check = -math.inf
        self._lock = asyncio.Lock()

    async def current(self) -> tuple[Built, bool]:
        """The page to serve and whether it is stale. Raises `Unavailable`."""
        if self._clock() < self._next_check or (self._lock.locked() and self._built):
            # Checked recently, or a refresh is running: this visitor is not the one who pays.
            return self._served()
        async with self._lock:
            if self._clock() < self._next_check:
                return self._served()
            try:
                await self._refresh()
                self._stale = False
            except Exception:
                log.exception("status page: refreshing failed")
                self._stale = True
            # Failing or not, the next check waits: a failing database is not asked by everyone.
            self._next_check = self._clock() + self.recheck_seconds
            return self._served()

    def _served(self) -> tuple[Built, bool]:
        if self._built is None:
            raise Unavailable()
        return self._built, self._stale

    async def _refresh(self) -> None:
        # The fingerprint is read before the page: a change that lands in between makes the
        # stored fingerprint old, so the next check loads again rather than missing it.
        fingerprint = await self._fingerprint()
        if self._built is not None and self._built.fingerprint == fingerprint:
            return
        page = await self._load()
        bodies = render_all(page, site_base(self.base_url, page))
        types = {"html": HTML, "json": JSON, "atom": ATOM, "css": CSS}
        self._built = Built(
            fingerprint=fingerprint,
            built_at=self._clock(),
            generated_at=iso(page.generated_at) or "",
            csp=csp_for(page),
            outputs={name: _rendered(body, types[name]) for name, body in bodies.items()},
        )

    # --- handlers -------------------------------------------------------------------------

    async def html(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "html")

    async def json(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "json")

    async def atom(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "atom")

    async def css(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, "css")

    async def _answer(self, request: web.Request, name: str) -> web.StreamResponse:
        try:
            built, stale = await self.current()
        except Unavailable:
            response = web.Response(
                status=503, text=UNAVAILABLE, content_type="text/plain", charset="utf-8"
            )
            response.headers["Retry-After"] = str(max(1, math.ceil(self.recheck_seconds)))
            response.headers["Cache-Control"] = "no-store"
            secure(response, csp=None)
            return response
        out = built.outputs[name]
        headers = {
            "ETag": out.etag,
            "Cache-Control": f"public, max-age={self.max_age}",
        }
        if name in ("json", "atom"):
            # Public data, read by other sites' widgets and by feed readers in browsers.
            headers["Access-Control-Allow-Origin"] = "*"
        if stale:
            headers[STALE_HEADER] = (
                f"the page could not be refreshed; this copy is of {built.generated_at}"
            )
        if _matches(request.headers.get("If-None-Match", ""), out.etag):
            response = web.Response(status=304, headers=headers)
        else:
            response = web.Response(body=out.body, headers=headers)
            response.headers["Content-Type"] = out.content_type
        secure(response, csp=built.csp)
        return response


def _matches(header: str, etag: str) -> bool:
    """If-None-Match (RFC 9110 13.1.2): `*` or any listed tag, compared weakly."""
    if not header:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or etag in (t.removeprefix("W/") for t in tags)


def secure(response: web.StreamResponse, csp: str | None) -> None:
    """The headers every status page response carries."""
    response.headers["Content-Security-Policy"] = csp or (
        "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"


def add_routes(app: web.Application, site: StatusSite) -> None:
    """GET (and HEAD) /status, /status.json, /status/feed.atom, /status/style.css."""
    app.router.add_get("/status", site.html)
    app.router.add_get("/status.json", site.json)
    app.router.add_get("/status/feed.atom", site.atom)
    app.router.add_get("/status/style.css", site.css)


@web.middleware
async def _secured(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as refused:
        secure(refused, csp=None)
        raise
    if "Content-Security-Policy" not in response.headers:
        secure(response, csp=None)
    return response


async def _home(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("status")


def status_app(site: StatusSite) -> web.Application:
    """An application serving the status page alone, for a public address of its own (the
    bot's Slack and webhook routes stay on a private one). `/` leads to the page; every
    answer, a 404 too, carries the security headers."""
    app = web.Application(middlewares=[_secured])
    add_routes(app, site)
    app.router.add_get("/", _home)
    return app
