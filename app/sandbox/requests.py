"""What Slack sends the bot, built from what a person does in the sandbox: slash commands,
clicks, form submissions and Events API callbacks, delivered as Slack delivers them: signed
with the signing secret and posted over HTTP to the bot's `/slack/events` (`SlackRequests`), or
as envelopes over the bot's Socket Mode connection (`SocketRequests`)."""

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

from app.fake_slack import FakeSlack
from app.fake_slack.socket_mode import NotConnected

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
        """A slash command; `text` is in Slack's format (escaped, mentions as `<@U…|name>`)."""
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
        return await self._deliver_command(fields)

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
        return await self._deliver_interaction(full)

    async def event(self, event: JsonDict, event_time: int) -> Answer:
        """An Events API callback, with a fresh event_id."""
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
        return await self._deliver_event(body)

    # HTTP: a form for a command, a form with one `payload` field for an interaction, JSON for
    # an event.

    async def _deliver_command(self, fields: dict[str, str]) -> Answer:
        return await self._post(urlencode(fields), "application/x-www-form-urlencoded")

    async def _deliver_interaction(self, payload: JsonDict) -> Answer:
        body = urlencode({"payload": json.dumps(payload, separators=(",", ":"))})
        return await self._post(body, "application/x-www-form-urlencoded")

    async def _deliver_event(self, body: JsonDict) -> Answer:
        return await self._post(json.dumps(body, separators=(",", ":")), "application/json")


class SocketRequests(SlackRequests):
    """The same requests as envelopes over the bot's Socket Mode connection to the fake; the
    acknowledgment's payload is the answer."""

    def __init__(self, fake: FakeSlack, team_id: str, app_id: str) -> None:
        super().__init__("", "", team_id, app_id)
        self.fake = fake

    async def _envelope(self, kind: str, payload: JsonDict) -> Answer:
        try:
            return Answer(200, await self.fake.send_envelope(kind, payload))
        except TimeoutError:
            return Answer(504, {})  # Slack: "operation_timeout", shown to the person
        except NotConnected:
            return Answer(503, {})

    async def _deliver_command(self, fields: dict[str, str]) -> Answer:
        return await self._envelope("slash_commands", dict(fields))

    async def _deliver_interaction(self, payload: JsonDict) -> Answer:
        return await self._envelope("interactive", payload)

    async def _deliver_event(self, body: JsonDict) -> Answer:
        return await self._envelope("events_api", body)


def _parse(raw: str) -> JsonDict:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        return {"text": raw}  # a plain-text acknowledgment: Slack shows it as the message
    return data if isinstance(data, dict) else {}
