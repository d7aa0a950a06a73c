"""The public status page in a real browser: Debian's Chromium, driven by Selenium, reads
/status from a `StatusSite` served over HTTP in a background thread, fed by a page that
`build_page` made from normal and hostile incidents.

What a visitor sees (components, impacts, the ongoing incident's updates), hostile text shown
as text with nothing run, the same page with JavaScript turned off, the stylesheet applied
under the site's Content-Security-Policy, and no sideways scrolling on a 360 px wide phone.
With WARROOM_SCREENSHOTS=<folder> it saves status-page.png and status-page-mobile.png (the
ones docs/status-page.md shows). Skipped without Chromium, except in CI (tests/support/browser.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from app.domain.statuspage import PublicPage
from app.status_site import StatusSite, status_app
from tests.support.browser import as_phone, chromium, needs_browser, screenshot
from tests.support.status_pages import HOSTILE, NOW, normal_page, sample_page

LOGO = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40">'
    '<rect width="40" height="40" rx="8" fill="#ffffff"/>'
    '<path d="M8 28 L16 14 L22 22 L26 16 L32 28 Z" fill="#5b21b6"/></svg>'
)
# Read in the page: the text of `main`, whether any script-made or injected markup exists.
LOOK = """
return {
  text: document.querySelector('main').innerText,
  hostileElements: document.querySelectorAll(
    'main script, main img, main svg, [onerror], [onload]').length,
  accent: getComputedStyle(document.querySelector('.masthead')).backgroundColor,
  bars: document.querySelectorAll('.bars .bar').length,
  barHeight: document.querySelector('.bars .bar').getBoundingClientRect().height,
  logoLoaded: document.querySelector('.logo').naturalWidth > 0,
};
"""


class Serving:
    """An aiohttp app on 127.0.0.1 in a thread with its own event loop, as deployed; `url` is
    set once it listens."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.url = ""
        self.loop = asyncio.new_event_loop()
        self.runner: web.AppRunner | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> Serving:
        self.thread.start()
        self.url = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(15)
        return self

    async def _start(self) -> str:
        self.runner = web.AppRunner(self.app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    def __exit__(self, *exc: object) -> None:
        if self.runner is not None:
            asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(15)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(15)
        self.loop.close()


def site_of(page: Any) -> StatusSite:
    """A site serving `page()`, a page that never changes."""

    async def load() -> PublicPage:
        return page()

    async def fingerprint() -> str:
        return "unchanged"

    return StatusSite(load, fingerprint)


@pytest.fixture(scope="module")
def status_url() -> Iterator[str]:
    needs_browser()
    where = {"url": ""}
    # The logo comes from the same server, so the page loads nothing from outside.
    app = status_app(
        site_of(
            lambda: sample_page(logo_url=f"{where['url']}/logo.svg", url=f"{where['url']}/status")
        )
    )

    async def logo(request: web.Request) -> web.Response:
        return web.Response(text=LOGO, content_type="image/svg+xml")

    app.router.add_get("/logo.svg", logo)
    with Serving(app) as served:
        where["url"] = served.url
        yield served.url


def _no_alert(driver: Any) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert.text  # noqa: B018


def _severe(driver: Any) -> list[str]:
    """The browser's errors: a blocked style or image, a failed load (the browser's own
    request for /favicon.ico aside)."""
    logs = driver.get_log("browser")
    return [e["message"] for e in logs if e["level"] == "SEVERE" and "favicon" not in e["message"]]


def test_a_visitor_reads_the_status_page(status_url: str) -> None:
    with chromium(1200, 900) as driver:
        driver.get(f"{status_url}/status")
        from selenium.webdriver.common.by import By

        assert driver.title == "Example Status · Partial outage"
        seen = driver.execute_script(LOOK)
        text = "\n".join(line for line in seen["text"].splitlines() if line.strip())
        assert text.startswith("Partial outage\nAs of 12 Nov 2026, 15:00 UTC")
        # Components, grouped, with their impact in words.
        assert "API\nOperational" in text
        assert "Checkout\nPartial outage" in text
        assert "Dashboard\nOperational" in text
        assert "89 of 90 days operational" in text
        # The ongoing incident with every published update, newest first.
        checkout = driver.find_element(By.ID, "incident-42").text
        assert "Checkout errors" in checkout and "Identified" in checkout
        assert checkout.index("Rolling back now.") < checkout.index(
            "We are looking into checkout errors."
        )
        assert "Rolled back" not in checkout
        # A past incident's updates are behind a details element, open without a script.
        past = driver.find_element(By.ID, "incident-41")
        assert "The API is back." not in past.text
        past.find_element(By.TAG_NAME, "summary").click()
        assert "The API is back." in past.text
        # Hostile text is text: shown literally, nothing created from it, nothing run.
        for hostile in HOSTILE:
            assert hostile in text, hostile
        assert seen["hostileElements"] == 0
        _no_alert(driver)
        # The stylesheet applied under the CSP: the accent colour, the bars' height.
        assert seen["accent"] == "rgb(91, 33, 182)"
        assert seen["bars"] == 4 * 90 and seen["barHeight"] >= 20
        assert seen["logoLoaded"]
        bar = driver.find_element(By.CSS_SELECTOR, "#component-checkout .bar:last-child")
        assert bar.get_attribute("aria-label") == "12 Nov 2026: Partial outage (incident 42)"
        assert bar.get_attribute("title") == bar.get_attribute("aria-label")
        assert _severe(driver) == []


def test_the_page_is_the_same_without_javascript(status_url: str) -> None:
    with chromium(1200, 900) as scripted:
        scripted.get(f"{status_url}/status")
        from selenium.webdriver.common.by import By

        with_js = scripted.find_element(By.TAG_NAME, "body").text
    with chromium(1200, 900, javascript=False) as driver:
        # Scripts are really off: a page's own script does not run.
        driver.get("data:text/html,<title>before</title><script>document.title='after'</script>")
        assert driver.title == "before"
        driver.get(f"{status_url}/status")
        without_js = driver.find_element(By.TAG_NAME, "body").text
        assert "Partial outage" in without_js and "Rolling back now." in without_js
        assert without_js.split() == with_js.split()
        _no_alert(driver)


def test_on_a_phone_the_page_never_scrolls_sideways(status_url: str) -> None:
    with chromium() as driver:
        as_phone(driver)
        driver.get(f"{status_url}/status")
        widths = driver.execute_script(
            "return {inner: window.innerWidth, doc: document.documentElement.scrollWidth,"
            " body: document.body.scrollWidth,"
            " bars: Math.max(...[...document.querySelectorAll('.bars')].map("
            "   (b) => b.getBoundingClientRect().right))}"
        )
        assert widths["inner"] == 360, widths
        assert widths["doc"] <= widths["inner"], widths
        assert widths["body"] <= widths["inner"], widths
        assert widths["bars"] <= widths["inner"], widths
        assert _severe(driver) == []


def test_a_year_of_history_scrolls_inside_its_box_on_a_phone() -> None:
    """365 bars cannot fit in 360 px: the bars scroll, the page does not."""
    needs_browser()
    year = sample_page(history_days=365)
    assert len(year.components[0].days) == 365 and year.generated_at == NOW
    with Serving(status_app(site_of(lambda: year))) as served, chromium() as driver:
        as_phone(driver)
        driver.get(f"{served.url}/status")
        widths = driver.execute_script(
            "return {inner: window.innerWidth, doc: document.documentElement.scrollWidth,"
            " bars: document.querySelector('.bars').scrollWidth,"
            " box: document.querySelector('.bars').clientWidth}"
        )
        assert widths["doc"] <= widths["inner"], widths
        assert widths["bars"] > widths["box"], widths


def test_the_pictures_in_the_docs() -> None:
    """The page of a team with an ongoing incident, wide and on a phone: docs/status-page.md
    shows these (saved with WARROOM_SCREENSHOTS=docs/images)."""
    needs_browser()
    from selenium.webdriver.common.by import By

    with Serving(status_app(site_of(normal_page))) as served, chromium(1000, 900) as driver:
        driver.get(f"{served.url}/status")
        assert "Checkout errors" in driver.find_element(By.ID, "incident-42").text
        screenshot(driver, "status-page", full_page=True)
        driver.set_window_size(1000, 900)
        as_phone(driver)
        driver.get(f"{served.url}/status")
        width = driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= 360
        screenshot(driver, "status-page-mobile")
