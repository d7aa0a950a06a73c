"""Paging through a signed webhook target: the ladder's pages, acknowledgment and resolution
following them, failures told in the war room, `/incident page`, drills and private incidents.

The receiver here checks every call's signature with the documented recipe (docs/paging.md),
written again in this file rather than imported, so a change to the recipe fails the test.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from sqlmodel import select

from app.checks import refused_pages, run_checks
from app.config import Settings
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.services.incidents import ResolveRequest
from app.store.migrate import upgrade
from app.store.models import EscalationRow, PagerCall
from tests.support.bot import Bot, start_bot
from tests.support.constants import (
    CEO,
    DAVE,
    ENG_LEAD,
    ENG_MGR,
    ONCALL_BACKUP,
    ONCALL_GROUP,
    SPECIALIST,
    VP_ENG,
    VP_OPS,
)
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, bot_messages, channel, last_view
from tests.support.servers import serving

SECRET = "hook-secret-0123456789abcdef"
BOB = "UBOB"


@dataclass
class Receiver:
    """A paging system's endpoint: answers `statuses` in turn (then 200), keeps what it took."""

    statuses: list[int] = field(default_factory=list)
    taken: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    bad_signatures: int = 0
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        stamp = request.headers.get("X-Warroom-Timestamp", "")
        expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256)
        if request.headers.get("X-Warroom-Signature") != f"v1={expected.hexdigest()}":
            self.bad_signatures += 1
            return web.Response(status=401)
        if self.statuses:
            self.refused += 1
            return web.Response(status=self.statuses.pop(0), text="not now")
        self.taken.append(json.loads(body))
        return web.json_response({"ok": True})

    def events(self, action: str | None = None) -> list[dict[str, Any]]:
        return [t for t in self.taken if action is None or t["event"] == action]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    found = Receiver()
    async with serving("/page", found.handle) as url:
        found.url = url
        yield found


def directory(**extra: list[str]) -> dict[str, list[str]]:
    base = {
        "on_call": [ONCALL_GROUP],
        "on_call_backup": ["pager:ops-hook", ONCALL_BACKUP],
        "engineering_lead": [ENG_LEAD],
        "ceo": [CEO],
        "vp_ops": [VP_OPS],
        "tech_lead": [DAVE],
        "engineering_manager": [ENG_MGR],
        "vp_engineering": [VP_ENG],
        "specialists": [SPECIALIST],
    }
    return base | extra


def paging_settings(
    fake: FakeSlack, database_url: str, url: str, **targets: dict[str, Any]
) -> Settings:
    hook = {
        "provider": "webhook",
        "label": "Ops hook",
        "url": url,
        "secret_env": "OPS_HOOK_SECRET",
    }
    policy = policy_with(
        directory=directory(),
        paging={"targets": {"ops-hook": hook, **targets}},
    )
    return replace(
        settings_for(fake, database_url),
        policy=policy,
        pager_secrets={"OPS_HOOK_SECRET": SECRET},
    )


@pytest.fixture
async def paged(
    fake: FakeSlack, database_url: str, clock: ManualClock, receiver: Receiver
) -> AsyncIterator[Bot]:
    settings = paging_settings(fake, database_url, receiver.url)
    async for running in start_bot(settings, fake, clock):
        yield running


async def tick_at(bot: Bot, minutes: float) -> None:
    bot.clock.set(bot.clock.now() + timedelta(minutes=minutes))
    await bot.warroom.engine.tick()
    await bot.settle()


async def calls(bot: Bot) -> list[PagerCall]:
    async with bot.warroom.db.session() as session:
        return list((await session.exec(select(PagerCall).order_by(PagerCall.id))).all())


async def declare(bot: Bot, text: str = "declare sev2 Checkout API returning 500s") -> str:
    status, _ = await bot.slack.command(text)
    assert status == 200
    await bot.settle()
    return channel(bot.fake, "incident-1").id


