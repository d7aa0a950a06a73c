"""The status site (app/status_site.py) over real HTTP: a burst of visitors costs one load,
a change is served after the next check, ETags answer 304, every answer carries the security
headers, and a failing load answers 503 or keeps the last good page. No database: the site is
fed by plain callables, as the composition root feeds it from the store."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta

import aiohttp
import feedparser
import pytest
from aiohttp import web

from app.domain.statuspage import PublicPage
from app.status_site import STALE_HEADER, StatusSite, add_routes, status_app
from tests.support.status_pages import NOW, quiet_page, sample_page

PATHS = {
    "/status": "text/html; charset=utf-8",
    "/status.json": "application/json",
    "/status/feed.atom": "application/atom+xml",
    "/status/style.css": "text/css; charset=utf-8",
}


class Clock:
    """The site's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Source:
    """What the store would answer: the published page and its fingerprint, counted."""

    page: PublicPage = field(default_factory=sample_page)
    version: int = 1
    loads: int = 0
    checks: int = 0
    failing: bool = False
    delay: float = 0.0

    async def load(self) -> PublicPage:
        self.loads += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.failing:
            raise ConnectionError("database unavailable")
        return self.page

    async def fingerprint(self) -> str:
        self.checks += 1
        if self.failing:
            raise ConnectionError("database unavailable")
        return f"v{self.version}"


@dataclass
class Served:
    url: str
    http: aiohttp.ClientSession
    source: Source
    clock: Clock
    site: StatusSite


async def _serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    tcp = web.TCPSite(runner, "127.0.0.1", 0)
    await tcp.start()
    port = tcp._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    source, clock = Source(), Clock()
    site = StatusSite(
        source.load, source.fingerprint, base_url="https://status.example.com", clock=clock
    )
    async for url in _serve(status_app(site)):
        async with aiohttp.ClientSession() as http:
            yield Served(url, http, source, clock, site)


async def test_every_route_with_its_type_and_security_headers(served: Served) -> None:
    for path, content_type in PATHS.items():
        async with served.http.get(served.url + path) as response:
            assert response.status == 200, path
            assert response.headers["Content-Type"] == content_type
            body = await response.read()
            assert body
            csp = response.headers["Content-Security-Policy"]
            assert "default-src 'none'" in csp and "script-src" not in csp
            assert "style-src 'self'" in csp and "'unsafe-inline'" not in csp
            assert "frame-ancestors 'none'" in csp
            assert "img-src 'self' https://status.example.com" in csp
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert response.headers["Referrer-Policy"] == "no-referrer"
            assert response.headers["Cache-Control"] == "public, max-age=10"
            assert response.headers["ETag"].startswith('"')
            assert STALE_HEADER not in response.headers
        async with served.http.head(served.url + path) as head:
            assert head.status == 200
            assert head.headers["ETag"] == response.headers["ETag"]
            assert await head.read() == b""
    async with served.http.get(served.url + "/status.json") as response:
        data = json.loads(await response.text())
        assert data["page"]["overall"]["impact"] == "partial_outage"
        assert response.headers["Access-Control-Allow-Origin"] == "*"
    async with served.http.get(served.url + "/status/feed.atom") as response:
        feed = feedparser.parse(await response.read())
        assert not feed.bozo and len(feed.entries) == 6
        assert feed.entries[0].link == "https://status.example.com/status#incident-43"
    assert served.source.loads == 1


async def test_a_burst_of_visitors_costs_one_load_until_the_fingerprint_changes(
    served: Served,
) -> None:
    async def get(path: str = "/status") -> str:
        async with served.http.get(served.url + path) as response:
            assert response.status == 200
            return await response.text()

    pages = await asyncio.gather(*(get(p) for p in list(PATHS) * 10))
    assert "Partial outage" in pages[0]
    assert (served.source.loads, served.source.checks) == (1, 1)

    # Within recheck_seconds nobody asks the store, even after a change.
    served.source.page = quiet_page()
    served.source.version = 2
    served.clock.now += 1.5
    assert "Partial outage" in await get()
    assert served.source.checks == 1

    # After it, one cheap check; unchanged, no load.
    served.source.version = 1
    served.clock.now += 1
    await asyncio.gather(*(get() for _ in range(20)))
    assert (served.source.loads, served.source.checks) == (1, 2)

    # Changed: loaded again, once.
    served.source.version = 2
    served.clock.now += 2.5
    pages = await asyncio.gather(*(get() for _ in range(20)))
    assert all("All systems operational" in p for p in pages)
    assert (served.source.loads, served.source.checks) == (2, 3)


