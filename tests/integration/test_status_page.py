"""Public updates through the real bot: drafts offered to the Comms lead (else the commander)
after a declaration, an update and the resolution; Publish, Edit and publish, Skip; `/incident
publish` and `/incident components`; what the public page then shows; private incidents and
drills never drafted nor published; the hosted (Atlassian) page fed through its fake."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from app.domain.statuspage import Impact, PublicStatus
from app.fake_slack import FakeSlack
from app.fake_statuspage import FakeStatuspage
from app.services.clock import ManualClock
from app.services.incidents import ResolveRequest
from app.services.status_updates import EDIT_BUTTON, PUBLISH_BUTTON, SKIP_BUTTON
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB
from tests.support.factories import policy_with, settings_for
from tests.support.helpers import answers, bot_messages, channel, dms, last_view

KEY = "sp-key-0f9e8d7c6b5a"
PAGE = "pg1warroom01"
COMPONENTS = {
    "api": {"name": "Public API", "group": "Platform"},
    "checkout": {"name": "Checkout", "description": "Paying for orders"},
}


def statuspage(**extra: Any) -> dict[str, Any]:
    return {
        "enabled": True,
        "url": "https://status.example.com",
        "title": "Example status",
        "components": COMPONENTS,
        **extra,
    }


@pytest.fixture
async def bot(fake: FakeSlack, database_url: str, clock: ManualClock) -> AsyncIterator[Bot]:
    settings = replace(
        settings_for(fake, database_url), policy=policy_with(statuspage=statuspage())
    )
    async for running in start_bot(settings, fake, clock):
        yield running


async def declare(bot: Bot, text: str, user: str = ALICE) -> str:
    status, _ = await bot.slack.command(text, user=user)
    assert status == 200
    await bot.settle()
    return channel(bot.fake, "incident-1").id


def drafts(bot: Bot, user: str) -> list[dict[str, Any]]:
    """The draft DMs `user` holds, newest last, each as {text, value, channel, ts}."""
    found = []
    for message in dms(bot.fake, user):
        for block in message.blocks or []:
            if block.get("block_id") == "public_update_actions":
                found.append(
                    {
                        "text": message.text,
                        "value": block["elements"][0]["value"],
                        "channel": message.channel,
                        "ts": message.ts,
                    }
                )
    return found


async def click(bot: Bot, action: str, draft: dict[str, Any], user: str = ALICE) -> None:
    status, _ = await bot.slack.click(
        action, draft["value"], user=user, channel=draft["channel"], message_ts=draft["ts"]
    )
    assert status == 200
    await bot.settle()


async def public(bot: Bot) -> str:
    """Everything the public page's data holds, as one string."""
    page = await bot.warroom.bot.public.public_page()
    return json.dumps(
        {
            "overall": page.overall.value,
            "components": [(c.id, c.impact.value) for c in page.components],
            "incidents": [
                {
                    "title": i.title,
                    "status": i.status.value,
                    "updates": [u.body for u in i.updates],
                }
                for i in (*page.ongoing, *page.history)
            ],
        }
    )