def room_text(bot: Bot, room: str) -> str:
    return "\n".join(m.text for m in bot_messages(bot.fake, room))


async def test_ladder_pages_the_pager_then_acknowledge_and_resolve_follow(
    paged: Bot, receiver: Receiver
) -> None:
    room = await declare(paged)
    assert receiver.events() == []  # Sev2's declaration pages people, not this pager
    await tick_at(paged, 5)
    triggers = receiver.events("trigger")
    assert len(triggers) == 1
    trigger = triggers[0]
    assert trigger["dedup_key"] == "warroom-incident-1-ops-hook"
    assert trigger["incident"] == {
        "id": 1,
        "severity": 2,
        "summary": "[Sev2] Incident #1: Checkout API returning 500s",
    }
    assert trigger["target"] == "ops-hook" and trigger["version"] == "1"
    assert trigger["links"][0]["href"].endswith(f"channel={room}")
    assert "escalation step 1" in trigger["details"]["reason"]
    assert ":pager: Paging: Ops hook (webhook)" in room_text(paged, room)
    # The step's Slack side went out as before.
    assert any("Escalation step 1" in m.text for m in bot_messages(paged.fake, room))

    # A second tick (and a replayed plan) pages nobody again.
    await tick_at(paged, 1)
    assert len(receiver.events("trigger")) == 1

    await paged.slack.command("ack", channel=room)
    await paged.settle()
    acks = receiver.events("acknowledge")
    assert [a["dedup_key"] for a in acks] == ["warroom-incident-1-ops-hook"]

    await paged.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="bad deploy"), "UALICE")
    await paged.settle()
    assert [t["event"] for t in receiver.taken] == ["trigger", "acknowledge", "resolve"]
    assert receiver.bad_signatures == 0
    assert {c.state for c in await calls(paged)} == {"sent"}

    text = await paged.warroom.bot.flows.escalations_text(1)
    assert "Ops hook (webhook): trigger *sent*" in text
    assert "resolve *sent*" in text


async def test_an_outage_is_retried_until_it_goes_through_and_told_once(
    paged: Bot, receiver: Receiver
) -> None:
    room = await declare(paged)
    receiver.statuses = [503, 502, 500, 429, 503]
    await tick_at(paged, 5)
    for _ in range(8):
        await tick_at(paged, 10)
    assert receiver.refused == 5
    assert len(receiver.events("trigger")) == 1
    told = [m for m in bot_messages(paged.fake, room) if "is not taking the page" in m.text]
    assert len(told) == 1
    assert "Ops hook (webhook)" in told[0].text
    (call,) = await calls(paged)
    assert call.state == "sent" and call.attempts == 5


async def test_a_refused_secret_is_told_kept_and_reported_by_check(
    paged: Bot, receiver: Receiver
) -> None:
    room = await declare(paged)
    receiver.statuses = [401, 401, 401]
    await tick_at(paged, 5)
    await tick_at(paged, 3)
    await tick_at(paged, 3)
    told = [m for m in bot_messages(paged.fake, room) if "refuses Warroom's key" in m.text]
    assert len(told) == 1
    problems = await refused_pages(paged.warroom.db)
    assert len(problems) == 1 and "ops-hook" in problems[0][0]
    assert receiver.events() == []
    # Fixed at the other end: the page goes out at the next try.
    await tick_at(paged, 3)
    assert len(receiver.events("trigger")) == 1
    assert await refused_pages(paged.warroom.db) == []


async def test_an_invalid_call_is_not_retried_and_people_hear_why(
    paged: Bot, receiver: Receiver
) -> None:
    room = await declare(paged)
    receiver.statuses = [422]
    await tick_at(paged, 5)
    await tick_at(paged, 10)
    assert receiver.refused == 1 and receiver.events() == []
    (call,) = await calls(paged)
    assert call.state == "failed" and "HTTP 422" in call.outcome
    assert "refused to trigger the page" in room_text(paged, room)


