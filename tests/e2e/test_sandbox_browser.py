"""`warroom sandbox` in a real browser: Debian's Chromium, driven by Selenium, plays the people
of an incident from declare to postmortem through the page, as someone trying Warroom would.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
`.ci/run` installs them). Without them the test is skipped, except in CI, where it fails.
Nothing is downloaded: Selenium is given the driver and the browser.

With WARROOM_SCREENSHOTS=<folder>, the test saves the screenshots the README shows.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import chromium, needs_browser

ROOT = Path(__file__).resolve().parents[2]
WAIT = 15.0


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    needs_browser()
    home = tmp_path_factory.mktemp("sandbox")
    env = {k: v for k, v in os.environ.items() if k in {"PATH", "LANG", "HOME", "SYSTEMROOT"}}
    env["PYTHONPATH"] = str(ROOT)
    env["DATABASE_URL"] = f"sqlite+aiosqlite:///{home / 'sandbox.db'}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "sandbox", "--port", "0"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        first = _line(proc)
        url = re.fullmatch(
            r"No Slack credentials: starting the local sandbox at (http://127\.0\.0\.1:\d+) — "
            r"see docs/setup\.md to connect a workspace",
            first,
        )
        assert url, f"unexpected first line: {first!r}"
        while not _line(proc).startswith("Sandbox ready:"):
            pass
        yield url.group(1)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "the sandbox said nothing for a minute"
    line = proc.stdout.readline()
    assert line, f"the sandbox stopped (exit {proc.poll()})"
    return line.rstrip("\n")


@pytest.fixture(scope="module")
def browser(sandbox_url: str) -> Iterator[Any]:
    with chromium() as driver:
        yield driver


class Person:
    """Someone at the sandbox page: picks who they are, types, clicks, fills forms."""

    def __init__(self, driver: Any, url: str) -> None:
        from selenium.webdriver.common.by import By

        self.d = driver
        self.url = url
        self.by = By
        self.shots = os.environ.get("WARROOM_SCREENSHOTS", "")

    def wait(self, check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Wait until `check()` is truthy; elements redrawn meanwhile are looked up again."""
        from selenium.common.exceptions import (
            ElementClickInterceptedException,
            StaleElementReferenceException,
        )
        from selenium.webdriver.support.ui import WebDriverWait

        def attempt(_driver: Any) -> Any:
            try:
                return check()
            except (StaleElementReferenceException, ElementClickInterceptedException):
                return None

        try:
            return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(attempt)
        except Exception as exc:
            raise AssertionError(f"not seen in {timeout:g} s: {what}") from exc

    def css(self, selector: str) -> list[Any]:
        return list(self.d.find_elements(self.by.CSS_SELECTOR, selector))

    def be(self, user_id: str) -> None:
        from selenium.webdriver.support.ui import Select

        def pick() -> bool:
            Select(self.d.find_element(self.by.ID, "who")).select_by_value(user_id)
            return True

        self.wait(pick, f"{user_id} to pick")
        self.wait(lambda: self.css("#sidebar [data-channel-name='general']"), "the sidebar")

    def open(self, channel: str) -> None:
        item = self.wait(
            lambda: self.css(f"#sidebar [data-channel-name='{channel}']"), f"#{channel} listed"
        )[0]
        item.click()
        self.wait(
            lambda: (
                self.d.find_element(self.by.ID, "channel-title").get_attribute("data-channel-name")
                == channel
            ),
            f"#{channel} open",
        )

    def type(self, text: str, box: str = "composer-input") -> None:
        from selenium.webdriver.common.keys import Keys

        field = self.d.find_element(self.by.ID, box)  # never redrawn
        field.send_keys(text)
        field.send_keys(Keys.ENTER)

    @staticmethod
    def _message_xpath(text: str, where: str) -> str:
        return (
            f"//*[@id='{where}']//div[contains(@class, 'message')]"
            f"[.//div[contains(@class, 'content')][contains(., {_literal(text)})]]"
        )

    def message(self, text: str, where: str = "messages") -> str:
        """Wait for a message containing `text`; returns everything it shows."""
        xpath = self._message_xpath(text, where)
        return str(
            self.wait(
                lambda: (
                    [e.text for e in self.d.find_elements(self.by.XPATH, xpath)][-1:]
                    and self.d.find_elements(self.by.XPATH, xpath)[-1].text
                ),
                repr(text),
            )
        )

    def click(
        self, label: str, message: str | None = None, where: str = "messages", exact: bool = True
    ) -> None:
        """Click the button (in the message containing `message`, when given)."""
        scope = self._message_xpath(message, where) if message else ""
        test = (
            f"normalize-space()={_literal(label)}" if exact else f"contains(., {_literal(label)})"
        )
        xpath = f"{scope}//button[{test}]"

        def press() -> bool:
            buttons = [
                b
                for b in self.d.find_elements(self.by.XPATH, xpath)
                if b.is_displayed() and b.is_enabled()
            ]
            if not buttons:
                return False
            self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", buttons[-1])
            buttons[-1].click()
            return True

        self.wait(press, f"a {label} button" + (f" in {message!r}" if message else ""))

    def modal(self, callback_id: str) -> Any:
        return self.wait(
            lambda: [
                m for m in self.css(f"#modal[data-callback-id='{callback_id}']") if m.is_displayed()
            ],
            f"the {callback_id} form",
        )[0]

    def field(self, block_id: str) -> Any:
        return self.d.find_element(
            self.by.CSS_SELECTOR, f"#modal .bk-field-input[data-block-id='{block_id}']"
        )

    def fill(self, block_id: str, text: str) -> None:
        def typed() -> bool:
            self.field(block_id).send_keys(text)
            return True

        self.wait(typed, f"the {block_id} field")

    def choose(self, block_id: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        def chosen() -> bool:
            Select(self.field(block_id)).select_by_value(value)
            return True

        self.wait(chosen, f"{value} in {block_id}")

    def submit(self) -> None:
        self.wait(lambda: self.d.find_element(self.by.ID, "modal-submit").click() or True, "Submit")

    def modal_closed(self) -> None:
        self.wait(
            lambda: not self.d.find_element(self.by.ID, "modal-backdrop").is_displayed(),
            "the form closed",
        )

    def nothing_unsupported(self) -> None:
        shown = [e.text for e in self.css(".unsupported")]
        assert shown == [], f"the page could not draw: {shown}"

    def screenshot(self, name: str) -> None:
        if self.shots:
            Path(self.shots).mkdir(parents=True, exist_ok=True)
            self.d.save_screenshot(str(Path(self.shots) / f"{name}.png"))


def _literal(text: str) -> str:
    """An XPath string literal for any text."""
    if "'" not in text:
        return f"'{text}'"
    parts = text.split("'")
    return "concat(" + ', "\'", '.join(f"'{p}'" for p in parts) + ")"


def test_an_incident_from_declare_to_postmortem_in_the_browser(
    browser: Any, sandbox_url: str
) -> None:
    started = time.monotonic()
    me = Person(browser, sandbox_url)
    browser.get(f"{sandbox_url}/")
    me.wait(lambda: me.css("#who option[value='UALICE']"), "the people")
    assert "real time" in me.wait(lambda: me.d.find_element(me.by.ID, "speed").text, "clock")

    # Alice declares from #general; her private answer and the new channel appear.
    me.be("UALICE")
    me.open("general")
    me.type("/incident declare sev2 Checkout errors")
    me.message("Incident #1 declared")
    me.open("incident-1")
    notification = me.message("Incident #1 - Severity 2: Checkout errors")
    assert "Pinned" in notification
    me.wait(lambda: "1 pinned" in me.d.find_element(me.by.ID, "pins-toggle").text, "the pin")
    assert "Sev2" in me.d.find_element(me.by.ID, "channel-topic").text

    # Bob acknowledges with the button.
    me.be("UBOB")
    me.open("incident-1")
    me.click("Acknowledge", "Incident #1 - Severity 2")
    me.message("acknowledged")

    # Alice gives the Technical Lead role through the roles form.
    me.be("UALICE")
    me.open("incident-1")
    me.type("/incident roles")
    me.modal("assign_roles")
    me.choose("tech_lead", "UDAVE")
    me.submit()
    me.modal_closed()
    me.wait(lambda: "TL: dave" in me.d.find_element(me.by.ID, "channel-topic").text, "TL: dave")

    # She posts an update through the update form: an empty one is refused inside the form.
    me.click("Post update", "Incident #1 - Severity 2")
    me.modal("post_update")
    me.choose("status", "identified")
    me.submit()
    error = me.wait(
        lambda: me.css("#modal [data-error-for='investigation']")[0].text, "the form's error"
    )
    assert "investigation" in error
    me.fill("investigation", "Rolled back deploy 42; error rate falling.")
    me.screenshot("sandbox-modal")
    me.submit()
    me.modal_closed()
    me.message("Rolled back deploy 42")
    me.nothing_unsupported()
    me.screenshot("sandbox-channel")

    # The update is in the announcement's thread in #incidents too.
    me.open("incidents")
    me.click("repl", "Checkout errors", exact=False)
    me.message("Rolled back deploy 42", where="thread-messages")

    # The Home tab lists the incident.
    me.d.find_element(me.by.ID, "home-link").click()
    me.wait(
        lambda: "Checkout errors" in me.d.find_element(me.by.ID, "home-body").text, "the Home tab"
    )
    me.nothing_unsupported()
    me.screenshot("sandbox-home")

    # Resolve through the resolution form, then generate the postmortem and read it.
    me.open("incident-1")
    me.click("Resolve", "Incident #1 - Severity 2")
    me.modal("resolve_incident")
    me.fill("root_cause", "A deploy with a bad connection-pool setting.")
    me.submit()
    me.modal_closed()
    me.message("Resolved")
    me.type("/incident postmortem")
    me.wait(lambda: me.css("#messages .file"), "the postmortem file")
    me.click("Open")
    text = me.wait(
        lambda: "connection-pool" in (t := me.d.find_element(me.by.ID, "file-text").text) and t,
        "the postmortem's text",
    )
    assert "Checkout errors" in text
    me.nothing_unsupported()

    # Closing archives the channel: it stays in the sidebar, greyed.
    me.type("/incident close")
    me.wait(lambda: me.css("#sidebar .archived[data-channel-name='incident-1']"), "archived")
    assert not me.d.find_element(me.by.ID, "composer-input").is_enabled()

    # What people type is shown as they typed it, formatted, never run.
    me.open("general")
    me.type("<img src=x onerror=\"document.title='pwned'\"> *bold* & <b>not bold</b>")
    shown = me.message("onerror")
    assert "& <b>not bold</b>" in shown
    assert me.css("#messages img") == []
    assert [b.text for b in me.css("#messages .content strong")] == ["bold"]
    assert browser.title == "Warroom sandbox"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    assert time.monotonic() - started < 60


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
SHOWN_TAGS = {
    "a", "blockquote", "br", "code", "div", "em", "li", "ol", "pre", "s", "span", "strong",
    "time", "ul",
}  # fmt: skip


def test_every_message_template_and_form_renders_in_the_page(
    browser: Any, sandbox_url: str
) -> None:
    """Every built-in template, rendered with the sample data `warroom check` uses, and the
    blocks and forms built from them, through the page's own renderers: no mrkdwn markup left
    showing, only text-formatting elements, nothing unsupported."""
    from datetime import date

    from app.checks import template_samples
    from app.domain.policy import Policy
    from app.messages import blocks
    from app.messages.render import DOCUMENTS, Renderer
    from app.slack import action_views, views

    policy, renderer = Policy(), Renderer()
    samples = template_samples(policy)
    texts = [
        renderer.render(name, **context)
        for name, contexts in sorted(samples.items())
        if name.endswith(".md.j2") and name not in DOCUMENTS
        for context in contexts
    ]
    incident = samples["initial_notification.md.j2"][-1]["incident"]
    body = renderer.render(
        "initial_notification.md.j2", **samples["initial_notification.md.j2"][-1]
    )
    items = max((c["items"] for c in samples["action_list.md.j2"]), key=len)
    block_sets = [
        blocks.initial_notification(incident, body).blocks,
        blocks.announcement(incident, "Headline", body).blocks,
        action_views.action_list(renderer, items, date.today(), incident).blocks,
        views.declare_modal(policy, "{}")["blocks"],
        views.update_modal(incident, "{}")["blocks"],
        views.resolve_modal(incident, "{}")["blocks"],
        views.roles_modal(incident, policy, "{}")["blocks"],
        action_views.reassign_modal(items[0], "{}")["blocks"],
    ]
    browser.get(f"{sandbox_url}/")
    browser.set_script_timeout(20)
    result = browser.execute_async_script(RENDER, texts, block_sets)
    assert "error" not in result, result
    assert len(result["texts"]) == len(texts) > 40
    for source, (shown, tags) in zip(texts, result["texts"], strict=True):
        for markup in ("<@", "<#", "<!", "&lt;", "&gt;", "&amp;"):
            assert markup not in shown, (markup, source)
        assert set(tags) <= SHOWN_TAGS, (tags, source)
    for shown, unsupported in result["blocks"]:
        assert unsupported == 0, shown
        assert "<@" not in shown and "&amp;" not in shown


CASES = """
const [cases, done] = arguments;
import("/static/mrkdwn.js").then((m) => {
  const ctx = {
    userName: (id) => ({ U1: "alice" })[id] || id, channelName: () => "incident-7",
    groupHandle: () => "oncall", now: () => Date.now() / 1000, openChannel: () => {},
  };
  done(cases.map((text) => {
    const node = m.renderMrkdwn(text, ctx);
    const links = [...node.querySelectorAll("a")].map((a) => a.href);
    const tags = [...node.querySelectorAll("*")].map((e) => e.localName).join(" ");
    return [node.textContent, tags, links];
  }));
}).catch((e) => done(String(e)));
"""


@pytest.mark.parametrize(
    ("mrkdwn", "text", "tags", "links"),
    [
        ("*bold* _it_ ~gone~ `c`", "bold it gone c", "strong em s code", []),
        ("snake_case_name and 2*3*4", "snake_case_name and 2*3*4", "", []),
        ("&lt;script&gt;alert(1)&lt;/script&gt; &amp;", "<script>alert(1)</script> &", "", []),
        ("<img src=x onerror=alert(1)>", "img src=x onerror=alert(1)", "span", []),
        (
            "<https://example.com/a?b=1&amp;c=2|the docs> <javascript:alert(1)|x>",
            "the docs x",
            "a span",
            ["https://example.com/a?b=1&c=2"],
        ),
        ("<@U1> <@U1|old> <#C1> <!subteam^S1> <!here>", "@alice @alice #incident-7 @oncall @here",
         "span span span span span", []),
        ("*Update <!date^0^{date_num}|x>: Identified*", None, "strong time", []),
        ("> quoted *line*\nafter", "quoted lineafter", "blockquote strong", []),
        ("• one\n• *two*", "onetwo", "ul li li strong", []),
        ("```&lt;b&gt; *not bold*```", "<b> *not bold*", "pre", []),
        (":white_check_mark: done :nope:", "✅ done :nope:", "", []),
    ],
)  # fmt: skip
def test_mrkdwn_is_drawn_as_slack_shows_it_and_never_as_html(
    browser: Any, sandbox_url: str, mrkdwn: str, text: str | None, tags: str, links: list[str]
) -> None:
    if not browser.current_url.startswith(sandbox_url):
        browser.get(f"{sandbox_url}/")
    [(shown, drawn, hrefs)] = browser.execute_async_script(CASES, [mrkdwn])
    if text is not None:
        assert shown == text
    assert drawn == tags
    assert hrefs == links
