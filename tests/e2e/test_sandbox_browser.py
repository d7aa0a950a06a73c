"""`warroom sandbox` in a real browser: Debian's Chromium, driven by Selenium, plays the people
of an incident from declare to postmortem through the page, as someone trying Warroom would.

Needs /usr/bin/chromium and /usr/bin/chromedriver (`apt-get install chromium chromium-driver`;
`.ci/run` installs them). Without them the test is skipped, except in CI, where it fails.
Nothing is downloaded: Selenium is given the driver and the browser.

With WARROOM_SCREENSHOTS=<folder>, the test saves the screenshots the README shows.
"""

from __future__ import annotations

import inspect
import os
import re
import select
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import IN_CI, chromium, needs_browser, render_in_page
from tests.support.processes import ROOT, clean_env

WAIT = 15.0


def _make_run(home: Path, args: str) -> Iterator[str]:
    """`make run` from the checkout, as on a fresh clone: no .env, no Slack variables, HOME
    and the database in a temporary folder. Yields the page's URL, read from make's first
    line; stops make and everything it started (its process group) afterwards."""
    needs_browser()
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if (ROOT / ".env").exists():
        if IN_CI:
            pytest.fail("a fresh clone has no .env, but this checkout has one")
        pytest.skip("a .env in the checkout may hold credentials: not a fresh clone")
    database = home / "sandbox.db"
    env = clean_env(home, HOME=str(home), DATABASE_URL=f"sqlite+aiosqlite:///{database}")
    assert not any(k.startswith("SLACK_") for k in env)
    log = (home / "sandbox.log").open("w")
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"ARGS={args}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,  # make, the shell and the sandbox are stopped together
    )
    try:
        first = _line(proc)
        url = re.fullmatch(
            r"No Slack credentials: starting the local sandbox at (http://127\.0\.0\.1:\d+) — "
            r"see docs/setup\.md to connect a workspace",
            first,
        )
        assert url, f"unexpected first line: {first!r}"
        ready = _line(proc)
        assert ready.startswith("Sandbox ready:") and str(database) in ready, ready
        assert ("; Socket Mode" in ready) is ("--socket-mode" in args), ready
        yield url.group(1)
    finally:
        try:
            _stop_group(proc)
        finally:
            log.close()
    assert database.exists(), "the sandbox kept its database elsewhere"


def _stop_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to make and everything it started, as Ctrl-C in a terminal would; wait until
    none of them is left. Whatever is still there after 15 s is killed, and the test fails."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        proc.poll()  # reap make itself
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(5)
    raise AssertionError("make run was still running 15 s after SIGTERM")


@pytest.fixture(scope="module")
def sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sandbox `make run` starts, the bot taking Slack's requests over signed HTTP."""
    yield from _make_run(tmp_path_factory.mktemp("sandbox"), "--port 0")