async def test_page_by_hand_is_restricted_once_per_request_and_says_so(
    paged: Bot, receiver: Receiver
) -> None:
    room = await declare(paged)
    # Bob holds no role: paging is restricted like reassigning roles.
    await paged.slack.command("page ops-hook please", user=BOB, channel=room)
    await paged.settle()
    assert receiver.events() == []
    assert answers(paged.fake)[-1] == (
        ":no_entry_sign: Only the people running incident #1 (<@UALICE>) may page people's "
        "pagers for it."
    )

    await paged.slack.command("page nosuch", channel=room)
    await paged.settle()
    assert "no pager target `nosuch`" in answers(paged.fake)[-1]

    fields = {
        "token": "legacy-unused",
        "team_id": "T1",
        "channel_id": room,
        "user_id": "UALICE",
        "command": "/incident",
        "text": "page ops-hook DB primary <down> & *failing over*",
        "response_url": paged.fake.new_response_url(),
        "trigger_id": paged.fake.new_trigger_id(),
    }
    for _ in range(2):  # the same request twice (a retry): one page
        status, _ = await paged.slack.post_form(fields)
        assert status == 200
        await paged.settle()
    (trigger,) = receiver.events("trigger")
    assert trigger["message"] == "DB primary <down> & *failing over*"
    said = [m.text for m in bot_messages(paged.fake, room) if "paged *Ops hook" in m.text]
    assert len(said) == 1
    assert "DB primary &lt;down&gt; &amp;" in said[0]
    assert ":pager: Paged Ops hook (webhook)." in answers(paged.fake)


async def test_drills_never_page(paged: Bot, receiver: Receiver) -> None:
    await paged.slack.command("drill sev1 Practice run")
    await paged.settle()
    await tick_at(paged, 40)
    assert receiver.events() == []
    async with paged.warroom.db.session() as session:
        rows = (await session.exec(select(EscalationRow))).all()
    assert rows  # the drill's ladder did run
    assert await calls(paged) == []


async def test_a_private_incident_is_paged_without_its_title(
    paged: Bot, receiver: Receiver
) -> None:
    await paged.slack.command("declare")
    await paged.settle()
    view = last_view(paged.fake, "declare_incident")
    await paged.slack.submit(
        view, {"title": "Secret breach at vendor X", "severity": "2", "private": ["private"]}
    )
    await paged.settle()
    await tick_at(paged, 5)
    (trigger,) = receiver.events("trigger")
    assert "breach" not in json.dumps(trigger)
    assert trigger["incident"]["summary"] == "[Sev2] Private incident #1: join its war room"


async def test_check_validates_targets_and_live_sends_a_test_call(
    fake: FakeSlack,
    database_url: str,
    receiver: Receiver,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = paging_settings(
        fake,
        database_url,
        receiver.url,
        pd={"provider": "pagerduty", "routing_key_env": "PD_KEY"},
        og={"provider": "opsgenie", "api_key_env": "OG_KEY"},
    )
    settings = replace(settings, pager_secrets={**settings.pager_secrets, "PD_KEY": "too-short"})
    await upgrade(settings.database_url)
    assert await run_checks(settings, live=True) == 1
    out = capsys.readouterr().out
    assert "FAIL pager target 'og': OG_KEY is not set" in out
    assert "FAIL pager target 'pd': PD_KEY holds 9 characters" in out
    assert "PAGERDUTY_WEBHOOK_SECRET is not set: acknowledgments made in PagerDuty" in out
    assert "ok   pager target 'ops-hook': test call accepted by the webhook (HTTP 200)" in out
    (test_call,) = receiver.events("test")
    assert test_call["dedup_key"] == "warroom-test"
    assert "too-short" not in out  # no secret value shown

    receiver.statuses = [401]
    assert await run_checks(settings, live=True) == 1
    assert "FAIL pager target 'ops-hook': test call failed: The webhook answered HTTP 401" in (
        capsys.readouterr().out
    )