async def test_visitors_during_a_slow_load_get_the_page_already_built(served: Served) -> None:
    await served.http.get(served.url + "/status")
    served.source.page = quiet_page()
    served.source.version = 2
    served.source.delay = 0.5
    served.clock.now += 5

    async def get() -> str:
        async with served.http.get(served.url + "/status") as response:
            return await response.text()

    first = asyncio.create_task(get())
    await asyncio.sleep(0.1)
    others = await asyncio.gather(*(get() for _ in range(5)))
    assert all("Partial outage" in p for p in others)
    assert "All systems operational" in await first
    assert served.source.loads == 2


async def test_if_none_match_answers_304_until_the_page_changes(served: Served) -> None:
    url = served.url + "/status"
    async with served.http.get(url) as response:
        etag = response.headers["ETag"]
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        async with served.http.get(url, headers={"If-None-Match": header}) as response:
            assert response.status == 304, header
            assert response.headers["ETag"] == etag
            assert response.headers["Cache-Control"] == "public, max-age=10"
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert await response.read() == b""
    async with served.http.get(url, headers={"If-None-Match": '"other"'}) as response:
        assert response.status == 200
    # An unchanged page rebuilt gives the same ETag: the same page, the same bytes.
    served.source.version = 2
    served.clock.now += 3
    async with served.http.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    assert served.source.loads == 2
    # A changed page does not match.
    served.source.page = replace(sample_page(), generated_at=NOW + timedelta(minutes=1))
    served.source.version = 3
    served.clock.now += 3
    async with served.http.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 200
        assert response.headers["ETag"] != etag


async def test_a_failing_load_answers_503_with_no_page_yet(served: Served) -> None:
    served.source.failing = True
    for path in PATHS:
        async with served.http.get(served.url + path) as response:
            assert response.status == 503
            assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
            assert "unavailable" in await response.text()
            assert response.headers["Retry-After"] == "2"
            assert response.headers["Cache-Control"] == "no-store"
            assert response.headers["X-Frame-Options"] == "DENY"
            assert "database" not in await response.text()
    # The failure is remembered for recheck_seconds: a failing store is not asked by everyone.
    assert served.source.checks == 1
    served.source.failing = False
    served.clock.now += 3
    async with served.http.get(served.url + "/status") as response:
        assert response.status == 200


async def test_a_failing_load_keeps_the_last_good_page_and_says_so(served: Served) -> None:
    async with served.http.get(served.url + "/status") as response:
        good = await response.text()
    served.source.version = 2
    served.source.failing = True
    served.clock.now += 3
    for _ in range(5):
        async with served.http.get(served.url + "/status") as response:
            assert response.status == 200
            assert await response.text() == good
            assert "2026-11-12T15:00:00Z" in response.headers[STALE_HEADER]
    assert served.source.checks == 2
    served.source.failing = False
    served.clock.now += 3
    async with served.http.get(served.url + "/status") as response:
        assert STALE_HEADER not in response.headers
    assert served.source.loads == 2


async def test_the_public_app_serves_only_the_status_page(served: Served) -> None:
    async with served.http.get(served.url + "/", allow_redirects=False) as response:
        assert response.status == 302
        assert response.headers["Location"] == "status"
    for path in ("/slack/events", "/health", "/status/../slack/events", "/status/"):
        async with served.http.get(served.url + path) as response:
            assert response.status == 404, path
            assert response.headers["X-Content-Type-Options"] == "nosniff"
    async with served.http.post(served.url + "/status") as response:
        assert response.status == 405


async def test_add_routes_mounts_the_page_on_another_app() -> None:
    source = Source()
    app = web.Application()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/health", health)
    add_routes(app, StatusSite(source.load, source.fingerprint))
    async for url in _serve(app):
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/status/feed.atom") as response:
                assert response.status == 200
                feed = feedparser.parse(await response.read())
                # No base_url: links are made from the page's public URL, never the Host header.
                assert feed.feed.links[0].href == "https://status.example.com/status"
                self_link = next(link for link in feed.feed.links if link.rel == "self")
                assert self_link.href == "https://status.example.com/status/feed.atom"
            async with http.get(url + "/health") as response:
                assert await response.text() == "ok"