async def test_declare_drafts_publish_shows_it_and_resolution_clears_the_components(
    bot: Bot,
) -> None:
    room = await declare(bot, "declare sev2 db-7 primary OOM in eu-west")
    assert "Components" not in await public(bot)
    status, _ = await bot.slack.command("components api checkout:major", channel=room)
    assert status == 200
    await bot.settle()
    assert "Public API (partial outage), Checkout (major outage)" in answers(bot.fake)[-1]

    # The declaration's draft went to the commander (no Comms lead yet) before components.
    first = drafts(bot, ALICE)
    assert len(first) == 1
    assert "Nothing is public until you publish it" in first[0]["text"]
    page = await bot.warroom.bot.public.public_page()
    assert page.ongoing == () and page.overall is Impact.OPERATIONAL

    # An update drafts again, now naming the components; the older draft is superseded.
    await bot.slack.command("update rolled back the config push", channel=room)
    await bot.settle()
    second = drafts(bot, ALICE)[-1]
    assert "Major outage of Public API and Checkout" in second["text"]
    await click(bot, PUBLISH_BUTTON, first[0])
    assert "replaced this one" in answers(bot.fake)[-1]
    assert (await bot.warroom.bot.public.public_page()).ongoing == ()

    await click(bot, PUBLISH_BUTTON, second)
    assert "Published to the status page (https://status.example.com)" in answers(bot.fake)[-1]
    page = await bot.warroom.bot.public.public_page()
    (shown,) = page.ongoing
    assert shown.title == "Major outage of Public API and Checkout"
    assert shown.status is PublicStatus.INVESTIGATING
    assert "a major outage affecting Public API, Checkout" in shown.updates[0].body
    assert page.overall is Impact.MAJOR
    assert {c.id: c.impact for c in page.components} == {
        "api": Impact.PARTIAL,
        "checkout": Impact.MAJOR,
    }
    # Internal words never went into the public text.
    assert "db-7" not in await public(bot) and "OOM" not in await public(bot)
    # The DM lost its buttons and says who published.
    edited = next(m for m in dms(bot.fake, ALICE) if m.ts == second["ts"])
    assert "Published* by <@UALICE>" in edited.text or "Published" in json.dumps(edited.blocks)
    assert not any(b.get("block_id") == "public_update_actions" for b in edited.blocks or [])
    # Publishing twice does nothing more.
    await click(bot, PUBLISH_BUTTON, second)
    assert "already published by <@UALICE>" in answers(bot.fake)[-1]

    await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="bad push"), ALICE)
    await bot.settle()
    resolution = drafts(bot, ALICE)[-1]
    assert "This incident has been resolved" in resolution["text"]
    # Until the resolution is approved, the public still sees the outage.
    assert (await bot.warroom.bot.public.public_page()).overall is Impact.MAJOR
    await click(bot, PUBLISH_BUTTON, resolution)
    page = await bot.warroom.bot.public.public_page()
    assert page.ongoing == () and page.overall is Impact.OPERATIONAL
    (past,) = page.history
    assert past.status is PublicStatus.RESOLVED and len(past.updates) == 2
    # Its day in the history shows the worst it was.
    assert page.components[1].days[-1].impact is Impact.MAJOR


async def test_skip_and_edit_and_publish(bot: Bot) -> None:
    room = await declare(bot, "declare sev1 Checkout down")
    (draft,) = drafts(bot, ALICE)
    await click(bot, SKIP_BUTTON, draft)
    assert "Skipped; nothing was published" in answers(bot.fake)[-1]
    assert (await bot.warroom.bot.public.public_page()).ongoing == ()

    await bot.slack.command("update found the bad deploy", channel=room)
    await bot.settle()
    draft = drafts(bot, ALICE)[-1]
    await click(bot, EDIT_BUTTON, draft)
    view = last_view(bot.fake, "public_update_edit")
    status, ack = await bot.slack.submit(view, {"title": "  ", "body": ""})
    assert ack["response_action"] == "errors" and set(ack["errors"]) == {"title", "body"}
    status, _ = await bot.slack.submit(
        view,
        {
            "title": "Card payments failing",
            "status": "identified",
            "body": "We found the cause <b>and</b> are fixing it.",
        },
    )
    assert status == 200
    await bot.settle()
    (shown,) = (await bot.warroom.bot.public.public_page()).ongoing
    assert shown.title == "Card payments failing"
    assert shown.status is PublicStatus.IDENTIFIED
    assert shown.updates[0].body == "We found the cause <b>and</b> are fixing it."
    # The skipped draft's text never became public.
    assert len(shown.updates) == 1


