"""The sandbox (`warroom sandbox`) without a browser: its page's JSON API drives the real bot
against the fake Slack, as the page does; what people see comes back from /ui/state."""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.config import Settings, build_policy
from app.domain.policy import Policy
from app.sandbox import people
from app.sandbox.run import workspace_file
from app.sandbox.ui import web_app
from app.sandbox.world import Sandbox, form_state, to_slack_text
from tests.support.alerts import DEFAULT_ROUTES, SECRETS, SOURCES, am_alert, am_payload, post_alerts
from tests.support.browser import chromium, needs_browser, render_in_page

STATIC = Path(__file__).resolve().parents[2] / "app" / "sandbox" / "static"
ALICE, BOB, CAROL, DAVE, ERIN = "UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"


@dataclass
class Page:
    """The sandbox and an HTTP client of its page's API."""

    sandbox: Sandbox
    url: str
    http: aiohttp.ClientSession

    async def state(self, who: str, channel: str | None = None) -> dict[str, Any]:
        params = {"as": who, "channel": channel or ""}
        async with self.http.get(f"{self.url}/ui/state", params=params) as response:
            assert response.status == 200
            data: dict[str, Any] = await response.json()
            return data

    async def act(self, path: str, who: str, status: int = 200, **body: Any) -> dict[str, Any]:
        async with self.http.post(f"{self.url}/ui/{path}", json={"as": who, **body}) as response:
            data: dict[str, Any] = await response.json()
            assert response.status == status, data
            return data

    async def channel_id(self, who: str, name: str) -> str:
        async def found() -> str | None:
            state = await self.state(who)
            return next((c["id"] for c in state["channels"] if c["name"] == name), None)

        return await eventually_async(found)

    async def command(self, who: str, channel: str, text: str) -> None:
        await self.act("command", who, channel=channel, text=text)
        await self.settle()

    async def settle(self) -> None:
        runtime = self.sandbox.runtime
        assert runtime is not None
        assert await runtime.inflight.wait_idle(10)

    async def modal(self, who: str, callback_id: str) -> dict[str, Any]:
        async def opened() -> dict[str, Any] | None:
            modal = (await self.state(who))["modal"]
            return modal if modal and modal["callback_id"] == callback_id else None

        return await eventually_async(opened)

    async def click(self, who: str, where: dict[str, Any], action_id: str, **extra: Any) -> None:
        block_id = extra.pop("block_id", "incident_actions")
        await self.act("action", who, where=where, block_id=block_id, action_id=action_id, **extra)
        await self.settle()


