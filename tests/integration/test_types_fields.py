"""Incident types and custom fields over signed HTTP: declaring with a type (command and form),
what a type decides (privacy, channel name, severity, briefs), setting fields, the fields a
resolve waits for, and where fields show (status, postmortem, App Home, stats)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import announcements, answers, bot_messages, channel, dms, last_view

TYPES = {
    "outage": {"name": "Outage", "fields": ["team", "impact", "customers", "owner", "dashboard"]},
    "security": {
        "name": "Security",
        "description": "Leaked secrets, intrusions",
        "default_severity": 2,
        "private": True,
        "channel_name_format": "sec-{id}-{slug}",
        "fields": ["team", "impact"],
        "briefs": {"commander": "Rotate the leaked secret before anything else."},
    },
    "vendor": {"name": "Third party", "fields": ["vendor", "impact"]},
}
FIELDS = {
    "team": {"label": "Team", "kind": "select", "options": ["payments", "search"]},
    "impact": {"label": "Customer impact", "kind": "text", "required": "resolve"},
    "customers": {"label": "Customers affected", "kind": "number"},
    "owner": {"label": "Service owner", "kind": "user"},
    "dashboard": {"label": "Dashboard", "kind": "link"},
    "vendor": {
        "label": "Vendor",
        "kind": "select",
        "options": ["Stripe", "AWS"],
        "required": "declare",
    },
}


@pytest.fixture
async def bot(fake: FakeSlack, database_url: str, clock: ManualClock) -> AsyncIterator[Bot]:
    policy = policy_with(workspace={"default_type": "outage"}, types=TYPES, fields=FIELDS)
    settings = replace(settings_for(fake, database_url), policy=policy)
    async for running in start_bot(settings, fake, clock):
        yield running


async def declare(bot: Bot, text: str) -> dict[str, object]:
    status, body = await bot.slack.command(text)
    assert status == 200
    await bot.settle()
    return body


async def test_a_type_named_in_the_command_makes_a_private_incident_in_its_channel(
    bot: Bot,
) -> None:
    body = await declare(bot, "declare sev1 security: Leaked key in logs")
    assert body == {}
    room = channel(bot.fake, "sec-1-leaked-key-in-logs")
    assert room.is_private
    snap = await bot.warroom.incidents.snapshot(1)
    assert (snap.type, snap.severity, snap.title, snap.is_private) == (
        "security",
        1,
        "Leaked key in logs",
        True,
    )
    # Private: no announcement; the war room's notification says the type.
    assert announcements(bot.fake) == []
    assert "Type: Security" in bot_messages(bot.fake, room.id)[0].text
    # The type's own commander brief.
    assert any("Rotate the leaked secret" in m.text for m in dms(bot.fake, ALICE))


async def test_the_type_gives_the_severity_and_an_unknown_word_stays_in_the_title(
    bot: Bot,
) -> None:
    await declare(bot, "declare security: Leaked key")
    snap = await bot.warroom.incidents.snapshot(1)
    assert (snap.type, snap.severity, snap.title) == ("security", 2, "Leaked key")

    await declare(bot, "declare sev3 Payments: slow checkout")
    snap = await bot.warroom.incidents.snapshot(2)
    # Not a type: the default type, and the word is the title's.
    assert (snap.type, snap.severity, snap.title) == ("outage", 3, "Payments: slow checkout")
    assert channel(bot.fake, "incident-2")
    [announcement] = announcements(bot.fake)
    assert "Type: Outage" in announcement.text

    # Without a severity a type without a default one is refused, an unknown word too.
    body = await declare(bot, "declare outage: Everything down")
    assert "no default severity" in str(body["text"])
    body = await declare(bot, "declare payments: slow")
    assert "Start with the severity" in str(body["text"])
    assert len(await bot.warroom.incidents.open_incidents()) == 2


async def test_a_field_required_at_declare_sends_the_command_to_the_form(bot: Bot) -> None:
    body = await declare(bot, "declare sev2 vendor: Stripe is down")
    assert "Third party incidents need Vendor when declared" in str(body["text"])
    assert "`/incident declare` alone" in str(body["text"])
    assert await bot.warroom.incidents.open_incidents() == []

    await declare(bot, "declare")
    view = last_view(bot.fake, "declare_incident")
    ids = [b["block_id"] for b in view["blocks"]]
    assert ids[:3] == ["title", "type", "severity"]
    assert {"field_team", "field_impact", "field_vendor", "field_customers"} <= set(ids)
    types = next(b for b in view["blocks"] if b["block_id"] == "type")
    assert [o["value"] for o in types["element"]["options"]] == ["outage", "security", "vendor"]
    assert types["element"]["initial_option"]["value"] == "outage"

    status, body = await bot.slack.submit(view, {"title": "Stripe is down", "type": "vendor"})
    assert body["response_action"] == "errors"
    assert "Vendor" in body["errors"]["field_vendor"]
    # No default severity for this type: the form asks for one.
    status, body = await bot.slack.submit(
        view, {"title": "Stripe is down", "type": "vendor", "field_vendor": "Stripe"}
    )
    assert body["response_action"] == "errors" and "severity" in body["errors"]

    status, body = await bot.slack.submit(
        view,
        {
            "title": "Stripe is down",
            "type": "vendor",
            "severity": "2",
            "field_vendor": "Stripe",
            # A field the type does not have is left out.
            "field_customers": "12",
        },
    )
    assert status == 200 and body == {}
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert (snap.type, snap.severity, snap.fields) == ("vendor", 2, {"vendor": "Stripe"})


async def test_the_form_takes_the_type_s_default_severity_and_privacy(bot: Bot) -> None:
    await declare(bot, "declare")
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(
        view, {"title": "Token in a public gist", "type": "security", "field_team": "search"}
    )
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert (snap.type, snap.severity, snap.is_private) == ("security", 2, True)
    assert snap.fields == {"team": "search"}
    assert channel(bot.fake, "sec-1-token-in-a-public-gist").is_private


async def test_set_checks_each_value_against_its_field(bot: Bot) -> None:
    await declare(bot, "declare sev2 Checkout failing")
    room = channel(bot.fake, "incident-1").id

    async def say(text: str, user: str = ALICE) -> str:
        _status, body = await bot.slack.command(text, channel=room, user=user)
        await bot.settle()
        return str(body.get("text") or answers(bot.fake)[-1])

    assert "Team set on Incident #1" in await say("set team Payments")
    assert "takes one of: payments, search" in await say("set team marketing")
    assert "takes a number" in await say("set customers lots")
    assert "takes a link" in await say("set dashboard ftp://grafana")
    assert "mention them with @" in await say("set owner bob")
    assert "no field `vendor`" in await say("set vendor Stripe")
    assert "There is no field `colour`" in await say("set colour red")
    assert "Give the value too" in await say("set team")
    await say("set customers 1,200")
    await say(f"set owner <@{BOB}|bob>")
    await say("set dashboard <https://grafana.example.com/d/1>")
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.fields == {
        "team": "payments",
        "customers": 1200,
        "owner": BOB,
        "dashboard": "https://grafana.example.com/d/1",
    }
    # Restricted like posting an update, when updates are.
    timeline = await say("timeline")
    assert "Field Team: payments" in timeline
    assert f"Field Service owner: <@{BOB}>" in timeline

    status = await say("status")
    assert "*Type:* Outage" in status
    assert "*Team:* payments" in status and "*Customers affected:* 1200" in status


async def test_set_follows_the_update_right(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    policy = policy_with(
        types=TYPES, fields=FIELDS, permissions={"restricted": ["update", "resolve"]}
    )
    settings = replace(settings_for(fake, database_url), policy=policy)
    async for bot in start_bot(settings, fake, clock):
        await declare(bot, "declare sev2 Checkout failing")
        room = channel(bot.fake, "incident-1").id
        await bot.slack.command("set team payments", channel=room, user=BOB)
        await bot.settle()
        assert "may post its updates" in answers(bot.fake)[-1]
        assert (await bot.warroom.incidents.snapshot(1)).fields == {}


async def test_a_field_required_at_resolve_holds_the_resolve_until_set(bot: Bot) -> None:
    await declare(bot, "declare sev2 Checkout failing")
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("set team payments", channel=room)
    await bot.settle()

    # The resolve command's form shows the incident's fields, filled in.
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    blocks = {b.get("block_id"): b for b in view["blocks"]}
    assert blocks["field_impact"]["optional"] is False
    assert blocks["field_team"]["element"]["initial_option"]["value"] == "payments"
    assert "field_vendor" not in blocks

    # Submitted without the field: refused, saying what to set and how.
    await bot.slack.submit(view, {"root_cause": "A bad deploy"})
    await bot.settle()
    expected = "Set these before resolving: Customer impact (`/incident set impact …`)."
    assert expected in answers(bot.fake)[-1]
    assert (await bot.warroom.incidents.snapshot(1)).status.value == "investigating"

    # The Resolve button's form is refused alike.
    await bot.slack.click("incident_resolve", "1", channel=room)
    await bot.settle()
    await bot.slack.submit(last_view(bot.fake, "resolve_incident"), {})
    await bot.settle()
    assert expected in answers(bot.fake)[-1]
    assert (await bot.warroom.incidents.snapshot(1)).status.value == "investigating"

    # Set by command, the same form resolves.
    await bot.slack.command("set impact Checkout failed for 5% of orders", channel=room)
    await bot.settle()
    await bot.slack.submit(view, {"root_cause": "A bad deploy"})
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status.value == "resolved"
    assert snap.fields["impact"] == "Checkout failed for 5% of orders"

    await bot.slack.command("postmortem", channel=room)
    await bot.settle()
    [stored] = bot.fake.files.values()
    assert stored.content is not None
    document = stored.content.decode()
    assert "- **Type:** Outage" in document
    assert "- **Team:** payments" in document
    assert "- **Customer impact:** Checkout failed for 5% of orders" in document


async def test_a_required_field_can_be_given_in_the_resolve_form(bot: Bot) -> None:
    await declare(bot, "declare sev2 Checkout failing")
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    _status, body = await bot.slack.submit(view, {"field_customers": "many"})
    assert body["response_action"] == "errors"
    assert "takes a number" in body["errors"]["field_customers"]
    await bot.slack.submit(view, {"field_impact": "Slow checkout", "field_customers": "40"})
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status.value == "resolved"
    assert snap.fields == {"impact": "Slow checkout", "customers": 40}


async def test_stats_filter_by_a_field_and_the_home_shows_fields(bot: Bot) -> None:
    await declare(bot, "declare sev2 Checkout failing")
    await declare(bot, "declare sev3 Search slow")
    await bot.slack.command("set #1 team payments")
    await bot.slack.command("set #2 team search")
    await bot.settle()

    await bot.slack.command("stats 30d team=payments")
    await bot.settle()
    text = answers(bot.fake)[-1]
    assert "only Team = payments" in text
    assert "All severities: 1 incident" in text
    await bot.slack.command("stats team=nobody")
    await bot.settle()
    assert "takes one of: payments, search" in answers(bot.fake)[-1]

    await bot.slack.event(
        {"type": "app_home_opened", "user": ALICE, "channel": "D1", "tab": "home"}, "EvHomeTypes"
    )
    await bot.settle()
    home = bot.fake.home_views[ALICE]
    shown = str(home)
    assert "Outage · Team: payments" in shown and "Team: search" in shown
