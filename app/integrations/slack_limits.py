"""Slack's published Web API rate limits: the budget the gateway paces its calls to.

Slack limits each method per workspace and per app, in tiers: Tier 1 allows 1+ call a minute,
Tier 2 20+, Tier 3 50+, Tier 4 100+ (https://docs.slack.dev/apis/web-api/rate-limits).
`chat.postMessage` has its own rule: about one message a second per channel, with short bursts
(modelled as 5 in any 5 seconds). A method missing from the table is not paced: Slack treats it
as "special" (auth.test, chat.getPermalink) and its 429s are still waited out.

The tiers are the lower bound Slack publishes ("20+"): pacing to them never asks for more than
Slack promises.
"""

from __future__ import annotations

from dataclasses import dataclass

WINDOW_SECONDS = 60.0
TIER_PER_MINUTE: dict[int, int] = {1: 1, 2: 20, 3: 50, 4: 100}
# The methods Warroom calls (and their neighbours), by Slack's published tier.
METHOD_TIERS: dict[str, int] = {
    "conversations.create": 2,
    "conversations.setTopic": 2,
    "conversations.list": 2,
    "pins.add": 2,
    "bookmarks.add": 2,
    "pins.list": 2,
    "usergroups.list": 2,
    "usergroups.users.list": 2,
    "users.list": 2,
    "conversations.invite": 3,
    "conversations.archive": 3,
    "conversations.info": 3,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.join": 3,
    "conversations.open": 3,
    "chat.update": 3,
    "reactions.add": 3,
    "users.lookupByEmail": 3,
    "views.open": 4,
    "views.push": 4,
    "views.update": 4,
    "views.publish": 4,
    "users.info": 4,
    "conversations.members": 4,
    "chat.postEphemeral": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
}
POST_MESSAGE = "chat.postMessage"
POST_MESSAGE_BURST = 5
"""chat.postMessage: this many messages in any this-many seconds, per channel (1/s sustained)."""


@dataclass(frozen=True)
class Limit:
    """At most `calls` calls in any `seconds`-long window."""

    calls: int
    seconds: float


def limit_for(method: str, scale: float = 1.0) -> Limit | None:
    """The limit on `method` with every window multiplied by `scale` (1.0: Slack's own), or
    None when the method is not paced or `scale` is 0 (pacing off)."""
    if scale <= 0:
        return None
    if method == POST_MESSAGE:
        return Limit(POST_MESSAGE_BURST, POST_MESSAGE_BURST * scale)
    tier = METHOD_TIERS.get(method)
    if tier is None:
        return None
    return Limit(TIER_PER_MINUTE[tier], WINDOW_SECONDS * scale)


def method_of(key: str) -> str:
    """The method of a rate-limit bucket key (`chat.postMessage:C123` -> `chat.postMessage`)."""
    return key.partition(":")[0]
