"""Debian's Chromium driven by Selenium, for the tests that look at a page as people do.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
CI installs them). Without them a browser test is skipped, except in CI (`CI` set), where it
fails: a browser test that never runs proves nothing. Nothing is downloaded: Selenium is given
the driver and the browser.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
IN_CI = bool(os.environ.get("CI"))
# WARROOM_SCREENSHOTS=<folder>: the browser tests save the screenshots the docs show.
SCREENSHOTS = os.environ.get("WARROOM_SCREENSHOTS", "")


def needs_browser() -> None:
    """Skip the calling test when Chromium, its driver or Selenium is missing; fail in CI."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    reason = (
        f"needs {', '.join(missing)}: apt-get install chromium chromium-driver "
        "(and `make install` for selenium); CI installs them"
    )
    if IN_CI:
        pytest.fail(f"In CI the browser test must run, but it {reason}")
    pytest.skip(reason)


@contextmanager
def chromium(
    width: int = 1200,
    height: int = 900,
    *,
    javascript: bool = True,
    arguments: Sequence[str] = (),
) -> Iterator[Any]:
    """A headless Chromium WebDriver, quit on exit. `javascript=False` turns scripts off, to
    see what a visitor without them sees."""
    needs_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--lang=en-US",
        *arguments,
    ):
        options.add_argument(argument)
    if not javascript:
        options.add_experimental_option(
            "prefs", {"profile.managed_default_content_settings.javascript": 2}
        )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str, *, full_page: bool = False) -> Path | None:
    """Save `<name>.png` in WARROOM_SCREENSHOTS when it is set. `full_page` grows the window
    to the page's height first, so the whole page is in the picture."""
    if not SCREENSHOTS:
        return None
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    driver.execute_script("window.scrollTo(0, 0)")
    if full_page:
        size = driver.get_window_size()
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(size["width"], height + 100)
    path = folder / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def as_phone(driver: Any, width: int = 360, height: int = 740) -> None:
    """Make the page's viewport a phone's (touch, `width` CSS pixels, the viewport meta tag
    honoured). Headless Chromium's window cannot be narrower than 500 px; emulation can."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True},
    )


RENDER = """
const [texts, blockSets, done] = arguments;
Promise.all([import("/static/mrkdwn.js"), import("/static/blocks.js")]).then(([m, b]) => {
  const ctx = {
    userName: () => "someone", channelName: () => "a-room", groupHandle: () => "a-team",
    now: () => Date.now() / 1000, openChannel: () => {}, people: () => [], channels: () => [],
    onAction: () => {}, form: new Map(),
  };
  const tags = (node) => [...new Set([...node.querySelectorAll("*")].map((e) => e.localName))];
  done({
    texts: texts.map((t) => { const n = m.renderMrkdwn(t, ctx); return [n.textContent, tags(n)]; }),
    blocks: blockSets.map((s) => {
      const n = b.renderBlocks(s, ctx);
      return [n.textContent, n.querySelectorAll(".unsupported").length];
    }),
  });
}).catch((e) => done({ error: String(e) }));
"""


def render_in_page(
    driver: Any, texts: Sequence[str], block_sets: Sequence[Sequence[dict[str, Any]]]
) -> dict[str, Any]:
    """Draw mrkdwn `texts` and Block Kit `block_sets` with the sandbox page's own renderers
    (/static/mrkdwn.js and /static/blocks.js; the driver must be on a sandbox page). Returns
    {"texts": [[text shown, element names]], "blocks": [[text shown, unsupported count]]}."""
    driver.set_script_timeout(30)
    result: dict[str, Any] = driver.execute_async_script(RENDER, list(texts), list(block_sets))
    assert "error" not in result, result
    return result