async def eventually_async(check: Any, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def start_page(
    database_url: str,
    speed: float = 1.0,
    state_file: Path | None = None,
    socket_mode: bool = False,
    policy: Policy | None = None,
    alert_secrets: dict[str, str] | None = None,
) -> AsyncIterator[Page]:
    settings = Settings(
        database_url=database_url, policy=policy or Policy(), alert_secrets=alert_secrets or {}
    )
    sandbox = Sandbox(settings, speed=speed, state_file=state_file, socket_mode=socket_mode)
    await sandbox.start()
    runner = web.AppRunner(web_app(sandbox), access_log=None, shutdown_timeout=0.2)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as http:
            yield Page(sandbox, f"http://127.0.0.1:{port}", http)
    finally:
        await runner.cleanup()
        await sandbox.stop()


@pytest.fixture
async def page(database_url: str) -> AsyncIterator[Page]:
    async for running in start_page(database_url):
        yield running


@pytest.fixture(params=["http", "socket_mode"])
async def either_page(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Page]:
    """The bot hears Slack's requests over signed HTTP, or over Socket Mode."""
    async for running in start_page(database_url, socket_mode=request.param == "socket_mode"):
        yield running


def texts(conversation: dict[str, Any]) -> str:
    """Everything shown in a conversation: messages, replies, answers only the viewer sees."""
    parts = [json.dumps(m["blocks"]) + m["text"] for m in conversation["messages"]]
    for replies in conversation["threads"].values():
        parts += [json.dumps(m["blocks"]) + m["text"] for m in replies]
    parts += [json.dumps(e["blocks"]) + e["text"] for e in conversation["ephemeral"]]
    return "\n".join(parts)


# --- the story, as people tell it through the page ----------------------------------------


async def test_an_incident_from_declare_to_postmortem_through_the_page(
    either_page: Page,
) -> None:
    page = either_page
    # Over Socket Mode the bot listens on no port: requests come over its WebSocket.
    assert (page.sandbox.listener is None) is page.sandbox.socket_mode
    general = await page.channel_id(ALICE, "general")
    await page.command(ALICE, general, "/incident declare sev2 Checkout errors")
    room = await page.channel_id(ALICE, "incident-1")

    async def pinned() -> dict[str, Any] | None:
        conversation = (await page.state(ALICE, room))["open"]
        return conversation if conversation["pins"] else None

    conversation = await eventually_async(pinned)
    notification = conversation["pins"][0]
    assert "Checkout errors" in notification["text"]
    assert conversation["topic"].startswith("Sev2")
    # The declarer's private answer came through the response_url the page's command carried.
    answered = (await page.state(ALICE, general))["open"]["ephemeral"]
    assert any("Incident #1 declared" in e["text"] for e in answered)
    # Nobody else sees it.
    assert (await page.state(BOB, general))["open"]["ephemeral"] == []

    # Bob acknowledges from the notification's button.
    where = {"kind": "message", "channel": room, "ts": notification["ts"]}
    await page.click(BOB, where, "incident_ack")
    assert "acknowledged" in texts((await page.state(BOB, room))["open"]).lower()

    # Alice gives roles through the roles form.
    await page.command(ALICE, room, "/incident roles")
    roles = await page.modal(ALICE, "assign_roles")
    assert (await page.state(BOB))["modal"] is None
    answer = await page.act(
        "submit", ALICE, view_id=roles["id"], values={"tech_lead": DAVE, "comms": CAROL}
    )
    assert answer["submitted"], answer
    await page.settle()
    state = await page.state(ALICE, room)
    assert state["modal"] is None
    assert "TL: dave" in state["open"]["topic"]

    # The update form refuses an empty update inside the form, then posts.
    await page.click(ALICE, where, "incident_update")
    form = await page.modal(ALICE, "post_update")
    refused = await page.act("submit", ALICE, view_id=form["id"], values={"status": "identified"})
    assert not refused["submitted"]
    assert "investigation" in refused["errors"]
    values = {"status": "identified", "investigation": "Rolled back <deploy> & watching"}
    assert (await page.act("submit", ALICE, view_id=form["id"], values=values))["submitted"]
    await page.settle()
    shown = texts((await page.state(ALICE, room))["open"])
    assert "Rolled back &lt;deploy&gt; &amp; watching" in shown
    incidents = await page.channel_id(ALICE, "incidents")
    assert "Rolled back" in texts((await page.state(ALICE, incidents))["open"])

    # Carol pins a message of hers: it joins the timeline.
    said = await page.act("message", CAROL, channel=room, text="Error rate is back to 0.1%")
    await page.act("pin", CAROL, channel=room, ts=said["ts"])
    await page.settle()
    await page.command(ALICE, room, "/incident timeline")
    assert "Error rate is back" in texts((await page.state(ALICE, room))["open"])

    # Resolve through the resolution form, then the postmortem file.
    await page.click(ALICE, where, "incident_resolve")
    resolve = await page.modal(ALICE, "resolve_incident")
    values = {"root_cause": "A bad deploy", "impact_summary": "Checkout failed for 10%"}
    assert (await page.act("submit", ALICE, view_id=resolve["id"], values=values))["submitted"]
    await page.settle()
    await page.command(ALICE, room, "/incident postmortem")
    conversation = (await page.state(ALICE, room))["open"]
    [shared] = [f for m in conversation["messages"] for f in m["files"]]
    async with page.http.get(
        f"{page.url}/ui/files/{shared['id']}", params={"as": ALICE}
    ) as response:
        assert response.status == 200
        assert response.content_type == "text/plain"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in response.headers["Content-Security-Policy"]
        document = await response.text()
    assert "Checkout errors" in document and "A bad deploy" in document


async def test_the_home_tab_and_its_declare_form(either_page: Page) -> None:
    page = either_page
    await page.act("home", ALICE)
    await page.settle()
    home = (await page.state(ALICE))["home"]
    assert home["type"] == "home"
    await page.click(
        ALICE,
        {"kind": "view", "view_id": home["id"]},
        "home_declare",
        block_id=home["blocks"][1].get("block_id", ""),
    )
    form = await page.modal(ALICE, "declare_incident")
    # Slack's own check: the title is required.
    answer = await page.act("submit", ALICE, view_id=form["id"], values={"severity": "3"})
    assert answer["errors"] == {"title": "This field is required."}
    values = {"title": "Search is slow", "severity": "3", "commander": BOB}
    assert (await page.act("submit", ALICE, view_id=form["id"], values=values))["submitted"]
    await page.settle()
    await page.channel_id(ALICE, "incident-1")
    await page.act("home", BOB)
    await page.settle()
    assert "Search is slow" in json.dumps((await page.state(BOB))["home"]["blocks"])
    await page.act("close", ALICE, view_id=form["id"], status=400)


async def test_closing_a_form_and_someone_elses_form(page: Page) -> None:
    general = await page.channel_id(ALICE, "general")
    await page.command(ALICE, general, "/incident declare")
    form = await page.modal(ALICE, "declare_incident")
    # Bob cannot submit or close Alice's form.
    await page.act("submit", BOB, view_id=form["id"], values={}, status=400)
    await page.act("close", BOB, view_id=form["id"], status=400)
    await page.act("close", ALICE, view_id=form["id"])
    assert (await page.state(ALICE))["modal"] is None


# --- time -----------------------------------------------------------------------------------


@pytest.fixture
async def fast_page(database_url: str) -> AsyncIterator[Page]:
    async for running in start_page(database_url, speed=60):
        yield running


async def test_at_speed_60_an_unacknowledged_sev2_reaches_the_backup_within_seconds(
    fast_page: Page,
) -> None:
    page = fast_page
    general = await page.channel_id(ALICE, "general")
    started = time.monotonic()
    await page.command(ALICE, general, "/incident declare sev2 Nobody answers")
    room = await page.channel_id(ALICE, "incident-1")

    async def carol_paged() -> bool:
        state = await page.state(CAROL, room)
        return CAROL in (state["open"] or {}).get("members", [])

    await eventually_async(carol_paged, timeout=12)
    elapsed = time.monotonic() - started
    assert 4 <= elapsed <= 10, f"the 5-minute step came after {elapsed:.1f} s"

    # The step invites the backup and sends the DM side by side: the DM may land just after.
    async def carol_dms() -> list[dict[str, Any]]:
        return [c for c in (await page.state(CAROL))["channels"] if c["kind"] == "im"]

    dms = await eventually_async(carol_dms, timeout=10)
    shown = texts((await page.state(CAROL, dms[0]["id"]))["open"])
    assert "No acknowledgment after 5 minutes" in shown
    assert (await page.state(CAROL))["clock"]["speed"] == 60


async def test_a_restart_keeps_the_workspace_and_its_clock(
    database_url: str, tmp_path: Path
) -> None:
    kept = tmp_path / "sandbox.slack.json"
    async for page in start_page(database_url, speed=60, state_file=kept):
        general = await page.channel_id(ALICE, "general")
        await page.command(ALICE, general, "/incident declare sev3 Before the restart")
        room = await page.channel_id(ALICE, "incident-1")
        said = await page.act("message", BOB, channel=room, text="on it")
        left_at = page.sandbox.clock.epoch()
    assert kept.exists()
    async for page in start_page(database_url, state_file=kept):
        assert page.sandbox.clock.epoch() >= left_at
        assert await page.channel_id(ALICE, "incident-1") == room
        conversation = (await page.state(ALICE, room))["open"]
        assert said["ts"] in [m["ts"] for m in conversation["messages"]]
        assert conversation["pins"], "the Initial Notification is still pinned"
        await page.command(ALICE, general, "/incident declare sev3 After the restart")
        await page.channel_id(ALICE, "incident-2")
    # A workspace file that cannot be read is left aside: the sandbox starts afresh.
    kept.write_text("{not json")
    async for page in start_page(database_url, state_file=kept):
        assert [c["name"] for c in (await page.state(ALICE))["channels"]] == [
            "general",
            "incidents",
        ]


def test_the_workspace_is_kept_next_to_a_sqlite_file_or_nowhere(tmp_path: Path) -> None:
    database = tmp_path / "s.db"
    url = f"sqlite+aiosqlite:///{database}"
    (tmp_path / "s.slack.json").write_text("{}")
    # Kept from a database that is gone: it does not match a new one.
    assert workspace_file(url) == tmp_path / "s.slack.json"
    assert not (tmp_path / "s.slack.json").exists()
    database.write_text("")
    (tmp_path / "s.slack.json").write_text("{}")
    assert workspace_file(url) == tmp_path / "s.slack.json"
    assert (tmp_path / "s.slack.json").exists()
    assert workspace_file("sqlite+aiosqlite:///:memory:") is None
    assert workspace_file("postgresql+asyncpg://h/db") == Path("warroom-sandbox.slack.json")


# --- who is there -----------------------------------------------------------------------------


def test_a_policy_without_directory_gets_the_sandbox_cast_its_functions() -> None:
    cast = people.cast_for(Policy())
    assert cast.policy.directory.on_call_backup == [CAROL]
    assert cast.people[BOB].functions == ["on call"]
    assert cast.groups["SONCALL"].members == [BOB]


def test_people_the_policy_names_join_the_cast() -> None:
    policy = build_policy(
        {"directory": {"on_call": ["SPRIMARY"], "on_call_backup": ["U07BACKUP"], "ceo": [ALICE]}}
    )
    cast = people.cast_for(policy)
    assert cast.policy is policy
    assert cast.people["U07BACKUP"].name == "on-call-backup"
    assert cast.people["UPRIMARY"].functions == ["on call"]
    assert cast.groups["SPRIMARY"].members == ["UPRIMARY"]
    assert cast.people[ALICE].functions == ["CEO"]
    assert {"UALICE", "UBOB", "UCAROL", "UDAVE", "UERIN"} <= set(cast.people)


# --- what people type, and what the page accepts ------------------------------------------------


async def test_typed_text_reaches_slack_escaped_with_mentions_resolved(page: Page) -> None:
    ws = page.sandbox.workspace
    general = ws.channel_named("general")
    assert general is not None
    assert to_slack_text("a <b> & c", ws) == "a &lt;b&gt; &amp; c"
    assert to_slack_text("@bob and @oncall in #general", ws) == (
        f"<@UBOB|bob> and <!subteam^SONCALL|@oncall> in <#{general.id}|general>"
    )
    assert to_slack_text("@nobody #nowhere mail@bob.com #42", ws) == (
        "@nobody #nowhere mail@bob.com #42"
    )
    said = await page.act("message", ALICE, channel=general.id, text="<script>alert(1)</script>")
    message = ws.find_message(general.id, said["ts"])
    assert message is not None and message.text == "&lt;script&gt;alert(1)&lt;/script&gt;"


async def test_the_page_answers_only_this_machine_and_json(page: Page) -> None:
    async with page.http.get(f"{page.url}/", headers={"Host": "evil.example:80"}) as response:
        assert response.status == 403
    async with page.http.get(f"{page.url}/") as response:
        assert response.status == 200
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    form = aiohttp.FormData({"as": ALICE, "text": "/incident list"})
    async with page.http.post(f"{page.url}/ui/command", data=form) as response:
        assert response.status == 415
    async with page.http.post(
        f"{page.url}/ui/command",
        json={"as": ALICE, "channel": "C1", "text": "/incident list"},
        headers={"Origin": "https://evil.example"},
    ) as response:
        assert response.status == 403
    async with page.http.get(f"{page.url}/static/..%2fui.py") as response:
        assert response.status == 404


async def test_only_incident_commands_and_no_posting_to_the_app(page: Page) -> None:
    general = await page.channel_id(ALICE, "general")
    refused = await page.act("command", ALICE, channel=general, text="/remind me", status=400)
    assert "only /incident" in refused["error"]
    await page.act("home", ALICE)
    dm = next(c for c in (await page.state(ALICE))["channels"] if c["kind"] == "im")
    refused = await page.act("message", ALICE, channel=dm["id"], text="hi", status=400)
    assert refused["error"] == "Sending messages to this app has been turned off."
    # Someone else's direct messages do not exist for Bob.
    await page.act("message", BOB, channel=dm["id"], text="hi", status=400)


def test_required_fields_and_lengths_are_checked_as_slack_does() -> None:
    view = {
        "blocks": [
            {
                "type": "input",
                "block_id": "title",
                "element": {"type": "plain_text_input", "action_id": "t", "max_length": 5},
            },
            {
                "type": "input",
                "block_id": "who",
                "optional": True,
                "element": {"type": "multi_users_select", "action_id": "w"},
            },
            {
                "type": "input",
                "block_id": "when",
                "element": {"type": "datepicker", "action_id": "d"},
            },
        ]
    }

    class Users:
        users = {"UBOB": type("U", (), {"is_bot": False})()}
        channels: dict[str, Any] = {}

    state, errors = form_state(view, {"title": "too long", "who": ["UBOB", "UNOBODY"]}, Users())  # type: ignore[arg-type]
    assert errors == {"title": "Use 5 characters or fewer.", "when": "This field is required."}
    assert state["who"]["w"] == {"type": "multi_users_select", "selected_users": ["UBOB"]}
    state, errors = form_state(view, {"title": "ok", "when": "2025-12-01"}, Users())  # type: ignore[arg-type]
    assert errors == {}
    assert state["when"]["d"] == {"type": "datepicker", "selected_date": "2025-12-01"}


# --- the page draws everything the bot sends ---------------------------------------------------


def _declared(name: str) -> set[str]:
    source = (STATIC / "blocks.js").read_text(encoding="utf-8")
    match = re.search(rf"export const {name} = (\[.*?\]);", source)
    assert match, f"{name} not found in blocks.js"
    return set(json.loads(match.group(1)))


def _types(blocks: Any, found: dict[str, set[str]]) -> None:
    """Collect block types and element types (accessories, actions, inputs, context parts)."""
    for block in blocks or []:
        found["blocks"].add(block["type"])
        elements = [*(block.get("elements") or [])]
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                elements.append(block[key])
        for element in elements:
            kind = element.get("type")
            if kind not in {"mrkdwn", "plain_text"}:
                found["elements"].add(kind)


# A status page, alert sources and a playbook with a checklist: every kind of message and
# form the bot builds has a way to be sent.
EVERYTHING = {
    "statuspage": {
        "enabled": True,
        "title": "Sandbox status",
        "components": {"api": {"name": "Public API"}},
    },
    "alerts": {"sources": SOURCES, "routes": DEFAULT_ROUTES},
    "playbooks": [
        {
            "name": "sev1-checklist",
            "when": {"event": ["declared"], "severity": [1]},
            "steps": [
                {
                    "checklist": [
                        {"text": "Check replication lag", "role": "tech_lead"},
                        {"text": "Freeze migrations", "role": "commander", "due_minutes": 10},
                    ]
                }
            ],
        }
    ],
}


@pytest.fixture
async def everything_page(database_url: str) -> AsyncIterator[Page]:
    async for running in start_page(
        database_url, policy=build_policy(EVERYTHING), alert_secrets=dict(SECRETS)
    ):
        yield running


def _in(conversation: dict[str, Any], marker: str) -> dict[str, Any]:
    """The last message of `conversation` whose blocks hold `marker` (an action_id)."""
    found = [m for m in conversation["messages"] if marker in json.dumps(m["blocks"])]
    assert found, f"no message with {marker}"
    return found[-1]


def _actions_block(message: dict[str, Any], action_id: str) -> str:
    return str(
        next(
            b.get("block_id", "")
            for b in message["blocks"]
            if action_id in json.dumps(b.get("elements") or b.get("accessory") or [])
        )
    )


async def _every_surface(page: Page) -> list[tuple[str, list[dict[str, Any]]]]:
    """Drive every surface the bot has: the declare form, the incident's buttons, commands,
    Home, action items and their reassign form, a playbook's checklist, an alert's triage card
    and its three forms, a public update's draft, its edit form and the decided draft, the
    resolution form and the resolved announcement. Returns every Block Kit payload the bot
    sent (messages, edits, private answers, forms, Home), each named by how it was sent."""
    general = await page.channel_id(ALICE, "general")
    await page.command(ALICE, general, "/incident declare")
    form = await page.modal(ALICE, "declare_incident")
    values = {"title": "Everything", "severity": "1", "private": ["private"]}
    assert (await page.act("submit", ALICE, view_id=form["id"], values=values))["submitted"]
    await page.settle()
    room = await page.channel_id(ALICE, "incident-1")
    for text in (
        "/incident ack",
        "/incident roles",
        "/incident update Looking",
        "/incident severity sev2",
        "/incident mitigate",
        "/incident action Add an alert @bob due 2030-01-01",
        "/incident actions",
        "/incident escalations",
        "/incident status",
        "/incident list",
        "/incident stats",
        "/incident help",
        "/incident retro",
        "/incident note A note",
    ):
        await page.command(ALICE, room, text)
    await page.act("close", ALICE, view_id=(await page.modal(ALICE, "assign_roles"))["id"])
    listed = (await page.state(ALICE, room))["open"]["ephemeral"]
    with_buttons = next(e for e in listed if "action_item_reassign" in json.dumps(e["blocks"]))
    await page.click(
        ALICE,
        {"kind": "ephemeral", "id": with_buttons["id"]},
        "action_item_reassign",
        block_id=_actions_block(with_buttons, "action_item_reassign"),
    )
    await page.act("close", ALICE, view_id=(await page.modal(ALICE, "reassign_action_item"))["id"])
    await page.act("home", ALICE)
    await page.settle()
    conversation = (await page.state(ALICE, room))["open"]
    checklist = _in(conversation, "checklist_done")
    notification = conversation["pins"][0]
    where = {"kind": "message", "channel": room, "ts": notification["ts"]}
    await page.click(ALICE, where, "incident_update")
    await page.act("close", ALICE, view_id=(await page.modal(ALICE, "post_update"))["id"])
    # An alert's triage card and its forms (attaching needs an open incident).
    page.sandbox.fake.add_channel("alerts", members=[ALICE], bot_member=True)
    assert page.sandbox.listener is not None
    base = f"http://127.0.0.1:{page.sandbox.listener.port}"
    now = page.sandbox.clock.now()
    payload = am_payload("DiskFull", [am_alert("DiskFull", "db1", now)])
    assert (await post_alerts(base, "prom", payload))[0] == 200
    await page.settle()
    alerts = await page.channel_id(ALICE, "alerts")
    card = await eventually_async(
        lambda: _card(page, alerts),
    )
    card_at = {"kind": "message", "channel": alerts, "ts": card["ts"]}
    block_id = _actions_block(card, "alert_declare")
    for action_id in ("alert_declare", "alert_attach", "alert_dismiss"):
        await page.click(ALICE, card_at, action_id, block_id=block_id)
        opened = await eventually_async(_any_modal(page, ALICE))
        if action_id == "alert_dismiss":
            values = {"reason": "Known flapping check"}
            answer = await page.act("submit", ALICE, view_id=opened["id"], values=values)
            assert answer["submitted"], answer
        else:
            await page.act("close", ALICE, view_id=opened["id"])
        await page.settle()

    await page.click(ALICE, where, "incident_resolve")
    resolve = await page.modal(ALICE, "resolve_incident")
    values = {"root_cause": "A bad deploy"}
    assert (await page.act("submit", ALICE, view_id=resolve["id"], values=values))["submitted"]
    await page.settle()

    # A public incident's draft for the status page, its edit form, the decided draft.
    await page.command(ALICE, general, "/incident declare sev1 Checkout down")
    draft = await eventually_async(lambda: _draft(page))
    draft_at = {"kind": "message", "channel": draft["channel"], "ts": draft["ts"]}
    await page.click(ALICE, draft_at, "public_edit", block_id="public_update_actions")
    edit = await page.modal(ALICE, "public_update_edit")
    values = {"title": "Checkout down", "status": "investigating", "body": "We are looking."}
    assert (await page.act("submit", ALICE, view_id=edit["id"], values=values))["submitted"]
    await page.settle()
    assert checklist and card

    sent: list[tuple[str, list[dict[str, Any]]]] = []
    fake = page.sandbox.fake
    for call in fake.calls:
        if call.method in {"chat.postMessage", "chat.update", "chat.postEphemeral"}:
            blocks = call.args.get("blocks")
            if blocks:
                sent.append(
                    (call.method, json.loads(blocks) if isinstance(blocks, str) else blocks)
                )
        if call.method.startswith("views."):
            view = call.args.get("view")
            view = json.loads(view) if isinstance(view, str) else view
            sent.append((f"{call.method} {view.get('callback_id', view['type'])}", view["blocks"]))
    for _, body in fake.responses:
        if body.get("blocks"):
            sent.append(("response_url", body["blocks"]))
    return sent


async def _card(page: Page, alerts: str) -> dict[str, Any] | None:
    conversation = (await page.state(ALICE, alerts))["open"]
    cards = [m for m in conversation["messages"] if "alert_declare" in json.dumps(m["blocks"])]
    return cards[-1] if cards else None


def _any_modal(page: Page, who: str) -> Any:
    async def opened() -> dict[str, Any] | None:
        modal: dict[str, Any] | None = (await page.state(who))["modal"]
        return modal

    return opened


async def _draft(page: Page) -> dict[str, Any] | None:
    for conversation in page.sandbox.fake.workspace.channels.values():
        if conversation.is_im and conversation.im_user == ALICE:
            for message in page.sandbox.fake.messages(conversation.id):
                if "public_update_actions" in json.dumps(message.blocks or []):
                    return {"channel": message.channel, "ts": message.ts}
    return None


def _forms_the_builders_make() -> set[str]:
    """The callback_id of every form app/slack/views.py and action_views.py build, read from
    their source: a new form is expected among those the drive opens."""
    from app.slack import action_views, views

    ids = set()
    for module in (views, action_views):
        source = Path(module.__file__ or "").read_text(encoding="utf-8")
        for name in re.findall(r"_modal\(\s*([A-Z_]+),", source):
            ids.add(getattr(module, name))
    return ids


async def test_the_page_knows_every_block_and_element_the_bot_sends(
    everything_page: Page,
) -> None:
    """Drive every surface, then check every block and element type the bot sent is one the
    page's renderer draws (no "Unsupported" placeholder), and that every form was opened."""
    sent = await _every_surface(everything_page)
    found: dict[str, set[str]] = {"blocks": set(), "elements": set()}
    for _, blocks in sent:
        _types(blocks, found)
    opened = {how.split(" ", 1)[1] for how, _ in sent if how.startswith("views.open")}
    assert _forms_the_builders_make() <= opened, _forms_the_builders_make() - opened
    shown = json.dumps([blocks for _, blocks in sent])
    for action_id in ("checklist_done", "alert_dismiss", "public_publish", "incident_ack"):
        assert action_id in shown, action_id
    assert {"header", "section", "actions", "input", "divider", "context"} <= found["blocks"]
    assert {"button", "users_select", "static_select", "checkboxes"} <= found["elements"]
    assert found["blocks"] - _declared("BLOCK_TYPES") == set()
    assert found["elements"] - _declared("ELEMENT_TYPES") == set()


async def test_the_page_draws_every_message_and_form_the_bot_sent(
    everything_page: Page,
) -> None:
    """What the bot really sent while driving every surface, drawn by the page's renderer in
    Chromium: nothing shows the "unsupported" placeholder or raw markup."""
    needs_browser()
    sent = await _every_surface(everything_page)
    assert len(sent) > 40
    with chromium() as driver:
        await asyncio.to_thread(driver.get, f"{everything_page.url}/")
        result = await asyncio.to_thread(render_in_page, driver, [], [b for _, b in sent])
    for (how, _), (shown, unsupported) in zip(sent, result["blocks"], strict=True):
        assert unsupported == 0, (how, shown)
        assert "<@" not in shown and "&amp;" not in shown, (how, shown)


async def test_the_status_page_the_sandbox_publishes_to(database_url: str) -> None:
    policy = build_policy(
        {
            "statuspage": {
                "enabled": True,
                "title": "Sandbox status",
                "components": {"api": {"name": "Public API"}},
            }
        }
    )
    async for page in start_page(database_url, policy=policy):
        async with page.http.get(f"{page.url}/status") as response:
            assert response.status == 200
            assert "All systems operational" in await response.text()
        general = await page.channel_id(ALICE, "general")
        await page.command(ALICE, general, "/incident declare sev1 Checkout down")

        async def draft(page: Page = page) -> Any:
            for conversation in page.sandbox.fake.workspace.channels.values():
                if conversation.is_im and conversation.im_user == ALICE:
                    for message in page.sandbox.fake.messages(conversation.id):
                        if "public_update_actions" in json.dumps(message.blocks or []):
                            return message
            return None

        message = await eventually_async(draft)
        where = {"kind": "message", "channel": message.channel, "ts": message.ts}
        await page.click(ALICE, where, "public_publish", block_id="public_update_actions")

        async def published(page: Page = page) -> bool:
            async with page.http.get(f"{page.url}/status.json") as response:
                return "We are investigating" in await response.text()

        await eventually_async(published)
