"""The public status page as a visitor meets it, during and after an incident run through a
real `warroom serve --http` (signed Slack requests, the fake Slack), with the page on its own
port (`WARROOM_STATUS_PORT`), read by Debian's Chromium.

What a person published shows, hostile text as text; a draft, a skipped draft and a private
incident never appear on the page, in /status.json or in the Atom feed.

Needs /usr/bin/chromium and /usr/bin/chromedriver (skipped without them, except in CI).
With WARROOM_SCREENSHOTS=<folder>, saves `status-page-live.png` for the docs.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import feedparser
import jsonschema

from app.fake_slack import FakeSlack
from app.services.status_updates import PUBLISH_BUTTON, SKIP_BUTTON
from tests.support.browser import chromium, needs_browser, screenshot
from tests.support.constants import ALICE, BOT_TOKEN, SIGNING_SECRET
from tests.support.processes import clean_env, free_port, serving
from tests.support.slackclient import SlackSender, eventually

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> Fixed & monitoring"
DRAFT_WORDS = "Zebra-draft-never-public"
SKIPPED_WORDS = "Quokka-skipped-text"
PRIVATE_TITLE = "Walrus private breach"

POLICY = """
[workspace]
templates_dir = "{templates}"

[statuspage]
enabled = true
title = "Acme status"
url = "https://status.acme.example"
accent_colour = "#0b5cad"

[statuspage.components.api]
name = "Public API"
group = "Platform"

