"""Tests of the fake Slack Web API, driven through a real slack_sdk AsyncWebClient.

The rest of the suite trusts this fake to behave like Slack, so its errors, limits,
pagination and faults are pinned down here against the same client the bot uses.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from app.fake_slack import FakeSlack, validate_blocks, validate_view

pytestmark = pytest.mark.asyncio

TOKEN = "xoxb-test"


@pytest_asyncio.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack(bot_token=TOKEN, bot_user_id="UBOT", team_id="T1", seed=7)
    fake.add_user("U1", name="alice", real_name="Alice Doe", tz="Europe/Paris")
    fake.add_user("U2", name="bob", real_name="Bob Roe")
    fake.add_user("U3", name="carol")
    fake.add_usergroup("S1", handle="oncall", users=["U1", "U2"])
    await fake.start(host="127.0.0.1", port=0)
    try:
        yield fake
    finally:
        await fake.stop()
    assert not [c for c in fake.calls if c.error == "fake_internal_error"]


@pytest.fixture
def client(fake_slack: FakeSlack) -> AsyncWebClient:
    """A client without retry handlers, so every fault is visible."""
    return AsyncWebClient(token=TOKEN, base_url=fake_slack.api_url, retry_handlers=[])


async def expect_error(call: Any, error: str) -> SlackApiError:
    """Await a client call that must fail with a Slack error."""
    with pytest.raises(SlackApiError) as info:
        await call
    assert info.value.response["error"] == error
    return info.value


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# auth and dispatch -------------------------------------------------------------------


async def test_auth_test_identifies_the_bot(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["user_id"] == "UBOT"
    assert response["team_id"] == "T1"
    assert response["bot_id"]
    assert fake_slack.api_url.endswith("/api/")


async def test_wrong_token_is_invalid_auth(fake_slack: FakeSlack) -> None:
    other = AsyncWebClient(token="xoxb-wrong", base_url=fake_slack.api_url)
    await expect_error(other.auth_test(), "invalid_auth")
    assert fake_slack.calls[-1].error == "invalid_auth"


async def test_missing_token_is_not_authed(fake_slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(fake_slack.api_url + "auth.test") as response:
            assert (await response.json())["error"] == "not_authed"


async def test_token_argument_is_accepted(fake_slack: FakeSlack) -> None:
    async with aiohttp.ClientSession() as session:
        url = fake_slack.api_url + "auth.test"
        async with session.post(url, data={"token": TOKEN}) as response:
            assert (await response.json())["ok"] is True


async def test_unknown_method(client: AsyncWebClient) -> None:
    await expect_error(client.api_call("nope.nothing"), "unknown_method")


# conversations -----------------------------------------------------------------------


async def test_create_channel(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.conversations_create(name="incident-1", is_private=True)
    channel = response["channel"]
    assert re.fullmatch(r"C[A-Z0-9]{10}", channel["id"])
    assert channel["is_private"] is True
    assert channel["creator"] == "UBOT"
    assert channel["topic"]["value"] == ""
    stored = fake_slack.channel_by_name("incident-1")
    assert stored is not None and stored.members == ["UBOT"]


async def test_create_channel_name_taken_even_when_archived(client: AsyncWebClient) -> None:
    created = await client.conversations_create(name="incident-2")
    await client.conversations_archive(channel=created["channel"]["id"])
    await expect_error(client.conversations_create(name="incident-2"), "name_taken")


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("", "invalid_name_required"),
        ("a" * 81, "invalid_name_maxlength"),
        ("Incident-1", "invalid_name_specials"),
        ("incident 1", "invalid_name_specials"),
        ("inc!dent", "invalid_name_specials"),
        ("--_", "invalid_name_punctuation"),
    ],
)
async def test_create_channel_invalid_names(
    fake_slack: FakeSlack, client: AsyncWebClient, name: str, error: str
) -> None:
    await expect_error(client.conversations_create(name=name), error)
    assert fake_slack.workspace.channels == {}


async def test_invite_errors(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = (await client.conversations_create(name="inc"))["channel"]["id"]
    outside = fake_slack.add_channel("outside", members=["U1"], bot_member=False)
    await expect_error(
        client.conversations_invite(channel="CNOPE", users="U1"), "channel_not_found"
    )
    await expect_error(client.conversations_invite(channel=outside, users="U2"), "not_in_channel")
    await expect_error(client.conversations_invite(channel=cid, users="UBOT"), "cant_invite_self")
    await expect_error(client.conversations_invite(channel=cid, users="U1,UX"), "user_not_found")
    many = ",".join(f"U{i}" for i in range(101))
    await expect_error(client.conversations_invite(channel=cid, users=many), "too_many_users")
    assert fake_slack.channel(cid).members == ["UBOT"]


async def test_invite_adds_new_members_and_refuses_only_when_all_present(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    cid = (await client.conversations_create(name="inc"))["channel"]["id"]
    await client.conversations_invite(channel=cid, users=["U1"])
    await client.conversations_invite(channel=cid, users=["U1", "U2"])
    assert fake_slack.channel(cid).members == ["UBOT", "U1", "U2"]
    await expect_error(
        client.conversations_invite(channel=cid, users="U1,U2"), "already_in_channel"
    )
    await client.conversations_archive(channel=cid)
    await expect_error(client.conversations_invite(channel=cid, users="U3"), "is_archived")


async def test_join_set_topic_and_archive(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    public = fake_slack.add_channel("ops", members=["U1"])
    private = fake_slack.add_channel("secret", is_private=True, members=["U1"])
    await expect_error(client.conversations_setTopic(channel=public, topic="x"), "not_in_channel")
    await client.conversations_join(channel=public)
    error = "method_not_supported_for_channel_type"
    await expect_error(client.conversations_join(channel=private), error)
    await expect_error(client.conversations_setTopic(channel=public, topic="x" * 251), "too_long")
    response = await client.conversations_setTopic(channel=public, topic="SEV1: checkout down")
    assert response["channel"]["topic"]["value"] == "SEV1: checkout down"
    assert fake_slack.channel(public).topic == "SEV1: checkout down"
    await client.conversations_archive(channel=public)
    await expect_error(client.conversations_archive(channel=public), "already_archived")
    await expect_error(client.conversations_setTopic(channel=public, topic="y"), "is_archived")


async def test_conversations_list_paginates(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    for index in range(5):
        fake_slack.add_channel(f"chan-{index}")
    fake_slack.add_channel("hidden", is_private=True, members=["U1"])
    joined = fake_slack.add_channel("mine", is_private=True, bot_member=True)
    names: list[str] = []
    cursor = None
    pages = 0
    while True:
        response = await client.conversations_list(
            types="public_channel,private_channel", limit=2, cursor=cursor
        )
        pages += 1
        names += [c["name"] for c in response["channels"]]
        cursor = response["response_metadata"]["next_cursor"]
        if not cursor:
            break
    assert pages == 3
    assert names == ["chan-0", "chan-1", "chan-2", "chan-3", "chan-4", "mine"]
    assert fake_slack.channel(joined).is_private
    await expect_error(client.conversations_list(cursor="garbage!"), "invalid_cursor")


async def test_members_info_and_open(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", members=["U1", "U2", "U3"], bot_member=True)
    first = await client.conversations_members(channel=cid, limit=3)
    assert first["members"] == ["U1", "U2", "U3"]
    cursor = first["response_metadata"]["next_cursor"]
    second = await client.conversations_members(channel=cid, limit=3, cursor=cursor)
    assert second["members"] == ["UBOT"]
    assert second["response_metadata"]["next_cursor"] == ""
    info = await client.conversations_info(channel=cid)
    assert info["channel"]["name"] == "ops"
    im_one = await client.conversations_open(users="U1")
    im_two = await client.conversations_open(users=["U1"])
    assert im_one["channel"]["id"] == im_two["channel"]["id"]
    assert im_one["channel"]["id"].startswith("D")


# messages ----------------------------------------------------------------------------


async def test_post_message_channel_rules(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    private = fake_slack.add_channel("secret", is_private=True, members=["U1"])
    public = fake_slack.add_channel("open", members=["U1"])
    await expect_error(client.chat_postMessage(channel=private, text="hi"), "not_in_channel")
    await expect_error(client.chat_postMessage(channel="CMISSING", text="hi"), "channel_not_found")
    with pytest.warns(UserWarning):
        await expect_error(client.chat_postMessage(channel=public), "no_text")
    await expect_error(client.chat_postMessage(channel=public, text="x" * 40_001), "msg_too_long")
    response = await client.chat_postMessage(channel=public, text="hello", unfurl_links=False)
    assert response["channel"] == public
    assert re.fullmatch(r"\d{10}\.\d{6}", response["ts"])
    [message] = fake_slack.messages(public)
    assert (message.text, message.user, message.options["unfurl_links"]) == ("hello", "UBOT", False)
    assert fake_slack.messages(private) == []


async def test_post_message_to_user_opens_im(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    response = await client.chat_postMessage(channel="U1", text="you are paged")
    dm = response["channel"]
    assert dm.startswith("D")
    assert fake_slack.channel(dm).im_user == "U1"
    again = await client.chat_postMessage(channel="U1", text="still paged")
    assert again["channel"] == dm
    assert [m.text for m in fake_slack.messages(dm)] == ["you are paged", "still paged"]


async def test_timestamps_strictly_increase(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    posts = [client.chat_postMessage(channel=cid, text=str(i)) for i in range(20)]
    responses = await asyncio.gather(*posts)
    stamps = sorted(r["ts"] for r in responses)
    assert len(set(stamps)) == 20
    assert [m.ts for m in fake_slack.messages(cid)] == stamps


async def test_threads(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    parent = (await client.chat_postMessage(channel=cid, text="parent"))["ts"]
    await client.chat_postMessage(channel=cid, text="reply", thread_ts=parent)
    await client.chat_postMessage(channel=cid, text="loud", thread_ts=parent, reply_broadcast=True)
    await expect_error(
        client.chat_postMessage(channel=cid, text="x", thread_ts="1.000001"), "thread_not_found"
    )
    assert [m.text for m in fake_slack.messages(cid)] == ["parent", "loud"]
    assert [m.text for m in fake_slack.replies(cid, parent)] == ["reply", "loud"]
    thread = await client.conversations_replies(channel=cid, ts=parent)
    assert [m["text"] for m in thread["messages"]] == ["parent", "reply", "loud"]
    assert thread["messages"][0]["reply_count"] == 2
    history = await client.conversations_history(channel=cid)
    assert [m["text"] for m in history["messages"]] == ["loud", "parent"]


async def test_reply_to_a_reply_is_refused(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    parent = (await client.chat_postMessage(channel=cid, text="parent"))["ts"]
    reply = (await client.chat_postMessage(channel=cid, text="r", thread_ts=parent))["ts"]
    await expect_error(
        client.chat_postMessage(channel=cid, text="x", thread_ts=reply), "thread_not_found"
    )


async def test_invalid_blocks(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    too_many = [section(f"b{i}") for i in range(51)]
    error = await expect_error(
        client.chat_postMessage(channel=cid, text="t", blocks=too_many), "invalid_blocks"
    )
    assert "no more than 50 items allowed [json-pointer:/blocks]" in error.response["errors"][0]
    error = await expect_error(
        client.chat_postMessage(channel=cid, text="t", blocks=[section("x" * 3001)]),
        "invalid_blocks",
    )
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    assert fake_slack.messages(cid) == []
    await client.chat_postMessage(channel=cid, text="t", blocks=[section("x" * 3000)] * 50)


async def test_blocks_as_json_string_in_a_form_body(fake_slack: FakeSlack) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    form = {"channel": cid, "text": "t", "blocks": '[{"type":"divider"}]'}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as session:
        url = fake_slack.api_url + "chat.postMessage"
        async with session.post(url, data=form, headers=headers) as response:
            assert (await response.json())["ok"] is True
        form["blocks"] = "[not json"
        async with session.post(url, data=form, headers=headers) as response:
            assert (await response.json())["error"] == "invalid_blocks_format"
    assert fake_slack.messages(cid)[0].blocks == [{"type": "divider"}]


async def test_chat_update_keeps_history(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", members=["U1"], bot_member=True)
    ts = (await client.chat_postMessage(channel=cid, text="v1", blocks=[section("v1")]))["ts"]
    response = await client.chat_update(channel=cid, ts=ts, text="v2", blocks=[section("v2")])
    assert response["message"]["edited"]["user"] == "UBOT"
    [message] = fake_slack.messages(cid)
    assert message.text == "v2"
    assert [e.text for e in message.edits] == ["v1"]
    assert message.edits[0].blocks == [section("v1")]
    human = fake_slack.add_message(cid, "U1", "I see errors")
    await expect_error(
        client.chat_update(channel=cid, ts=human.ts, text="x"), "cant_update_message"
    )
    await expect_error(client.chat_update(channel=cid, ts="1.2", text="x"), "message_not_found")
    await expect_error(
        client.chat_update(channel=cid, ts=ts, text="x", blocks=[section("")]), "invalid_blocks"
    )
    assert message.text == "v2"


async def test_ephemeral_and_permalink(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", members=["U1"], bot_member=True)
    await expect_error(
        client.chat_postEphemeral(channel=cid, user="U2", text="psst"), "user_not_in_channel"
    )
    response = await client.chat_postEphemeral(channel=cid, user="U1", text="psst")
    assert fake_slack.ephemeral[0].user == "U1"
    assert fake_slack.ephemeral[0].message_ts == response["message_ts"]
    assert fake_slack.messages(cid) == []
    ts = (await client.chat_postMessage(channel=cid, text="hello"))["ts"]
    link = await client.chat_getPermalink(channel=cid, message_ts=ts)
    assert link["permalink"] == f"https://fake.slack.test/archives/{cid}/p{ts.replace('.', '')}"


async def test_pins(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    outside = fake_slack.add_channel("elsewhere")
    ts = (await client.chat_postMessage(channel=cid, text="summary"))["ts"]
    await client.pins_add(channel=cid, timestamp=ts)
    await expect_error(client.pins_add(channel=cid, timestamp=ts), "already_pinned")
    await expect_error(client.pins_add(channel=cid, timestamp="1.5"), "message_not_found")
    await expect_error(client.pins_add(channel=outside, timestamp=ts), "not_in_channel")
    assert fake_slack.pins(cid) == [ts]
    listed = await client.pins_list(channel=cid)
    assert listed["items"][0]["message"]["text"] == "summary"
    await client.reactions_add(channel=cid, timestamp=ts, name="eyes")
    await expect_error(
        client.reactions_add(channel=cid, timestamp=ts, name="eyes"), "already_reacted"
    )


# users -------------------------------------------------------------------------------


async def test_users_and_usergroups(client: AsyncWebClient) -> None:
    user = (await client.users_info(user="U1"))["user"]
    assert user["tz"] == "Europe/Paris"
    assert user["profile"]["real_name"] == "Alice Doe"
    assert user["is_bot"] is False
    await expect_error(client.users_info(user="UNOPE"), "user_not_found")
    groups = await client.usergroups_list(include_users=True)
    assert groups["usergroups"][0]["handle"] == "oncall"
    assert (await client.usergroups_users_list(usergroup="S1"))["users"] == ["U1", "U2"]
    await expect_error(client.usergroups_users_list(usergroup="SNOPE"), "no_such_subteam")
    members = await client.users_list(limit=2)
    assert len(members["members"]) == 2 and members["response_metadata"]["next_cursor"]


# views -------------------------------------------------------------------------------


def modal(title: str = "Declare", blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "declare",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Declare"},
        "blocks": blocks if blocks is not None else [section("Describe the incident")],
    }


async def test_views_open_accepts_a_trigger_once(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    trigger = fake_slack.new_trigger_id()
    opened = await client.views_open(trigger_id=trigger, view=modal())
    view_id = opened["view"]["id"]
    assert view_id.startswith("V") and fake_slack.views[view_id]["callback_id"] == "declare"
    assert opened["view"]["state"] == {"values": {}}
    await expect_error(client.views_open(trigger_id=trigger, view=modal()), "expired_trigger_id")


async def test_views_validation(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    error = await expect_error(
        client.views_open(trigger_id=fake_slack.new_trigger_id(), view=modal("x" * 25)),
        "invalid_arguments",
    )
    assert error.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    huge = modal(blocks=[section("x" * 2900) for _ in range(90)])
    await expect_error(
        client.views_open(trigger_id=fake_slack.new_trigger_id(), view=huge), "view_too_large"
    )
    many = modal(blocks=[{"type": "divider"}] * 101)
    await expect_error(
        client.views_open(trigger_id=fake_slack.new_trigger_id(), view=many), "invalid_arguments"
    )
    assert fake_slack.views == {}


async def test_views_update_push_and_publish(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    opened = (await client.views_open(trigger_id=fake_slack.new_trigger_id(), view=modal()))["view"]
    updated = await client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("v2"))
    assert fake_slack.views[opened["id"]]["title"]["text"] == "v2"
    await expect_error(
        client.views_update(view_id=opened["id"], hash=opened["hash"], view=modal("v3")),
        "hash_conflict",
    )
    assert updated["view"]["hash"] != opened["hash"]
    for _ in range(2):
        trigger = fake_slack.new_trigger_id(view_id=opened["id"])
        await client.views_push(trigger_id=trigger, view=modal("pushed"))
    trigger = fake_slack.new_trigger_id(view_id=opened["id"])
    await expect_error(client.views_push(trigger_id=trigger, view=modal()), "push_limit_reached")
    home = {"type": "home", "blocks": [section("Open incidents: 0")]}
    first = await client.views_publish(user_id="U1", view=home)
    second = await client.views_publish(user_id="U1", view=home)
    assert first["view"]["id"] == second["view"]["id"] == fake_slack.home_views["U1"]["id"]


# faults ------------------------------------------------------------------------------


async def test_429_reaches_the_client_with_retry_after(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    fake_slack.fail_http("chat.postMessage", status=429, retry_after=7)
    cid = fake_slack.add_channel("ops", bot_member=True)
    error = await expect_error(client.chat_postMessage(channel=cid, text="x"), "ratelimited")
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "7"
    assert fake_slack.messages(cid) == []
    await client.chat_postMessage(channel=cid, text="x")
    assert [c.error for c in fake_slack.calls_to("chat.postMessage")] == ["ratelimited", None]


async def test_rate_limit_retry_handler_recovers(fake_slack: FakeSlack) -> None:
    fake_slack.fail_http("conversations.create", status=429, retry_after=0, times=2)
    handler = AsyncRateLimitErrorRetryHandler(max_retry_count=2)
    client = AsyncWebClient(token=TOKEN, base_url=fake_slack.api_url, retry_handlers=[handler])
    response = await client.conversations_create(name="inc-retry")
    assert response["ok"]
    assert [c.status for c in fake_slack.calls_to("conversations.create")] == [429, 429, 200]


async def test_server_errors(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    fake_slack.fail_http("auth.test", status=500)
    error = await expect_error(client.auth_test(), "internal_error")
    assert error.response.status_code == 500
    fake_slack.fail_http("auth.test", status=503)
    retrying = AsyncWebClient(
        token=TOKEN, base_url=fake_slack.api_url, retry_handlers=[AsyncServerErrorRetryHandler()]
    )
    assert (await retrying.auth_test())["ok"]


async def test_scripted_slack_error(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    fake_slack.fail("conversations.create", error="restricted_action", times=2)
    for _ in range(2):
        await expect_error(client.conversations_create(name="inc-x"), "restricted_action")
    assert fake_slack.channel_by_name("inc-x") is None
    await client.conversations_create(name="inc-x")
    assert fake_slack.channel_by_name("inc-x") is not None


async def test_drop_is_a_connection_error(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    fake_slack.drop("conversations.create")
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.conversations_create(name="inc-drop")
    assert fake_slack.channel_by_name("inc-drop") is None
    assert fake_slack.calls[-1].error == "connection_dropped"
    fake_slack.drop("conversations.create")
    default_client = AsyncWebClient(token=TOKEN, base_url=fake_slack.api_url)
    assert (await default_client.conversations_create(name="inc-drop"))["ok"]


async def test_drop_after_processing_loses_only_the_answer(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    fake_slack.drop("conversations.create", after_processing=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.conversations_create(name="inc-lost")
    assert fake_slack.channel_by_name("inc-lost") is not None
    await expect_error(client.conversations_create(name="inc-lost"), "name_taken")


async def test_delay_and_slow(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    fake_slack.delay("auth.test", 0.2)
    started = time.monotonic()
    await client.auth_test()
    assert time.monotonic() - started >= 0.2
    fake_slack.reset_faults()
    fake_slack.slow("*", seconds=0.2)
    started = time.monotonic()
    await client.users_info(user="U1")
    assert time.monotonic() - started >= 0.2
    started = time.monotonic()
    await client.users_info(user="U1")
    assert time.monotonic() - started < 0.2


async def test_calls_record_when_they_took_effect(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    fake_slack.delay("chat.postMessage", 0.2)
    await client.chat_postMessage(channel=cid, text="seen after the delay")
    posted = fake_slack.calls[-1]
    assert posted.applied_at is not None and posted.applied_at - posted.at >= 0.2
    assert posted.to_json()["applied_at"] == posted.applied_at
    fake_slack.reset_faults()
    fake_slack.fail_http("chat.postMessage", status=429)
    await expect_error(client.chat_postMessage(channel=cid, text="refused"), "ratelimited")
    await expect_error(client.chat_postMessage(channel="CNOPE", text="x"), "channel_not_found")
    assert [c.applied_at for c in fake_slack.calls[-2:]] == [None, None]
    assert [m.text for m in fake_slack.messages(cid)] == ["seen after the delay"]


async def test_a_hold_keeps_one_conversations_calls_waiting_while_the_others_go_on(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    held_room = fake_slack.add_channel("held", bot_member=True)
    free_room = fake_slack.add_channel("free", bot_member=True)
    with pytest.raises(ValueError):
        fake_slack.hold("")
    with pytest.raises(ValueError):
        fake_slack.hold("chat.postMessage", channel="")
    hold = fake_slack.hold("chat.postMessage", channel=held_room)
    first = asyncio.create_task(client.chat_postMessage(channel=held_room, text="first"))
    second = asyncio.create_task(client.chat_postMessage(channel=held_room, text="second"))
    for _ in range(500):  # both calls reach the fake (no timing: a bound on the polling)
        if hold.waiting == 2:
            break
        await asyncio.sleep(0.01)
    assert hold.waiting == 2
    assert fake_slack.faults.describe()["holds"] == [
        {"method": "chat.postMessage", "channel": held_room, "waiting": 2, "most": 2, "held": 2}
    ]
    # Another conversation, and another method on the held one, are not held.
    await client.chat_postMessage(channel=free_room, text="meanwhile")
    await client.conversations_setTopic(channel=held_room, topic="still settable")
    assert [m.text for m in fake_slack.messages(free_room)] == ["meanwhile"]
    assert fake_slack.messages(held_room) == [] and not first.done() and not second.done()
    hold.release()
    await asyncio.gather(first, second)
    assert [m.text for m in fake_slack.messages(held_room)] == ["first", "second"]
    assert hold.waiting == 0 and hold.most == 2 and hold.held == 2
    assert fake_slack.faults.describe()["holds"] == []
    await client.chat_postMessage(channel=held_room, text="after")  # released: not held
    # reset_faults lets held calls go on too, so nothing is left hanging.
    fake_slack.hold("*")
    late = asyncio.create_task(client.chat_postMessage(channel=held_room, text="late"))
    for _ in range(500):
        if fake_slack.faults.describe()["holds"][0]["waiting"]:
            break
        await asyncio.sleep(0.01)
    fake_slack.reset_faults()
    assert (await late)["ok"]


async def test_a_fault_scripted_for_one_conversation_spares_the_others(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    troubled = fake_slack.add_channel("troubled", bot_member=True)
    fine = fake_slack.add_channel("fine", bot_member=True)
    with pytest.raises(ValueError):
        fake_slack.fail("chat.postMessage", "internal_error", channel="")
    fake_slack.fail("chat.postMessage", "internal_error", times=1, channel=troubled)
    await client.chat_postMessage(channel=fine, text="spared")
    await expect_error(client.chat_postMessage(channel=troubled, text="x"), "internal_error")
    await client.chat_postMessage(channel=troubled, text="x")  # the fault is used up
    fake_slack.fail_http("chat.postMessage", status=503, times=1, channel=fine)
    await client.chat_postMessage(channel=troubled, text="again")
    error = await expect_error(
        client.chat_postMessage(channel=fine, text="y"), "service_unavailable"
    )
    assert error.response.status_code == 503
    assert [m.text for m in fake_slack.messages(troubled)] == ["x", "again"]
    assert [m.text for m in fake_slack.messages(fine)] == ["spared"]


async def test_holds_and_conversation_faults_through_the_control_surface(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    room = fake_slack.add_channel("ops", bot_member=True)
    base = fake_slack.base_url
    async with aiohttp.ClientSession() as session:
        config = {
            "fail": {"method": "chat.postMessage", "error": "fatal_error", "channel": room},
            "hold": {"method": "conversations.setTopic", "channel": room},
        }
        async with session.post(f"{base}/_fake/faults", json=config) as response:
            faults = (await response.json())["faults"]
        assert faults["scripted"]["chat.postMessage"][0]["channel"] == room
        assert faults["holds"] == [
            {
                "method": "conversations.setTopic",
                "channel": room,
                "waiting": 0,
                "most": 0,
                "held": 0,
            }
        ]
        await expect_error(client.chat_postMessage(channel=room, text="x"), "fatal_error")
        topic = asyncio.create_task(client.conversations_setTopic(channel=room, topic="t"))
        for _ in range(500):
            if fake_slack.faults.describe()["holds"][0]["waiting"]:
                break
            await asyncio.sleep(0.01)
        assert not topic.done()
        release = {"release": {"method": "conversations.setTopic"}}
        async with session.post(f"{base}/_fake/faults", json=release) as response:
            assert (await response.json())["faults"]["holds"] == []
        assert (await topic)["ok"]
        async with session.post(f"{base}/_fake/faults", json={"hold": {}}) as response:
            assert response.status == 400


async def outcomes(fake: FakeSlack, count: int) -> list[str]:
    """Run auth.test `count` times and describe what each call met."""
    client = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])
    seen = []
    for _ in range(count):
        try:
            await client.auth_test()
            seen.append("ok")
        except SlackApiError as exc:
            seen.append(str(exc.response.status_code))
        except aiohttp.ClientConnectionError:
            seen.append("drop")
    return seen


async def test_fault_rate_is_reproducible(fake_slack: FakeSlack) -> None:
    fake_slack.fault_rate(0.5, seed=42, kinds=("429", "500", "drop"))
    first = await outcomes(fake_slack, 30)
    fake_slack.fault_rate(0.5, seed=42, kinds=("429", "500", "drop"))
    second = await outcomes(fake_slack, 30)
    assert first == second
    assert {"ok", "429", "500", "drop"} <= set(first)
    fake_slack.reset_faults()
    assert await outcomes(fake_slack, 5) == ["ok"] * 5


async def test_rate_limits_when_enforced(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    for index in range(25):
        await client.conversations_setTopic(channel=cid, topic=f"free{index}")
    fake_slack.enforce_rate_limits(scale=0.1)
    for index in range(20):
        await client.conversations_setTopic(channel=cid, topic=f"t{index}")
    error = await expect_error(client.conversations_setTopic(channel=cid, topic="x"), "ratelimited")
    assert error.response.status_code == 429
    assert int(error.response.headers["Retry-After"]) >= 1
    assert fake_slack.channel(cid).topic == "t19"
    other = fake_slack.add_channel("other", bot_member=True)
    await client.chat_postMessage(channel=other, text="unaffected")


async def test_post_message_limit_is_per_channel(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    fake_slack.enforce_rate_limits(scale=1.0)
    first = fake_slack.add_channel("one", bot_member=True)
    second = fake_slack.add_channel("two", bot_member=True)
    for index in range(5):
        await client.chat_postMessage(channel=first, text=str(index))
    await expect_error(client.chat_postMessage(channel=first, text="x"), "ratelimited")
    await client.chat_postMessage(channel=second, text="fine")


# files and response URLs -------------------------------------------------------------


async def test_file_upload_flow(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    cid = fake_slack.add_channel("ops", bot_member=True)
    response = await client.files_upload_v2(
        channel=cid,
        content="timeline\n10:00 paged",
        filename="timeline.txt",
        title="Timeline",
        initial_comment="Postmortem draft",
    )
    file_id = response["file"]["id"]
    stored = fake_slack.files[file_id]
    assert stored.content == b"timeline\n10:00 paged"
    assert (stored.title, stored.name, stored.channels) == ("Timeline", "timeline.txt", [cid])
    [message] = fake_slack.messages(cid)
    assert message.files == [file_id] and message.text == "Postmortem draft"


async def test_response_url(fake_slack: FakeSlack) -> None:
    url = fake_slack.new_response_url()
    webhook = AsyncWebhookClient(url)
    response = await webhook.send(text="Incident declared", response_type="ephemeral")
    assert (response.status_code, response.body) == (200, "ok")
    assert fake_slack.responses == [
        (url.rsplit("/", 1)[1], {"text": "Incident declared", "response_type": "ephemeral"})
    ]
    for _ in range(4):
        await webhook.send(text="again")
    assert (await webhook.send(text="sixth")).status_code == 404


# control surface ---------------------------------------------------------------------


async def test_http_control_surface(fake_slack: FakeSlack, client: AsyncWebClient) -> None:
    base = fake_slack.base_url
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{base}/_fake/channels", json={"name": "ops", "bot_member": True}
        ) as response:
            cid = (await response.json())["id"]
        await client.chat_postMessage(channel=cid, text="hello")
        async with session.get(f"{base}/_fake/state") as response:
            state = await response.json()
        [channel] = [c for c in state["channels"] if c["id"] == cid]
        assert channel["messages"][0]["text"] == "hello"
        assert "UBOT" in channel["members"]
        fault = {"fail": {"method": "auth.test", "error": "account_inactive"}}
        async with session.post(f"{base}/_fake/faults", json=fault) as response:
            assert response.status == 200
        await expect_error(client.auth_test(), "account_inactive")
        async with session.get(f"{base}/_fake/calls") as response:
            calls = (await response.json())["calls"]
        assert [c["method"] for c in calls] == ["chat.postMessage", "auth.test"]
        async with session.post(f"{base}/_fake/faults", json={"fail": {}}) as response:
            assert response.status == 400
        async with session.post(f"{base}/_fake/reset", json={}) as response:
            assert response.status == 200
    assert fake_slack.calls == [] and fake_slack.workspace.channels == {}


async def test_requests_built_in_another_process_get_urls_the_fake_accepts(
    fake_slack: FakeSlack,
) -> None:
    """A driver outside the test process (a sandbox, a benchmark) asks the fake for the
    response_url and trigger_id of the command it is about to send; both work."""
    base = fake_slack.base_url
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{base}/_fake/response_urls", json={}) as response:
            url = (await response.json())["response_url"]
        async with session.post(f"{base}/_fake/trigger_ids", json={}) as response:
            trigger = (await response.json())["trigger_id"]
        async with session.post(url, json={"text": "Only you can see this"}) as response:
            assert response.status == 200
        async with session.post(f"{base}/response/R999999", json={"text": "x"}) as response:
            assert response.status == 404
    assert fake_slack.responses[-1][1] == {"text": "Only you can see this"}
    view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    client = AsyncWebClient(token=TOKEN, base_url=fake_slack.api_url, retry_handlers=[])
    opened = await client.views_open(trigger_id=trigger, view=view)
    assert fake_slack.workspace.view_triggers[opened["view"]["id"]] == trigger


async def test_people_post_pin_and_react_through_the_control_surface(
    fake_slack: FakeSlack,
) -> None:
    channel = fake_slack.add_channel("ops", members=["U1"])
    base = fake_slack.base_url
    async with aiohttp.ClientSession() as session:
        posted = {"channel": channel, "user": "U1", "text": "1 &lt; 2"}
        async with session.post(f"{base}/_fake/messages", json=posted) as response:
            ts = (await response.json())["ts"]
        async with session.post(
            f"{base}/_fake/pins", json={"channel": channel, "ts": ts, "user": "U1"}
        ) as response:
            assert response.status == 200
        react = {"channel": channel, "ts": ts, "user": "U2", "name": ":pushpin:"}
        async with session.post(f"{base}/_fake/reactions", json=react) as response:
            assert response.status == 200
        async with session.post(f"{base}/_fake/reactions", json=react) as response:
            assert response.status == 400
    [message] = fake_slack.messages(channel)
    assert (message.user, message.text, message.reactions) == (
        "U1",
        "1 &lt; 2",
        {"pushpin": ["U2"]},
    )
    assert fake_slack.pins(channel) == [ts]


async def test_watchers_hear_of_writes_not_reads(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    seen: list[int] = []
    stop = fake_slack.on_change(seen.append)
    channel = (await client.conversations_create(name="ops"))["channel"]["id"]
    assert len(seen) == 1
    await client.conversations_history(channel=channel)
    await client.auth_test()
    assert len(seen) == 1
    await client.chat_postMessage(channel=channel, text="hi")
    await AsyncWebhookClient(fake_slack.new_response_url()).send(text="private")
    assert len(seen) == 3 and seen[-1] == fake_slack.version
    stop()
    await client.chat_postMessage(channel=channel, text="again")
    assert len(seen) == 3


async def test_a_clock_of_its_own_dates_messages_and_channels() -> None:
    moment = [1_900_000_000.25]
    fake = FakeSlack(bot_token=TOKEN, clock=lambda: moment[0])
    async with fake:
        client = AsyncWebClient(token=TOKEN, base_url=fake.api_url, retry_handlers=[])
        channel = (await client.conversations_create(name="later"))["channel"]
        first = await client.chat_postMessage(channel=channel["id"], text="one")
        second = await client.chat_postMessage(channel=channel["id"], text="two")
    assert channel["created"] == 1_900_000_000
    assert first["ts"] == "1900000000.250000" and second["ts"] == "1900000000.250001"


async def test_a_private_file_url_serves_the_bytes_to_the_bot_only(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    channel = (await client.conversations_create(name="files"))["channel"]["id"]
    response = await client.files_upload_v2(
        channel=channel, content=b"# Postmortem\n", filename="pm.md", title="PM"
    )
    url = response["file"]["url_private"]
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Authorization": f"Bearer {TOKEN}"}) as answer:
            assert (answer.status, await answer.read()) == (200, b"# Postmortem\n")
        async with session.get(url) as answer:
            assert answer.status == 403


async def test_closing_a_modal_closes_the_views_pushed_above_it(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    view = {"type": "modal", "title": {"type": "plain_text", "text": "T"}, "blocks": []}
    first = (await client.views_open(trigger_id=fake_slack.new_trigger_id(), view=view))["view"]
    pushed = (
        await client.views_push(trigger_id=fake_slack.new_trigger_id(first["id"]), view=view)
    )["view"]
    assert fake_slack.workspace.open_stack(pushed["id"]) == [first["id"], pushed["id"]]
    assert fake_slack.close_view(first["id"]) == [pushed["id"], first["id"]]
    assert fake_slack.workspace.open_stack(first["id"]) is None
    assert fake_slack.close_view(first["id"]) == []


async def test_a_snapshot_restores_the_workspace_in_a_new_fake(
    fake_slack: FakeSlack, client: AsyncWebClient
) -> None:
    channel = (await client.conversations_create(name="ops"))["channel"]["id"]
    await client.conversations_invite(channel=channel, users="U1")
    parent = await client.chat_postMessage(channel=channel, text="parent")
    await client.chat_postMessage(channel=channel, text="reply", thread_ts=parent["ts"])
    await client.chat_update(channel=channel, ts=parent["ts"], text="edited")
    await client.pins_add(channel=channel, timestamp=parent["ts"])
    fake_slack.add_reaction(channel, parent["ts"], "U1", "pushpin")
    await client.chat_postMessage(channel="U2", text="a DM")
    await client.files_upload_v2(channel=channel, content=b"\x00bytes", filename="b.bin")
    home = {"type": "home", "blocks": [{"type": "divider"}]}
    await client.views_publish(user_id="U1", view=home)
    data = json.loads(json.dumps(fake_slack.snapshot()))

    again = FakeSlack(bot_token=TOKEN, seed=7)
    again.restore(data)
    async with again:
        before, after = fake_slack.dump_state(), again.dump_state()
        for key in ("users", "usergroups", "channels", "home_views"):
            # Files' URLs name the server they are on.
            old = json.dumps(before[key]).replace(fake_slack.base_url, "")
            assert json.dumps(after[key]).replace(again.base_url, "") == old, key
        assert again.files.keys() == fake_slack.files.keys()
        assert [f.content for f in again.files.values()] == [b"\x00bytes"]
        second = AsyncWebClient(token=TOKEN, base_url=again.api_url, retry_handlers=[])
        made = await second.conversations_create(name="ops-2")
        assert made["channel"]["id"] not in fake_slack.workspace.channels
        later = await second.chat_postMessage(channel=channel, text="later")
        assert float(later["ts"]) > max(float(m.ts) for m in fake_slack.messages(channel))
        dm = await second.conversations_open(users="U2")
        assert dm["channel"]["id"] == fake_slack.workspace.ims["U2"]
    with pytest.raises(ValueError):
        again.restore({**data, "format": 99})


async def test_socket_mode_envelopes_reach_the_app_and_its_acknowledgments_come_back(
    fake_slack: FakeSlack,
) -> None:
    from slack_sdk.socket_mode.aiohttp import SocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from slack_sdk.socket_mode.response import SocketModeResponse

    from app.fake_slack.socket_mode import NotConnected

    api = AsyncWebClient(token=TOKEN, base_url=fake_slack.api_url, retry_handlers=[])
    with pytest.raises(NotConnected):
        await fake_slack.send_envelope("events_api", {"event": {}})
    await expect_error(api.apps_connections_open(app_token=TOKEN), "not_allowed_token_type")
    client = SocketModeClient(app_token=fake_slack.app_token, web_client=api)

    async def acknowledge(client: SocketModeClient, request: SocketModeRequest) -> None:
        text = request.payload.get("text")
        reply = {"text": f"got {text}"} if request.type == "slash_commands" else None
        await client.send_socket_mode_response(SocketModeResponse(request.envelope_id, reply))

    client.socket_mode_request_listeners.append(acknowledge)  # type: ignore[arg-type]
    await client.connect()
    try:
        await fake_slack.sockets.wait_connected(5)
        assert await fake_slack.send_envelope("slash_commands", {"text": "hi"}) == {
            "text": "got hi"
        }
        assert await fake_slack.send_envelope("events_api", {"event": {}}) == {}
    finally:
        await client.close()
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{fake_slack.base_url}/link/?ticket=guessed") as response:
            assert response.status == 404


# block kit limits --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "pointer"),
    [
        ({"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11}, "/blocks/0/fields"),
        (
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]},
            "/blocks/0/fields/0/text",
        ),
        (
            {"type": "header", "text": {"type": "plain_text", "text": "h" * 151}},
            "/blocks/0/text/text",
        ),
        ({"type": "header", "text": {"type": "mrkdwn", "text": "h"}}, "/blocks/0/text/type"),
        (
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b" * 76}}],
            },
            "/blocks/0/elements/0/text/text",
        ),
        (
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "b"},
                        "value": "v" * 2001,
                    }
                ],
            },
            "/blocks/0/elements/0/value",
        ),
        (
            {
                "type": "actions",
                "elements": [{"type": "button", "text": {"type": "plain_text", "text": "b"}}] * 26,
            },
            "/blocks/0/elements",
        ),
        (
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
            "/blocks/0/elements",
        ),
        ({"type": "divider", "block_id": "x" * 256}, "/blocks/0/block_id"),
        ({"type": "carousel"}, "/blocks/0/type"),
        (
            {
                "type": "input",
                "label": {"type": "plain_text", "text": "l"},
                "element": {"type": "plain_text_input"},
            },
            "/blocks/0/type",
        ),
        (
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "s"},
                "accessory": {
                    "type": "static_select",
                    "options": [{"text": {"type": "plain_text", "text": "o"}, "value": "v" * 151}],
                },
            },
            "/blocks/0/accessory/options/0/value",
        ),
    ],
)
async def test_block_limits(block: dict[str, Any], pointer: str) -> None:
    problems = validate_blocks([block])
    assert problems, block
    assert any(p.endswith(f"[json-pointer:{pointer}]") for p in problems), problems


async def test_valid_blocks_and_views_pass() -> None:
    select = {
        "type": "static_select",
        "action_id": "sev",
        "options": [
            {"text": {"type": "plain_text", "text": f"SEV{i}"}, "value": str(i)} for i in range(100)
        ],
    }
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Incident"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Status*"}, "accessory": select},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "opened"}]},
        {"type": "divider"},
        {
            "type": "input",
            "label": {"type": "plain_text", "text": "What?"},
            "element": {"type": "plain_text_input", "max_length": 3000},
        },
    ]
    assert validate_blocks(blocks[:4]) == []
    view = modal(blocks=blocks)
    assert validate_view(view) == []
    del view["submit"]
    assert validate_view(view) == [
        "[ERROR] must provide `submit` when the view has input blocks [json-pointer:/view]"
    ]