@pytest.fixture(scope="module")
def socket_sandbox_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same, the bot connected to the local Slack over Socket Mode."""
    yield from _make_run(tmp_path_factory.mktemp("socket-sandbox"), "--port 0 --socket-mode")


@pytest.fixture(params=["http", "socket_mode"])
def story_url(request: pytest.FixtureRequest) -> str:
    """The end-to-end story runs against both: HTTP and Socket Mode."""
    name = "sandbox_url" if request.param == "http" else "socket_sandbox_url"
    return str(request.getfixturevalue(name))


def _line(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    assert ready, "the sandbox said nothing for a minute"
    line = proc.stdout.readline()
    assert line, f"the sandbox stopped (exit {proc.poll()})"
    return line.rstrip("\n")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as driver:
        yield driver


class Person:
    """Someone at the sandbox page: picks who they are, types, clicks, fills forms."""

    def __init__(self, driver: Any, url: str, shots: bool = True) -> None:
        from selenium.webdriver.common.by import By

        self.d = driver
        self.url = url
        self.by = By
        self.shots = os.environ.get("WARROOM_SCREENSHOTS", "") if shots else ""

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

    def tool(self, label: str, message: str) -> None:
        """Use a message's hover tool (Pin, 📌 React): point at the message, then click."""
        from selenium.webdriver.common.action_chains import ActionChains

        xpath = (
            "//*[@id='messages']//div[contains(concat(' ', @class, ' '), ' message ')]"
            f"[.//div[contains(@class, 'content')][contains(., {_literal(message)})]]"
        )

        def use() -> bool:
            found = self.d.find_elements(self.by.XPATH, xpath)
            if not found:
                return False
            self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", found[-1])
            ActionChains(self.d).move_to_element(found[-1]).perform()
            tools = [
                b
                for b in found[-1].find_elements(
                    self.by.XPATH, f".//button[@title][normalize-space()={_literal(label)}]"
                )
                if b.is_displayed()
            ]
            if not tools:
                return False
            tools[0].click()
            return True

        self.wait(use, f"the {label} tool on {message!r}")

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
    browser: Any, story_url: str, request: pytest.FixtureRequest
) -> None:
    """The story the issue tells, against what `make run` started; over HTTP and over Socket
    Mode (the screenshots come from the HTTP run)."""
    started = time.monotonic()
    me = Person(browser, story_url, shots=request.node.callspec.params["story_url"] == "http")
    browser.get(f"{story_url}/")
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
    # The topic and the pinned notification follow the new status.
    me.wait(lambda: "Identified" in me.d.find_element(me.by.ID, "channel-topic").text, "Identified")
    me.message("We have identified the cause")
    me.nothing_unsupported()
    me.screenshot("sandbox-channel")

    # What people pin or mark :pushpin: joins the incident's timeline.
    me.be("UCAROL")
    me.open("incident-1")
    me.type("Error rate is back to 0.1%")
    me.tool("Pin", "Error rate is back")
    me.wait(lambda: "📌 Pinned" in me.message("Error rate is back"), "Carol's pin")
    me.be("UERIN")
    me.open("incident-1")
    me.type("Dashboards green since the rollback")
    me.tool("📌 React", "Dashboards green")
    me.wait(lambda: me.css("#messages .reaction[data-reaction='pushpin']"), "Erin's :pushpin:")
    me.type("/incident timeline")
    me.wait(
        lambda: [
            e
            for e in me.css("#messages .ephemeral .content")
            if "Error rate is back to 0.1%" in e.text
            and "Dashboards green since the rollback" in e.text
        ],
        "both in the timeline",
    )

    # The update is in the announcement's thread in #incidents too.
    me.be("UALICE")
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


SHOWN_TAGS = {
    "a", "blockquote", "br", "code", "div", "em", "li", "ol", "pre", "s", "span", "strong",
    "time", "ul",
}  # fmt: skip
# Types and custom fields of every kind, so the forms show every input the bot may build.
RICH_POLICY = {
    "workspace": {"default_type": "outage"},
    "types": {
        "outage": {
            "name": "Outage",
            "description": "Something customers use is down",
            "fields": ["team", "areas", "owner", "customers", "dashboard", "notes"],
        },
        "security": {"name": "Security", "fields": ["team", "notes"]},
    },
    "fields": {
        "team": {"label": "Team", "kind": "select", "options": ["payments", "search"]},
        "areas": {"label": "Areas", "kind": "multi_select", "options": ["web", "api"]},
        "owner": {"label": "Service owner", "kind": "user"},
        "customers": {"label": "Customers affected", "kind": "number"},
        "dashboard": {"label": "Dashboard", "kind": "link"},
        "notes": {"label": "Notes", "kind": "text", "required": "declare"},
    },
}


def _builders() -> dict[str, Callable[..., Any]]:
    """Every form builder (`*_modal`) of the Slack layer and every message builder (returning
    a Message) of app/messages/blocks.py and app/slack/action_views.py, found by looking."""
    from app.messages import blocks
    from app.slack import action_views, views

    found: dict[str, Callable[..., Any]] = {}
    for module in (views, action_views, blocks):
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ != module.__name__ or name.startswith("_"):
                continue
            returns = str(inspect.signature(function).return_annotation)
            if name.endswith("_modal") or returns.endswith("Message"):
                found[f"{module.__name__}.{name}"] = function
    return found


