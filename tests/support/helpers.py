"""Small readers over the fake's state, shared by the scenario tests."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from app.fake_slack import FakeSlack
from app.fake_slack.state import Channel, Message
from tests.support.constants import CEO, DAVE, ENG_LEAD, ENG_MGR, ONCALL, ONCALL_BACKUP, VP_ENG


def channel(fake: FakeSlack, name: str) -> Channel:
    found = fake.channel_by_name(name)
    assert found is not None, f"no channel #{name}"
    return found


def bot_messages(fake: FakeSlack, channel_id: str) -> list[Message]:
    return [m for m in fake.messages(channel_id) if m.user == "UBOT"]


def latest_text(message: Message) -> str:
    """The text of a message as it reads now (after edits)."""
    return message.text


def blocks_json(message: Message) -> str:
    return json.dumps(message.blocks or [])


def announcements(fake: FakeSlack) -> list[Message]:
    return bot_messages(fake, channel(fake, "incidents").id)


def answers(fake: FakeSlack) -> list[str]:
    """Texts sent back to users through response URLs."""
    return [body.get("text", "") for _, body in fake.responses]


def all_posted_text(fake: FakeSlack) -> str:
    """Every text and block the bot sent anywhere, as one string, to search for leaks."""
    parts: list[str] = []
    for call in fake.calls:
        if call.method in {"chat.postMessage", "chat.update", "chat.postEphemeral"}:
            parts.append(json.dumps(call.args))
        if call.method in {"views.open", "views.update", "views.push", "views.publish"}:
            parts.append(json.dumps(call.args))
        if call.method == "conversations.setTopic":
            parts.append(str(call.args.get("topic")))
    for _, body in fake.responses:
        parts.append(json.dumps(body))
    return "\n".join(parts)


def last_view(fake: FakeSlack, callback_id: str) -> dict[str, Any]:
    matching = [v for v in fake.views.values() if v.get("callback_id") == callback_id]
    assert matching, f"no view {callback_id} was opened"
    return matching[-1]


def dms(fake: FakeSlack, user: str) -> list[Message]:
    """Messages the bot sent to `user` in their direct-message conversation."""
    ims = [c for c in fake.workspace.channels.values() if c.is_im and c.im_user == user]
    return [m for c in ims for m in fake.messages(c.id) if m.user == "UBOT"]


def escalation_dms(fake: FakeSlack) -> Counter[tuple[str, str]]:
    """(user, first line) of every escalation or page DM, counted."""
    counts: Counter[tuple[str, str]] = Counter()
    for user in [ONCALL_BACKUP, DAVE, ENG_MGR, VP_ENG, ENG_LEAD, ONCALL, "UONCALL2", CEO]:
        for message in dms(fake, user):
            if "escalated to you" in message.text or "You are paged" in message.text:
                counts[(user, message.text.splitlines()[0])] += 1
    return counts
