"""What Slack sends the bot, built from what a person does in the sandbox: slash commands,
clicks, form submissions and Events API callbacks, signed with the signing secret and posted
over HTTP to the bot's `/slack/events`, exactly as Slack would."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp

JsonDict = dict[str, Any]


@dataclass
class Answer:
    """The bot's HTTP answer: its status and its body (JSON, or plain text as `{"text": …}`)."""

    status: int
    body: JsonDict


class SlackRequests:
    """Signs and sends Slack's requests to the bot."""

    def __init__(self, url: str, signing_secret: str, team_id: str, app_id: str) -> None:
        self.url = url
        self.secret = signing_secret.encode()
        self.team_id = team_id
        self.app_id = app_id
        self._session: aiohttp.ClientSession | None = None
        self._event_ids = itertools.count(1)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def sign(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        """Slack's signature headers for a body (v0, HMAC-SHA256 of `v0:<ts>:<body>`)."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        base = f"v0:{ts}:{body}".encode()
        digest = hmac.new(self.secret, base, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}

    async def _post(self, body: str, content_type: str) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        headers = {**self.sign(body), "Content-Type": content_type}
        async with self._session.post(self.url, data=body.encode(), headers=headers) as response:
            return Answer(response.status, _parse(await response.text()))

    async def command(
        self,
        *,
        text: str,
        user: str,
        user_name: str,
        channel: str,
        channel_name: str,
        response_url: str,
        trigger_id: str,
        command: str = "/incident",
    ) -> Answer:
        """A slash command, form-encoded; `text` is in Slack's format (escaped, mentions
        as `<@U…|name>`)."""
        fields = {
            "token": "sandbox",
            "team_id": self.team_id,
            "team_domain": "sandbox",
            "channel_id": channel,
            "channel_name": channel_name,
            "user_id": user,
            "user_name": user_name,
            "command": command,
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        return await self._post(urlencode(fields), "application/x-www-form-urlencoded")

    async def interaction(self, payload: JsonDict) -> Answer:
        """An interactivity payload (block_actions, view_submission, view_closed…)."""
        full = {
            "token": "sandbox",
            "api_app_id": self.app_id,
            "team": {"id": self.team_id, "domain": "sandbox"},
            "is_enterprise_install": False,
            "enterprise": None,
            **payload,
        }
        body = urlencode({"payload": json.dumps(full, separators=(",", ":"))})
        return await self._post(body, "application/x-www-form-urlencoded")

    async def event(self, event: JsonDict, event_time: int) -> Answer:
        """An Events API callback (JSON), with a fresh event_id."""
        body = {
            "token": "sandbox",
            "team_id": self.team_id,
            "api_app_id": self.app_id,
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{int(time.time())}{next(self._event_ids):06d}",
            "event_time": event_time,
            "is_ext_shared_channel": False,
        }
        return await self._post(json.dumps(body, separators=(",", ":")), "application/json")


def _parse(raw: str) -> JsonDict:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {"text": raw}  # a plain-text acknowledgment: Slack shows it as the message
    return data if isinstance(data, dict) else {}