async def test_publish_by_hand_and_who_may(bot: Bot) -> None:
    room = await declare(bot, "declare sev3 Slow search")
    assert drafts(bot, ALICE) == []  # Sev3 with no component: no draft
    # Bob holds no role: publishing is restricted.
    await bot.slack.command("publish Search is slow for some customers.", user=BOB, channel=room)
    await bot.settle()
    assert "publish" in answers(bot.fake)[-1].lower()
    assert (await bot.warroom.bot.public.public_page()).ongoing == ()

    await bot.slack.command("publish Search is slow for some customers.", channel=room)
    await bot.settle()
    (shown,) = (await bot.warroom.bot.public.public_page()).ongoing
    assert shown.updates[0].body == "Search is slow for some customers."
    assert shown.title == "Service disruption"

    # Without text: a fresh draft by DM.
    await bot.slack.command("publish", channel=room)
    await bot.settle()
    assert len(drafts(bot, ALICE)) == 1
    # Bob clicking Alice's draft button is refused, and nothing is published.
    await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[0], user=BOB)
    assert len((await bot.warroom.bot.public.public_page()).ongoing[0].updates) == 1


async def test_private_incidents_and_drills_never_draft_nor_publish(bot: Bot) -> None:
    await bot.slack.command("declare", user=ALICE)
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(
        view, {"title": "Breach of db-7", "severity": "1", "private": ["private"]}, user=ALICE
    )
    await bot.settle()
    assert channel(bot.fake, "incident-1").is_private
    await bot.slack.command("drill sev1 Practice outage")
    await bot.settle()
    assert drafts(bot, ALICE) == []
    for number in (1, 2):
        await bot.slack.command(f"publish #{number} All good now.")
        await bot.settle()
        assert "never" in answers(bot.fake)[-1]
    page = await bot.warroom.bot.public.public_page()
    assert page.ongoing == () and page.history == ()
    assert "Breach" not in await public(bot)


async def test_a_severity_set_to_auto_publish_needs_no_approval(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    policy = policy_with(statuspage=statuspage(auto_publish=[1]))
    settings = replace(settings_for(fake, database_url), policy=policy)
    async for bot in start_bot(settings, fake, clock):
        await declare(bot, "declare sev1 Everything is down")
        assert drafts(bot, ALICE) == []
        assert any("automatically" in m.text for m in dms(bot.fake, ALICE))
        (shown,) = (await bot.warroom.bot.public.public_page()).ongoing
        assert shown.updates[0].body.startswith("We are investigating problems")


async def test_the_update_reminder_says_when_the_status_page_was_last_updated(
    bot: Bot,
) -> None:
    room = await declare(bot, "declare sev1 Checkout down")
    await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[0])
    for _ in range(4):
        bot.clock.set(bot.clock.now() + timedelta(minutes=10))
        await bot.warroom.engine.tick()
        await bot.settle()
    said = "\n".join(m.text for m in bot_messages(bot.fake, room))
    assert "The status page was last updated" in said


async def test_published_updates_reach_atlassian_once_with_component_statuses(
    fake: FakeSlack, database_url: str, clock: ManualClock
) -> None:
    hosted = FakeStatuspage(PAGE, requests_per_minute=None, seed=3)
    hosted.add_key(KEY)
    hosted.add_component("Public API", "cmpapi000001")
    hosted.add_component("Checkout", "cmpcheckout1")
    async with hosted:
        policy = policy_with(
            statuspage=statuspage(
                provider="atlassian",
                atlassian={
                    "page_id": PAGE,
                    "base_url": f"{hosted.url}/v1",
                    "component_ids": {"api": "cmpapi000001", "checkout": "cmpcheckout1"},
                },
            )
        )
        settings = replace(
            settings_for(fake, database_url),
            policy=policy,
            statuspage_secrets={"STATUSPAGE_API_KEY": KEY},
        )
        async for bot in start_bot(settings, fake, clock):
            room = await declare(bot, "declare sev2 Checkout errors")
            await bot.slack.command("components checkout:major", channel=room)
            await bot.settle()
            await bot.slack.command("update still looking", channel=room)
            await bot.settle()
            # A draft reaches nobody outside.
            await bot.warroom.engine.tick()
            assert hosted.incidents() == []
            await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[-1])
            # Two deliveries at once (as two replicas would): the incident is created once.
            public = bot.warroom.bot.public
            await asyncio.gather(public.deliver_remote(), public.deliver_remote())
            await bot.warroom.engine.tick()
            (made,) = hosted.incidents()
            assert hosted.component_status("cmpcheckout1") == "major_outage"
            assert hosted.component_status("cmpapi000001") == "operational"

            # Checkout is dropped for the API: the next update says Checkout is fine again.
            await bot.slack.command("components api:partial", channel=room)
            await bot.slack.command("update moved traffic", channel=room)
            await bot.settle()
            await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[-1])
            await bot.warroom.engine.tick()
            assert hosted.component_status("cmpcheckout1") == "operational"
            assert hosted.component_status("cmpapi000001") == "partial_outage"

            # The key is refused for a while: said once in the room, retried until it works.
            hosted.revoke_key(KEY)
            await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="x"), ALICE)
            await bot.settle()
            await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[-1])
            for _ in range(3):
                bot.clock.set(bot.clock.now() + timedelta(minutes=3))
                await bot.warroom.engine.tick()
                await bot.settle()
            said = "\n".join(m.text for m in bot_messages(bot.fake, room))
            assert said.count("Statuspage did not take the update yet") == 1
            assert KEY not in said
            hosted.add_key(KEY)
            bot.clock.set(bot.clock.now() + timedelta(minutes=3))
            await bot.warroom.engine.tick()
            (made,) = hosted.incidents()  # still one: updated, not created again
            assert [u.status for u in hosted.updates(made.id)][-1] == "resolved"
            assert hosted.component_status("cmpcheckout1") == "operational"