[statuspage.components.checkout]
name = "Checkout"
description = "Paying for orders"
"""


def _drafts(fake: FakeSlack, user: str) -> list[dict[str, Any]]:
    out = []
    for conv in fake.workspace.channels.values():
        if not (conv.is_im and conv.im_user == user):
            continue
        for message in fake.messages(conv.id):
            for block in message.blocks or []:
                if block.get("block_id") == "public_update_actions":
                    out.append(
                        {
                            "value": block["elements"][0]["value"],
                            "channel": message.channel,
                            "ts": message.ts,
                            "text": message.text,
                        }
                    )
    return out


async def _fetch(base: str, path: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(f"{base}{path}") as response:
        assert response.status == 200, (path, response.status)
        return await response.text()


async def test_a_visitor_sees_only_what_was_published(tmp_path: Path, fake: FakeSlack) -> None:
    needs_browser()
    # Drafts say which change they follow, so one that was never published is recognisable.
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "public_update.md.j2").write_text(
        "Marker {{ reason | upper }}: {{ components | map(attribute='name') | join(', ') }}."
    )
    (tmp_path / "warroom.toml").write_text(POLICY.replace("{templates}", str(templates)))
    status_port = free_port()
    env = clean_env(
        tmp_path,
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=fake.api_url,
        WARROOM_CONFIG=str(tmp_path / "warroom.toml"),
        WARROOM_STATUS_HOST="127.0.0.1",
        WARROOM_STATUS_PORT=str(status_port),
    )
    public = f"http://127.0.0.1:{status_port}"
    async with serving(env, tmp_path, free_port()) as served:
        async with SlackSender(f"{served.base}/slack/events", SIGNING_SECRET, fake) as sender:

            async def command(text: str, channel: str = "CGENERAL") -> None:
                status, _ = await sender.command(text, user=ALICE, channel=channel)
                assert status == 200

            async def click(action: str, draft: dict[str, Any]) -> None:
                status, _ = await sender.click(
                    action,
                    draft["value"],
                    user=ALICE,
                    channel=draft["channel"],
                    message_ts=draft["ts"],
                )
                assert status == 200

            # A private incident: never drafted, never public.
            await command("declare")
            await eventually(
                lambda: any(
                    v.get("callback_id") == "declare_incident" for v in fake.views.values()
                ),
                10,
            )
            view = next(
                v for v in fake.views.values() if v.get("callback_id") == "declare_incident"
            )
            await sender.submit(
                view, {"title": PRIVATE_TITLE, "severity": "1", "private": ["private"]}
            )
            await eventually(lambda: fake.channel_by_name("incident-1") is not None, 10)

            await command("declare sev2 Checkout 500s from db-7")
            await eventually(lambda: fake.channel_by_name("incident-2") is not None, 10)
            room = fake.channel_by_name("incident-2")
            assert room is not None
            seen: set[str] = set()

            async def new_draft() -> dict[str, Any]:
                found = await eventually(
                    lambda: [d for d in _drafts(fake, ALICE) if d["value"] not in seen], 10
                )
                seen.add(found[0]["value"])
                return dict(found[0])

            # The declaration's draft is published.
            await click(PUBLISH_BUTTON, await new_draft())
            await command("components checkout:major api", channel=room.id)
            # An update's draft is skipped.
            await command(f"update {SKIPPED_WORDS}", channel=room.id)
            await click(SKIP_BUTTON, await new_draft())
            # Published by hand, with hostile text.
            await command(f"publish {HOSTILE}", channel=room.id)
            # A draft left waiting.
            await command(f"update {DRAFT_WORDS}", channel=room.id)
            await new_draft()

            async def shows(words: str) -> bool:
                return words in await _fetch(public, "/status.json")

            for _ in range(100):
                if await shows("Fixed & monitoring"):
                    break
                await asyncio.sleep(0.1)

            html = await _fetch(public, "/status")
            during_json = await _fetch(public, "/status.json")
            atom = await _fetch(public, "/status/feed.atom")
            for text in (html, during_json, atom):
                for secret in (DRAFT_WORDS, SKIPPED_WORDS, PRIVATE_TITLE, "Walrus", "db-7"):
                    assert secret not in text
                # The skipped draft and the waiting one followed updates; neither is public.
                assert "Marker UPDATE" not in text
            assert "Marker DECLARED" in during_json
            assert "<script>alert" not in html and "&lt;script&gt;" in html
            data = json.loads(during_json)
            schema = json.loads((ROOT / "docs/status.schema.json").read_text())
            jsonschema.validate(data, schema)
            (ongoing,) = [i for i in data["incidents"] if i["status"] != "resolved"]
            assert ongoing["updates"][0]["body"] == HOSTILE
            feed = feedparser.parse(atom)
            assert not feed.bozo and len(feed.entries) == 2

            with chromium() as driver:
                driver.get(f"{public}/status")
                body = driver.find_element("tag name", "body").text
                assert "Acme status" in body
                assert "Checkout" in body and "Major outage" in body
                assert "<script>alert('x')</script>" in body  # shown as text
                assert driver.find_elements("css selector", "main img[src='x']") == []
                for secret in (DRAFT_WORDS, SKIPPED_WORDS, PRIVATE_TITLE, "Marker UPDATE"):
                    assert secret not in driver.page_source
                screenshot(driver, "status-page-live", full_page=True)

                # Resolve, publish the resolution: the page is green again, the incident in
                # the history.
                await command("resolve", channel=room.id)
                await eventually(
                    lambda: any(
                        v.get("callback_id") == "resolve_incident" for v in fake.views.values()
                    ),
                    10,
                )
                resolve_view = next(
                    v for v in fake.views.values() if v.get("callback_id") == "resolve_incident"
                )
                await sender.submit(resolve_view, {"root_cause": "bad pool size"})
                await click(PUBLISH_BUTTON, await new_draft())
                for _ in range(100):
                    if "All systems operational" in await _fetch(public, "/status"):
                        break
                    await asyncio.sleep(0.1)
                # The browser keeps the page for its max-age; a visitor reloading later sees it.
                driver.get(f"{public}/status?after=resolution")
                body = driver.find_element("tag name", "body").text
                assert "All systems operational" in body
                assert "Marker RESOLVED" in driver.page_source
                assert "Marker UPDATE" not in driver.page_source
