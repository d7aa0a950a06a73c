"""Paging through PagerDuty and Opsgenie, against local fakes of their published APIs: the
ladder story with flaky providers (every page delivered once, resolved at the end), a
signed PagerDuty acknowledgment cancelling the five-minute step, signatures refused, a lost
answer after the provider took the page, and a routing key PagerDuty does not know."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from sqlmodel import select

from app.fake_pagers import FakeOpsgenie, FakePagerDuty, sign
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.services.incidents import ResolveRequest
from app.store.models import EscalationRow
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
from tests.support.helpers import bot_messages, channel

ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"
GENIE_KEY = "11111111-2222-3333-4444-555555555555"
HOOK_SECRET = "pd-webhook-secret-abc"
USERS = ["UALICE", "UBOB", "UCAROL", "UDAVE"]


@pytest.fixture
async def pagerduty() -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty(events_per_minute=None, seed=7)
    fake.add_service(ROUTING_KEY, "Payments")
    async with fake:
        yield fake


@pytest.fixture
async def opsgenie() -> AsyncIterator[FakeOpsgenie]:
    fake = FakeOpsgenie(seed=7)
    fake.add_key(GENIE_KEY)
    async with fake:
        yield fake


@pytest.fixture
async def bot(
    fake: FakeSlack,
    database_url: str,
    clock: ManualClock,
    pagerduty: FakePagerDuty,
    opsgenie: FakeOpsgenie,
) -> AsyncIterator[Bot]:
    policy = policy_with(
        directory={
            "on_call": [ONCALL_GROUP],
            "on_call_backup": ["pager:payments", "pager:backup", ONCALL_BACKUP],
            "engineering_lead": [ENG_LEAD],
            "ceo": [CEO],
            "vp_ops": [VP_OPS],
            "tech_lead": [DAVE],
            "engineering_manager": [ENG_MGR],
            "vp_engineering": [VP_ENG],
            "specialists": [SPECIALIST],
        },
        paging={
            "targets": {
                "payments": {
                    "provider": "pagerduty",
                    "label": "Payments primary",
                    "routing_key_env": "PD_PAYMENTS_KEY",
                    "base_url": pagerduty.url,
                },
                "backup": {
                    "provider": "opsgenie",
                    "label": "Payments backup",
                    "api_key_env": "OPSGENIE_KEY",
                    "base_url": opsgenie.url,
                    "responders": [{"type": "team", "name": "payments"}],
                },
            }
        },
    )
    settings = replace(
        settings_for(fake, database_url),
        policy=policy,
        pager_secrets={
            "PD_PAYMENTS_KEY": ROUTING_KEY,
            "OPSGENIE_KEY": GENIE_KEY,
            "PAGERDUTY_WEBHOOK_SECRET": HOOK_SECRET,
        },
    )
    async for running in start_bot(settings, fake, clock):
        yield running


def webhook_url(bot: Bot) -> str:
    return bot.url.removesuffix("/slack/events") + "/webhooks/pagerduty"


def key(incident: int, target: str) -> str:
    return f"warroom-incident-{incident}-{target}"


async def tick(bot: Bot, minutes: float) -> None:
    bot.clock.set(bot.clock.now() + timedelta(minutes=minutes))
    await bot.warroom.engine.tick()
    await bot.settle()


async def declare(bot: Bot, user: str, title: str) -> None:
    status, _ = await bot.slack.command(f"declare sev2 {title}", user=user)
    assert status == 200
    await bot.settle()


async def test_flaky_providers_still_get_every_page_once_and_every_page_resolved(
    bot: Bot, pagerduty: FakePagerDuty, opsgenie: FakeOpsgenie
) -> None:
    for number, user in enumerate(USERS, start=1):
        await declare(bot, user, f"Checkout region {number} failing")
    pagerduty.random_failures(
        rate=0.2, seed=3, kinds=("500", "503", "429", "drop", "drop_after"), routes=["enqueue"]
    )
    opsgenie.random_failures(rate=0.2, seed=4, kinds=("500", "503", "429", "drop", "drop_after"))
    await tick(bot, 5)  # no acknowledgment: step 1 pages both pagers of each incident
    for _ in range(20):
        await tick(bot, 2)
    for number in range(1, len(USERS) + 1):
        (page,) = pagerduty.incidents(key(number, "payments"))
        assert page.title == f"[Sev2] Incident #{number}: Checkout region {number} failing"
        assert page.severity == "error"
        (alert,) = opsgenie.alerts(key(number, "backup"))
        assert alert.priority == "P2" and alert.responders == [{"type": "team", "name": "payments"}]
    assert any(c.fault for c in pagerduty.calls) and any(c.fault for c in opsgenie.calls)

    for number, user in enumerate(USERS, start=1):
        await bot.warroom.bot.flows.resolve(number, ResolveRequest(root_cause="fixed"), user)
        await bot.settle()
    for _ in range(20):
        await tick(bot, 2)
    for number in range(1, len(USERS) + 1):
        assert [p.status for p in pagerduty.incidents(key(number, "payments"))] == ["resolved"]
        assert [a.status for a in opsgenie.alerts(key(number, "backup"))] == ["closed"]
    calls = [
        c for n in range(1, len(USERS) + 1) for c in await bot.warroom.bot.flows.paging.calls(n)
    ]
    assert {(c.action, c.state) for c in calls} == {("trigger", "sent"), ("resolve", "sent")}


async def test_a_signed_pagerduty_acknowledgment_cancels_the_five_minute_step(
    bot: Bot, pagerduty: FakePagerDuty, opsgenie: FakeOpsgenie
) -> None:
    subscription = pagerduty.subscribe(webhook_url(bot), HOOK_SECRET)
    await declare(bot, "UALICE", "Checkout API returning 500s")
    room = channel(bot.fake, "incident-1").id
    await tick(bot, 1)
    await bot.slack.command("page payments DB primary down", channel=room)
    await bot.settle()
    (page,) = pagerduty.incidents(key(1, "payments"))
    assert page.status == "triggered"

    # Unsigned and wrongly signed deliveries change nothing.
    body = pagerduty.webhook_body("incident.acknowledged", page, "Mallory")
    raw = json.dumps(body).encode()
    async with aiohttp.ClientSession() as session:
        for headers in ({}, {"X-PagerDuty-Signature": sign(raw, ["not-the-secret"])}):
            async with session.post(webhook_url(bot), data=raw, headers=headers) as response:
                assert response.status == 401
    assert (await bot.warroom.incidents.snapshot(1)).acknowledged_at is None

    # During a secret rotation PagerDuty signs with both; the old one still matches.
    pagerduty.rotate_secret(subscription, "the-new-secret")
    (delivery,) = await pagerduty.acknowledge(key(1, "payments"), by="Jane Doe")
    assert delivery.status == 200
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.acknowledged_by == "Jane Doe (in PagerDuty)"
    said = "\n".join(m.text for m in bot_messages(bot.fake, room))
    assert "acknowledged in PagerDuty by Jane Doe" in said

    await tick(bot, 5)  # past the five-minute step: it was cancelled, nothing escalates
    async with bot.warroom.db.session() as session:
        step = (
            await session.exec(select(EscalationRow).where(EscalationRow.key == "ladder:1"))
        ).one()
    assert step.state == "cancelled" and step.outcome == "acknowledged"
    assert not any("Escalation step 1" in m.text for m in bot_messages(bot.fake, room))
    assert opsgenie.alerts() == []  # the backup pager was never needed
    # The page acknowledged on the phone is not acknowledged again from Warroom.
    assert [e.action for e in pagerduty.events] == ["trigger"]

    # The same delivery again (PagerDuty delivers at least once) does nothing more.
    again = await pagerduty.redeliver(delivery)
    assert again.status == 200
    await bot.settle()
    text = await bot.warroom.bot.flows.escalations_text(1)
    assert "acknowledged by Jane Doe" in text


async def test_an_answer_lost_after_pagerduty_took_the_page_pages_once(
    bot: Bot, pagerduty: FakePagerDuty
) -> None:
    await declare(bot, "UALICE", "Checkout API returning 500s")
    pagerduty.drop_next(1, after_processing=True)
    await tick(bot, 5)
    await tick(bot, 1)
    (page,) = pagerduty.incidents(key(1, "payments"))
    assert [e.outcome for e in page.events] == ["created", "appended"]
    (trigger,) = [c for c in await bot.warroom.bot.flows.paging.calls(1) if c.target == "payments"]
    assert trigger.state == "sent" and trigger.attempts == 1


async def test_a_routing_key_pagerduty_does_not_know_is_said_not_retried_blindly(
    fake: FakeSlack, database_url: str, clock: ManualClock, pagerduty: FakePagerDuty
) -> None:
    policy = policy_with(
        directory={"on_call_backup": ["pager:payments"], "tech_lead": [DAVE]},
        paging={
            "targets": {
                "payments": {
                    "provider": "pagerduty",
                    "routing_key_env": "PD_KEY",
                    "base_url": pagerduty.url,
                }
            }
        },
    )
    settings = replace(
        settings_for(fake, database_url),
        policy=policy,
        pager_secrets={"PD_KEY": "X" * 32},
    )
    async for bot in start_bot(settings, fake, clock):
        await declare(bot, "UALICE", "Checkout API returning 500s")
        room = channel(bot.fake, "incident-1").id
        await tick(bot, 5)
        await tick(bot, 3)
        told = [m.text for m in bot_messages(bot.fake, room) if "refuses Warroom's key" in m.text]
        assert len(told) == 1 and "PD_KEY" in told[0]
        (call,) = await bot.warroom.bot.flows.paging.calls(1)
        assert call.state == "pending" and call.attempts == 2
        assert pagerduty.incidents() == []


async def test_an_acknowledgment_without_an_incident_key_is_found_by_its_title(
    bot: Bot, pagerduty: FakePagerDuty
) -> None:
    """PagerDuty leaves `incident_key` null on some incidents opened through the Events API:
    the title (the page's summary) names the incident."""
    pagerduty.webhooks.incident_key = False
    pagerduty.subscribe(webhook_url(bot), HOOK_SECRET)
    await declare(bot, "UALICE", "Checkout API returning 500s")
    await tick(bot, 5)
    (delivery,) = await pagerduty.acknowledge(key(1, "payments"), by="Jane Doe")
    assert json.loads(delivery.body)["event"]["data"]["incident_key"] is None
    assert delivery.status == 200
    await bot.settle()
    assert (await bot.warroom.incidents.snapshot(1)).acknowledged_by == "Jane Doe (in PagerDuty)"