def _built(samples: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Each builder called with the sample named as each of its parameters (optional ones
    too, when there is a sample): its blocks. A builder with a parameter no sample names
    fails the test, so a new builder is rendered as soon as it exists."""
    built = []
    for name, function in sorted(_builders().items()):
        arguments = {}
        for parameter in inspect.signature(function).parameters.values():
            if parameter.name in samples:
                arguments[parameter.name] = samples[parameter.name]
            else:
                assert parameter.default is not inspect.Parameter.empty, (
                    f"{name}: no sample for its parameter {parameter.name!r}; add one"
                )
        result = function(**arguments)
        shown = result["blocks"] if isinstance(result, dict) else result.blocks
        built.append((name, shown))
    return built


def test_every_message_template_and_form_renders_in_the_page(
    browser: Any, sandbox_url: str
) -> None:
    """Every built-in template, rendered with the sample data `warroom check` uses, and every
    form and message the builders make from them, through the page's own renderers: no mrkdwn
    markup left showing, only text-formatting elements, nothing unsupported. (What services
    build from live data, alert cards and status-page drafts among them, is rendered by
    tests/integration/test_sandbox.py from what the bot really sent.)"""
    from datetime import date

    from app.checks import template_samples
    from app.config import build_policy
    from app.domain.policy import Policy
    from app.messages import blocks
    from app.messages.render import DOCUMENTS, Renderer
    from app.slack import views

    policy, renderer = Policy(), Renderer()
    samples = template_samples(policy)
    texts = [
        renderer.render(name, **context)
        for name, contexts in sorted(samples.items())
        if name.endswith(".md.j2") and name not in DOCUMENTS
        for context in contexts
    ]
    body = renderer.render(
        "initial_notification.md.j2", **samples["initial_notification.md.j2"][-1]
    )
    items = max((c["items"] for c in samples["action_list.md.j2"]), key=len)
    block_sets: list[tuple[str, list[dict[str, Any]]]] = []
    incidents = [samples["initial_notification.md.j2"][0]["incident"]]
    incidents.append(samples["initial_notification.md.j2"][-1]["incident"])
    for chosen, incident in [(Policy(), incidents[0]), (build_policy(RICH_POLICY), incidents[1])]:
        block_sets += _built(
            {
                "policy": chosen,
                "meta": views.metadata(incident=incident.id),
                "description": "From an alert: *disk* <full> & filling",
                "drill": True,
                "incident": incident,
                "incidents": incidents,
                "cadence": 30,
                "title": "Checkout errors",
                "severity": 2,
                "service": "checkout",
                "status": "identified",
                "body": body,
                "headline": ":rotating_light: *New incident*",
                "text": body,
                "blocks": [blocks.header("A heading"), blocks.context("_a context_")],
                "item": items[0],
                "items": items,
                "renderer": renderer,
                "today": date.today(),
            }
        )
    names = {name.rsplit(".", 1)[1] for name, _ in block_sets}
    assert {"alert_attach_modal", "public_edit_modal", "reassign_modal", "action_list"} <= names
    kinds = {(b.get("element") or {}).get("type") for _, s in block_sets for b in s}
    assert {"multi_static_select", "users_select", "checkboxes"} <= kinds, kinds
    browser.get(f"{sandbox_url}/")
    result = render_in_page(browser, texts, [s for _, s in block_sets])
    assert len(result["texts"]) == len(texts) > 40
    for source, (shown, tags) in zip(texts, result["texts"], strict=True):
        for markup in ("<@", "<#", "<!", "&lt;", "&gt;", "&amp;"):
            assert markup not in shown, (markup, source)
        assert set(tags) <= SHOWN_TAGS, (tags, source)
    for (name, _), (shown, unsupported) in zip(block_sets, result["blocks"], strict=True):
        assert unsupported == 0, (name, shown)
        assert "<@" not in shown and "&amp;" not in shown, (name, shown)


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
