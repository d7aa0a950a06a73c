"""User text never pings, links or breaks a message, whichever field it is typed into."""

from __future__ import annotations

import re

import pytest

from app.services.incidents import INVISIBLE
from tests.support.bot import Bot
from tests.support.helpers import all_posted_text, channel, last_view

PING = "<!channel>"
HOSTILE = [
    PING,
    "<!here> <!everyone> <@UEVIL> <#CEVIL> <!subteam^SEVIL>",
    "<https://evil.example|click me> & more",
    '{{ "tem" ~ "plate-ran" }} {% raw %} {{ config }}',
    "🔥 \"quoted\" 'single' `code` *bold* _it_ ~strike~",
    "\u202eright-to-left\u200f mark",
    "control\x00chars\x07\x1b[31m\x7f here",
    "'; DROP TABLE incidents; -- \" OR 1=1",
    "zero\u200bwidth\ufeffjoiners",
]
# Anything the bot sends that would ping, link or mention from user text.
LEAK = re.compile(
    r"<!channel>|<!here>|<!everyone>|<@UEVIL>|<#CEVIL>|<!subteam\^SEVIL>|<https://evil"
)


def assert_no_leak(bot: Bot) -> None:
    posted = all_posted_text(bot.fake)
    found = LEAK.search(posted)
    assert not found, posted[max(0, found.start() - 300) : found.end() + 100]
    # The template syntax was not evaluated (a number such as 7*7 would also match the times
    # in messages; this text appears nowhere unless evaluated).
    assert "template-ran" not in posted
    failed = [c for c in bot.fake.calls if not c.ok and c.status == 200]
    assert not [c for c in failed if c.error in {"invalid_blocks", "msg_too_long", "too_long"}]


@pytest.mark.parametrize("text", HOSTILE)
async def test_every_field_is_escaped(bot: Bot, text: str) -> None:
    title = text[:80]
    await bot.slack.command(f"declare sev2 {title}")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(
        view, {"title": title, "description": text, "service": text[:80], "severity": "1"}
    )
    await bot.settle()
    await bot.slack.command(f"update {text}", channel=room)
    await bot.slack.command("update", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "post_update")
    await bot.slack.submit(view, {"done_so_far": text, "investigation": text, "eta": text})
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    await bot.slack.submit(
        view,
        {"root_cause": text, "impact_summary": text, "users_affected": text, "next_steps": text},
    )
    await bot.settle()
    await bot.slack.command(f"role commander {text}", channel=room)
    await bot.slack.command("list")
    await bot.slack.command("status 1")
    await bot.slack.command("status 2")
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status == "resolved"
    # Stored as typed, less control characters and invisible bidi / zero-width characters.
    printable = "".join(
        c for c in text if (c in "\n\t" or (ord(c) >= 32 and ord(c) != 127)) and c not in INVISIBLE
    )
    assert snap.root_cause == printable.strip()
    assert_no_leak(bot)


async def test_longest_fields_stay_within_block_kit_limits(bot: Bot) -> None:
    """3,000 characters of '<' grow fourfold when escaped; messages split instead of failing."""
    await bot.slack.command("declare sev2 " + "<" * 80)
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("update", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "post_update")
    await bot.slack.submit(
        view, {"done_so_far": "<&>" * 1000, "investigation": "x" * 3000, "eta": "<" * 200}
    )
    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "resolve_incident")
    await bot.slack.submit(view, {"root_cause": "&" * 3000, "next_steps": "<!channel>" * 300})
    await bot.settle()
    for call in bot.fake.calls_to("chat.postMessage") + bot.fake.calls_to("chat.update"):
        assert call.ok, (call.error, str(call.args)[:300])
        for block in call.args.get("blocks") or []:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
    assert_no_leak(bot)


async def test_update_text_over_the_limit_is_refused_whole(bot: Bot) -> None:
    await bot.slack.command("declare sev3 Limits")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("update " + "y" * 3001, channel=room)
    await bot.settle()
    from tests.support.helpers import answers

    assert "Investigation is 3,001 characters; at most 3,000 fit." in answers(bot.fake)[-1]
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.last_update_at is None


async def test_ten_thousand_characters_are_refused_whole(bot: Bot) -> None:
    huge = "<!channel> " * 1000
    status, body = await bot.slack.command("declare sev2 " + huge)
    assert status == 200 and "at most 80" in body["text"]
    await bot.slack.command("declare sev2 Fine title")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.command("update " + huge, channel=room)
    await bot.slack.command("update", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "post_update")
    await bot.slack.submit(view, {"investigation": huge})
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.last_update_at is None
    from tests.support.helpers import answers

    assert "Investigation is 10,999 characters; at most 3,000 fit." in answers(bot.fake)[-1]
    assert_no_leak(bot)


async def test_invalid_utf8_in_form_bodies(bot: Bot) -> None:
    # Percent-encoded bytes that are not UTF-8: decoded with replacement characters.
    body = (
        "command=%2Fincident&text=declare+sev3+broken+%FF%FE%80+bytes&user_id=UALICE"
        "&team_id=T1&channel_id=CGENERAL&trigger_id=1.1.x&response_url="
        + bot.fake.new_response_url()
    )
    status, _ = await bot.slack.post_raw(
        body, bot.slack.headers(body), "application/x-www-form-urlencoded"
    )
    assert status == 200
    await bot.settle()
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.title == "broken \ufffd\ufffd\ufffd bytes"
    # Raw bytes that are not UTF-8 at all: refused, nothing stored.
    raw = b"command=%2Fincident&text=declare+sev3+\xff\xfe&user_id=UALICE"
    status, _ = await bot.slack.post_raw(
        raw, bot.slack.headers(raw.decode("latin-1")), "application/x-www-form-urlencoded"
    )
    assert status in {400, 401}
    await bot.settle()
    assert len(await bot.warroom.incidents.open_incidents()) == 1
