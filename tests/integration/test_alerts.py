"""Alert webhooks over real HTTP into the real bot, against the fake Slack and a real database:
what is refused, what is stored, the triage card, auto-declare and the incident's channel."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, func, select

from app.config import Settings
from app.fake_slack import FakeSlack
from app.messages import blocks
from app.services.clock import ManualClock
from app.services.postmortem import render_postmortem
from app.store.models import AlertGroup, AlertRow, Incident, TimelineEvent
from tests.support.alerts import (
    GRAFANA_TOKEN,
    HOOK_SECRET,
    add_triage_channel,
    am_alert,
    am_payload,
    base_of,
    post_alerts,
    with_alerts,
)
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE
from tests.support.helpers import answers, bot_messages, channel, last_view
from tests.support.slackclient import eventually

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "alerts"


@pytest.fixture
async def alerting(settings: Settings, fake: FakeSlack, clock: ManualClock) -> AsyncIterator[Bot]:
    add_triage_channel(fake)
    async for running in start_bot(with_alerts(settings), fake, clock):
        yield running


async def count(bot: Bot, model: Any) -> int:
    async with bot.warroom.db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


def cards(bot: Bot) -> list[Any]:
    return bot_messages(bot.fake, channel(bot.fake, "alerts").id)


async def test_refusals_say_why_and_store_nothing(alerting: Bot) -> None:
    base = base_of(alerting.url)
    payload = am_payload("DiskFull", [am_alert("DiskFull", "db1", alerting.clock.now())])
    assert (await post_alerts(base, "nope", payload))[0] == 404
    status, body = await post_alerts(base, "prom", payload, token="wrong")
    assert (status, body["error"]) == (401, "missing or wrong Bearer token")
    assert (await post_alerts(base, "prom", payload, token=None))[0] == 401
    status, body = await post_alerts(base, "prom", b"{not json")
    assert (status, body["error"]) == (400, "body is not JSON")
    status, body = await post_alerts(base, "prom", {"alerts": "many"})
    assert status == 400 and "alerts must be a list" in body["error"]
    big = b'{"alerts": [], "pad": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert (await post_alerts(base, "prom", big))[0] == 413
    assert await count(alerting, AlertGroup) == 0
    assert await count(alerting, AlertRow) == 0


async def test_one_card_per_group_edited_in_place_through_a_partial_resolve(alerting: Bot) -> None:
    base, now = base_of(alerting.url), alerting.clock.now() - timedelta(minutes=5)
    one, two = am_alert("DiskFull", "db1", now), am_alert("DiskFull", "db2", now)
    first = am_payload("DiskFull", [one, two])
    assert (await post_alerts(base, "prom", first))[0] == 200
    await alerting.settle()
    [card] = await eventually(lambda: cards(alerting))
    assert "*2* firing" in card.text and "DiskFull on db1" in card.text
    actions = next(b for b in card.blocks or [] if b["type"] == "actions")
    assert [e["action_id"] for e in actions["elements"]] == [
        "alert_declare",
        "alert_attach",
        "alert_dismiss",
    ]
    # The same webhook again (a retry, a repeat_interval re-send) changes nothing.
    status, body = await post_alerts(base, "prom", first)
    assert status == 200 and body["changed"] is False
    await alerting.settle()
    assert not cards(alerting)[0].edited

    # Alertmanager's sequence: still firing with one resolved inside; then resolved listing
    # only the last alert to clear.
    cleared = now + timedelta(minutes=1)
    second = am_payload("DiskFull", [one, am_alert("DiskFull", "db2", now, cleared)])
    assert (await post_alerts(base, "prom", second))[0] == 200
    await alerting.settle()
    await eventually(lambda: "*1* firing, 1 cleared" in cards(alerting)[0].text)
    third = am_payload("DiskFull", [am_alert("DiskFull", "db1", now, cleared)])
    third["status"] = "resolved"
    assert (await post_alerts(base, "prom", third))[0] == 200
    await alerting.settle()
    [card] = await eventually(lambda: cards(alerting))
    await eventually(lambda: "all clear" in cards(alerting)[0].text)
    assert len(cards(alerting)) == 1
    assert await count(alerting, AlertRow) == 2
    async with alerting.warroom.db.session() as session:
        group = (await session.exec(select(AlertGroup))).one()
        assert group.firing is False
        rows = (await session.exec(select(AlertRow))).all()
        assert all(r.resolved_at is not None for r in rows)

    # The first webhook again, late (a retry): those occurrences cleared; nothing changes.
    status, body = await post_alerts(base, "prom", first)
    assert (status, body["changed"]) == (200, False)
    await alerting.settle()
    assert len(cards(alerting)) == 1

    # Firing again after it cleared: a new occurrence of the alert, and a new card.
    again = am_payload("DiskFull", [am_alert("DiskFull", "db1", now + timedelta(minutes=3))])
    assert (await post_alerts(base, "prom", again))[0] == 200
    await alerting.settle()
    await eventually(lambda: len(cards(alerting)) == 2)
    assert await count(alerting, AlertRow) == 3


async def test_critical_declares_once_with_detection_time_from_the_alert(alerting: Bot) -> None:
    base = base_of(alerting.url)
    started = alerting.clock.now() - timedelta(minutes=7)
    payload = am_payload(
        "ApiDown", [am_alert("ApiDown", "api1", started, severity="critical", service="api")]
    )
    answers = await asyncio.gather(*(post_alerts(base, "prom", payload) for _ in range(6)))
    assert [status for status, _ in answers] == [200] * 6
    await alerting.settle()
    await eventually(lambda: channel(alerting.fake, "incident-1"))
    await alerting.settle()
    async with alerting.warroom.db.session() as session:
        [incident] = (await session.exec(select(Incident))).all()
        assert incident.declared_by == "Alertmanager (prom)"
        assert incident.severity == 1
        assert incident.service == "api"
        assert incident.detected_at == started.replace(microsecond=started.microsecond)
        group = (await session.exec(select(AlertGroup))).one()
        assert group.incident_id == incident.id
        fired = await session.exec(
            select(TimelineEvent).where(col(TimelineEvent.kind) == "alert_fired")
        )
        assert len(fired.all()) == 1
    assert not cards(alerting)  # declared, not triaged
    # More webhooks for the group, however many: still one incident.
    await post_alerts(base, "prom", payload)
    await alerting.settle()
    assert await count(alerting, Incident) == 1


async def test_dismiss_keeps_the_reason_and_declare_from_the_card(alerting: Bot) -> None:
    base, now = base_of(alerting.url), alerting.clock.now()
    await post_alerts(base, "prom", am_payload("Slow", [am_alert("Slow", "web1", now)]))
    await post_alerts(base, "prom", am_payload("Flaky", [am_alert("Flaky", "web2", now)]))
    await alerting.settle()
    await eventually(lambda: len(cards(alerting)) == 2)
    slow, flaky = sorted(cards(alerting), key=lambda m: "Slow" not in m.text)
    room = channel(alerting.fake, "alerts").id

    def value(card: Any, action: str) -> str:
        for block in card.blocks or []:
            for element in block.get("elements", []):
                if element.get("action_id") == action:
                    return str(element["value"])
        raise AssertionError(f"no {action} on the card")

    await alerting.slack.click("alert_dismiss", value(flaky, "alert_dismiss"), channel=room)
    await alerting.settle()
    form = last_view(alerting.fake, "alert_dismiss_form")
    await alerting.slack.submit(form, {"reason": "Known <!channel> flapping check"})
    await alerting.settle()
    await eventually(lambda: "Dismissed by <@UALICE>" in flaky_now(alerting, flaky.ts))
    text = flaky_now(alerting, flaky.ts)
    assert "&lt;!channel&gt;" in text and "<!channel>" not in text

    await alerting.slack.click("alert_declare", value(slow, "alert_declare"), channel=room)
    await alerting.settle()
    form = last_view(alerting.fake, "declare_incident")
    title = next(b for b in form["blocks"] if b["block_id"] == "title")
    assert title["element"]["initial_value"] == "Slow on web1"
    await alerting.slack.submit(form, {"title": "Slow on web1", "severity": "3"})
    await alerting.settle()
    await eventually(lambda: "Attached to incident #1" in flaky_now(alerting, slow.ts))
    async with alerting.warroom.db.session() as session:
        incident = (await session.exec(select(Incident))).one()
        assert incident.declared_by == ALICE


def flaky_now(bot: Bot, ts: str) -> str:
    return next(m.text for m in cards(bot) if m.ts == ts)


async def test_grafana_and_generic_payloads(alerting: Bot) -> None:
    base = base_of(alerting.url)
    grafana = json.loads((FIXTURES / "grafana.json").read_text())
    status, body = await post_alerts(base, "grafana", grafana, token=GRAFANA_TOKEN)
    assert (status, body["action"]) == (200, "triage")
    raw = (FIXTURES / "generic.json").read_bytes()
    signature = hmac.new(HOOK_SECRET.encode(), raw, hashlib.sha256).hexdigest()
    wrong = {"X-Warroom-Signature": "sha256=" + "0" * 64}
    assert (await post_alerts(base, "hook", raw, token=None, headers=wrong))[0] == 401
    good = {"X-Warroom-Signature": f"sha256={signature}"}
    status, body = await post_alerts(base, "hook", raw, token=None, headers=good)
    assert (status, body["action"]) == (200, "declare")  # severity=critical
    await alerting.settle()
    [card] = await eventually(lambda: cards(alerting))
    assert "<https://grafana.example.com/d/abc|dashboardURL>" in card.text
    assert "CPU above 90% in zone us-1" in card.text
    await eventually(lambda: channel(alerting.fake, "incident-1"))
    await alerting.settle()
    async with alerting.warroom.db.session() as session:
        incident = (await session.exec(select(Incident))).one()
        assert (incident.title, incident.declared_by) == ("p99 above 2 s", "Webhook (hook)")


async def test_every_alert_cleared_suggests_mitigating_and_counts_in_stats(alerting: Bot) -> None:
    base, now = base_of(alerting.url), alerting.clock.now()
    started = now - timedelta(minutes=10)
    down = am_alert("ApiDown", "api1", started, severity="critical")
    await post_alerts(base, "prom", am_payload("ApiDown", [down]))
    room = await eventually(lambda: channel(alerting.fake, "incident-1"))
    await alerting.settle()
    await alerting.slack.click("incident_ack", "1", channel=room.id)
    await alerting.settle()

    cleared = am_alert("ApiDown", "api1", started, now - timedelta(minutes=1), severity="critical")
    await post_alerts(base, "prom", am_payload("ApiDown", [cleared]))
    await alerting.settle()

    def suggestion() -> Any:
        for message in bot_messages(alerting.fake, room.id):
            if "Every alert attached to incident #1 has cleared" in message.text:
                return message
        return None

    message = await eventually(suggestion)
    buttons = [e for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"]]
    assert [b["action_id"] for b in buttons] == ["alerts_mitigate"]
    await alerting.slack.click("alerts_mitigate", "1", channel=room.id)
    await alerting.settle()
    async with alerting.warroom.db.session() as session:
        incident = (await session.exec(select(Incident))).one()
        assert incident.status == "mitigated"
        kinds = [
            e.kind
            for e in (
                await session.exec(select(TimelineEvent).order_by(col(TimelineEvent.at)))
            ).all()
        ]
    assert "alert_fired" in kinds and "alert_cleared" in kinds

    status, _ = await alerting.slack.command("status 1")
    await alerting.settle()
    assert any("*Alerts:* 0 firing, 1 cleared" in text for text in answers(alerting.fake))
    document = await render_postmortem(
        alerting.warroom.db,
        alerting.warroom.settings.policy,
        alerting.warroom.services.renderer,
        1,
    )
    alerts_section = document.split("## Alerts", 1)[1].split("## Timeline", 1)[0]
    assert " · prom: ApiDown on api1" in alerts_section and " to " in alerts_section
    assert "**Alert**: Alert firing: ApiDown on api1" in document

    status, _ = await alerting.slack.command("stats")
    assert status == 200
    await alerting.settle()
    assert any("Alert to ack   median 10m" in text for text in answers(alerting.fake)), answers(
        alerting.fake
    )


async def test_on_clear_mitigate(settings: Settings, fake: FakeSlack, clock: ManualClock) -> None:
    routes = [{"match": ["severity=critical"], "action": "declare", "on_clear": "mitigate"}]
    async for bot in start_bot(with_alerts(settings, routes), fake, clock):
        base, started = base_of(bot.url), clock.now() - timedelta(minutes=3)
        down = am_alert("ApiDown", "api1", started, severity="critical")
        await post_alerts(base, "prom", am_payload("ApiDown", [down]))
        await eventually(lambda: channel(fake, "incident-1"))
        await bot.settle()
        cleared = am_alert("ApiDown", "api1", started, clock.now(), severity="critical")
        await post_alerts(base, "prom", am_payload("ApiDown", [cleared]))
        await bot.settle()

        for _ in range(300):
            if await status_of(bot) == "mitigated":
                break
            await asyncio.sleep(0.05)
        assert await status_of(bot) == "mitigated"


async def status_of(bot: Bot) -> str:
    async with bot.warroom.db.session() as session:
        return (await session.exec(select(Incident))).one().status


async def test_two_replicas_taking_the_same_webhooks_declare_once_and_post_one_card(
    settings: Settings, fake: FakeSlack, clock: ManualClock
) -> None:
    add_triage_channel(fake)
    configured = with_alerts(settings)
    first = start_bot(replace(configured, replica_name="replica-a"), fake, clock)
    second = start_bot(replace(configured, replica_name="replica-b"), fake, clock)
    one, two = await first.__anext__(), await second.__anext__()
    try:
        started = clock.now() - timedelta(minutes=2)
        down = am_payload("ApiDown", [am_alert("ApiDown", "api1", started, severity="critical")])
        slow = am_payload("ApiSlow", [am_alert("ApiSlow", "web1", started)])
        sent = [
            post_alerts(base_of(bot.url), "prom", payload)
            for payload in (down, slow)
            for bot in (one, two, one, two)
        ]
        answers = await asyncio.gather(*sent)
        assert [status for status, _ in answers] == [200] * 8
        await eventually(lambda: channel(fake, "incident-1"), 20)
        await one.settle(20)
        await two.settle(20)
        await eventually(lambda: len(cards(one)) == 1 and "*1* firing" in cards(one)[0].text)
        assert await count(one, Incident) == 1
        assert await count(one, AlertRow) == 2
        assert await count(one, AlertGroup) == 2
        assert fake.channel_by_name("incident-2") is None
    finally:
        for bots in (first, second):
            with pytest.raises(StopAsyncIteration):
                await bots.__anext__()


async def test_a_card_slack_refused_or_lost_is_finished_by_the_sweep_once(alerting: Bot) -> None:
    base, now = base_of(alerting.url), alerting.clock.now()
    alerting.fake.fail("chat.postMessage", "is_archived", times=10_000)
    status, body = await post_alerts(
        base, "prom", am_payload("Slow", [am_alert("Slow", "w1", now)])
    )
    assert (status, body["changed"]) == (200, True)  # stored, whatever Slack does
    await alerting.settle(30)
    assert not cards(alerting)
    alerting.fake.reset_faults()
    # A post that went out without its ts being recorded (the process died in between): the
    # sweep finds it by its key and edits it instead of posting another.
    room = channel(alerting.fake, "alerts").id
    ts = await alerting.warroom.services.slack.post(
        room, blocks.simple("an earlier attempt"), key="alert-card:1:1"
    )
    await alerting.warroom.engine.tick()
    await alerting.settle(30)
    [card] = await eventually(lambda: cards(alerting), 20)
    assert card.ts == ts and "*1* firing" in card.text
    async with alerting.warroom.db.session() as session:
        group = (await session.exec(select(AlertGroup))).one()
    assert group.card_ts == card.ts and group.card_version == group.version


async def test_alert_text_is_escaped_and_only_web_links_are_shown(alerting: Bot) -> None:
    base, now = base_of(alerting.url), alerting.clock.now()
    alert = am_alert("Evil", "x1", now)
    alert["annotations"] = {
        "summary": "<!channel> disk & <@UALICE>",
        "runbook_url": "javascript:alert(1)",
    }
    alert["generatorURL"] = "https://prometheus.example.com/graph?g0.expr=up"
    assert (await post_alerts(base, "prom", am_payload("Evil", [alert])))[0] == 200
    await alerting.settle()
    [card] = await eventually(lambda: cards(alerting))
    assert "&lt;!channel&gt; disk &amp; &lt;@UALICE&gt;" in card.text
    assert "<!channel>" not in card.text and "<@UALICE>" not in card.text
    assert "javascript:" not in card.text
    assert "<https://prometheus.example.com/graph?g0.expr=up|generatorURL>" in card.text


async def test_a_dismissed_group_that_fires_again_after_clearing_gets_a_new_card(
    alerting: Bot,
) -> None:
    base, now = base_of(alerting.url), alerting.clock.now() - timedelta(minutes=30)
    room = channel(alerting.fake, "alerts").id
    await post_alerts(base, "prom", am_payload("Flaky", [am_alert("Flaky", "w1", now)]))
    await alerting.settle()
    await eventually(lambda: len(cards(alerting)) == 1)
    await alerting.slack.click("alert_dismiss", "1:1", channel=room)
    await alerting.settle()
    await alerting.slack.submit(last_view(alerting.fake, "alert_dismiss_form"), {"reason": "noise"})
    await alerting.settle()
    await eventually(lambda: "Dismissed by <@UALICE>: noise" in cards(alerting)[0].text)
    # Still firing: more news edits the dismissed card, no new one.
    more = [am_alert("Flaky", "w1", now), am_alert("Flaky", "w2", now)]
    await post_alerts(base, "prom", am_payload("Flaky", more))
    await alerting.settle()
    await eventually(lambda: "*2* firing" in cards(alerting)[0].text)
    assert len(cards(alerting)) == 1
    cleared = [am_alert("Flaky", i, now, now + timedelta(minutes=1)) for i in ("w1", "w2")]
    await post_alerts(base, "prom", am_payload("Flaky", cleared))
    await alerting.settle()
    again = am_alert("Flaky", "w1", now + timedelta(minutes=10))
    await post_alerts(base, "prom", am_payload("Flaky", [again]))
    await alerting.settle()
    await eventually(lambda: len(cards(alerting)) == 2)
    fresh = cards(alerting)[1]
    assert "Dismissed" not in fresh.text
    assert "alert_dismiss" in json.dumps(fresh.blocks)
    async with alerting.warroom.db.session() as session:
        group = (await session.exec(select(AlertGroup))).one()
    assert (group.episode, group.dismissed_reason) == (2, None)


async def test_attach_a_card_to_an_open_incident_through_the_picker(alerting: Bot) -> None:
    base, now = base_of(alerting.url), alerting.clock.now()
    room = channel(alerting.fake, "alerts").id
    await alerting.slack.command("declare sev2 Checkout errors")
    await alerting.settle()
    await eventually(lambda: channel(alerting.fake, "incident-1"))
    await alerting.settle()
    await post_alerts(base, "prom", am_payload("Slow", [am_alert("Slow", "web1", now)]))
    await alerting.settle()
    await eventually(lambda: len(cards(alerting)) == 1)
    await alerting.slack.click("alert_attach", "1:1", channel=room, user="UBOB")
    await alerting.settle()
    picker = last_view(alerting.fake, "alert_attach_form")
    options = picker["blocks"][0]["element"]["options"]
    assert [o["value"] for o in options] == ["1"]
    await alerting.slack.submit(picker, {"incident": "1"}, user="UBOB")
    await alerting.settle()
    await eventually(lambda: "Attached to incident #1" in cards(alerting)[0].text)
    assert "alert_actions" not in json.dumps(cards(alerting)[0].blocks)
    async with alerting.warroom.db.session() as session:
        events = (
            await session.exec(select(TimelineEvent).where(col(TimelineEvent.incident_id) == 1))
        ).all()
    attached = [e for e in events if e.kind == "alert_attached"]
    assert [e.actor for e in attached] == ["UBOB"]
    assert any(e.kind == "alert_fired" and "Slow on web1" in e.text for e in events)
    incident_room = channel(alerting.fake, "incident-1").id
    await eventually(
        lambda: any("Slow on web1" in m.text for m in bot_messages(alerting.fake, incident_room))
    )


async def test_notify_posts_a_card_without_buttons(
    settings: Settings, fake: FakeSlack, clock: ManualClock
) -> None:
    add_triage_channel(fake)
    routes = [{"match": ["team=db"], "action": "notify", "channel": "alerts"}]
    async for bot in start_bot(with_alerts(settings, routes), fake, clock):
        alert = am_alert("Vacuum", "db1", clock.now(), team="db")
        assert (await post_alerts(base_of(bot.url), "prom", am_payload("Vacuum", [alert])))[
            0
        ] == 200
        await bot.settle()
        [card] = await eventually(lambda: bot_messages(fake, channel(fake, "alerts").id))
        assert "Vacuum on db1" in card.text
        assert not [b for b in card.blocks or [] if b["type"] == "actions"]