async def test_a_skipped_resolution_leaves_the_page_ongoing_until_published_by_hand(
    bot: Bot,
) -> None:
    room = await declare(bot, "declare sev1 Checkout down")
    await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[0])
    await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="x"), ALICE)
    await bot.settle()
    await click(bot, SKIP_BUTTON, drafts(bot, ALICE)[-1])
    assert "still shows incident #1 as ongoing" in answers(bot.fake)[-1]
    assert len((await bot.warroom.bot.public.public_page()).ongoing) == 1

    await bot.slack.command("publish", channel=room)
    await bot.settle()
    resolution = drafts(bot, ALICE)[-1]
    assert "This incident has been resolved" in resolution["text"]
    await click(bot, PUBLISH_BUTTON, resolution)
    page = await bot.warroom.bot.public.public_page()
    assert page.ongoing == () and len(page.history) == 1


async def test_a_draft_written_before_the_resolution_cannot_be_published_after_it(
    bot: Bot,
) -> None:
    await declare(bot, "declare sev2 Checkout down")
    (draft,) = drafts(bot, ALICE)
    await bot.warroom.bot.flows.resolve(1, ResolveRequest(root_cause="x"), ALICE)
    await bot.settle()
    await click(bot, PUBLISH_BUTTON, draft)
    assert "replaced this one" in answers(bot.fake)[-1]
    page = await bot.warroom.bot.public.public_page()
    assert page.ongoing == () and page.history == ()


async def test_two_people_deciding_one_draft_at_once_decide_it_once(bot: Bot) -> None:
    await declare(bot, "declare sev1 Checkout down")
    public = bot.warroom.bot.public
    decisions = await asyncio.gather(
        public.publish(1, 1, ALICE), public.skip(1, 1, ALICE), public.publish(1, 1, ALICE)
    )
    assert sum(d.now for d in decisions) == 1
    winner = next(d for d in decisions if d.now)
    stored = await public.get(1)
    assert stored is not None and stored.state == winner.update.state
    shown = (await public.public_page()).ongoing
    assert len(shown) == (1 if stored.state == "published" else 0)


async def test_public_numbers_do_not_count_incidents_never_made_public(bot: Bot) -> None:
    await bot.slack.command("declare sev3 Slow search")  # incident 1: never public
    await bot.settle()
    await bot.slack.command("declare sev1 Checkout down")  # incident 2
    await bot.settle()
    await click(bot, PUBLISH_BUTTON, drafts(bot, ALICE)[-1])
    (shown,) = (await bot.warroom.bot.public.public_page()).ongoing
    assert shown.id == 1
