"""Sends Slack-shaped, signed requests to the bot over HTTP, as Slack itself would."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp
from slack_sdk.signature import SignatureVerifier

from app.fake_slack import FakeSlack

TEAM = "T1"


class SlackSender:
    def __init__(self, url: str, signing_secret: str, fake: FakeSlack) -> None:
        self.url = url
        self.signer = SignatureVerifier(signing_secret)
        self.fake = fake
        self.session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SlackSender:
        self.session = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.session
        await self.session.close()

    def headers(self, body: str, timestamp: int | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        return {
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.signer.generate_signature(timestamp=ts, body=body),
        }

    async def post_raw(
        self, body: str | bytes, headers: dict[str, str], content_type: str
    ) -> tuple[int, str]:
        assert self.session
        async with self.session.post(
            self.url, data=body, headers={**headers, "Content-Type": content_type}
        ) as response:
            return response.status, await response.text()

    async def post_form(self, fields: dict[str, str], **header_args: Any) -> tuple[int, str]:
        body = urlencode(fields)
        return await self.post_raw(
            body, self.headers(body, **header_args), "application/x-www-form-urlencoded"
        )

    async def command(
        self, text: str, user: str = "UALICE", channel: str = "CGENERAL", **header_args: Any
    ) -> tuple[int, dict[str, Any]]:
        """POST `/incident <text>`; returns the HTTP status and the ack body (JSON or {})."""
        fields = {
            "token": "legacy-unused",
            "team_id": TEAM,
            "team_domain": "acme",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/incident",
            "text": text,
            "api_app_id": "A1",
            "response_url": self.fake.new_response_url(),
            "trigger_id": self.fake.new_trigger_id(),
        }
        status, raw = await self.post_form(fields, **header_args)
        return status, _json(raw)

    async def event(self, event: dict[str, Any], event_id: str) -> int:
        """Deliver an Events API callback (JSON, signed); a retry reuses the `event_id`."""
        body = json.dumps(
            {
                "token": "legacy-unused",
                "team_id": TEAM,
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": event_id,
                "event_time": int(time.time()),
                "event": event,
            }
        )
        status, _ = await self.post_raw(body, self.headers(body), "application/json")
        return status

    async def interact(self, payload: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        status, raw = await self.post_form({"payload": json.dumps(payload)})
        return status, _json(raw)

    async def click(
        self,
        action_id: str,
        value: str,
        user: str = "UALICE",
        channel: str = "CGENERAL",
        message_ts: str = "1.000001",
    ) -> tuple[int, dict[str, Any]]:
        return await self.interact(
            {
                "type": "block_actions",
                "team": {"id": TEAM},
                "user": {"id": user, "name": user.lower()},
                "api_app_id": "A1",
                "trigger_id": self.fake.new_trigger_id(),
                "response_url": self.fake.new_response_url(),
                "channel": {"id": channel},
                "container": {"type": "message", "message_ts": message_ts},
                "message": {"ts": message_ts},
                "actions": [
                    {
                        "type": "button",
                        "action_id": action_id,
                        "block_id": "incident_actions",
                        "value": value,
                        "action_ts": str(time.time()),
                    }
                ],
            }
        )

    async def shortcut(
        self, callback_id: str, message: dict[str, Any], channel: str, user: str = "UALICE"
    ) -> tuple[int, dict[str, Any]]:
        return await self.interact(
            {
                "type": "message_action",
                "callback_id": callback_id,
                "team": {"id": TEAM},
                "user": {"id": user, "name": user.lower()},
                "channel": {"id": channel},
                "message": message,
                "message_ts": message.get("ts"),
                "trigger_id": self.fake.new_trigger_id(),
                "response_url": self.fake.new_response_url(),
            }
        )

    async def submit(
        self, view: dict[str, Any], values: dict[str, Any], user: str = "UALICE"
    ) -> tuple[int, dict[str, Any]]:
        """Submit a modal the bot opened, filling `values` {block_id: value} as a person would."""
        return await self.interact(
            {
                "type": "view_submission",
                "team": {"id": TEAM},
                "user": {"id": user, "name": user.lower()},
                "api_app_id": "A1",
                "trigger_id": self.fake.new_trigger_id(),
                "view": {**view, "state": {"values": fill_state(view, values)}},
            }
        )


def fill_state(view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Slack's `view.state.values` for the given inputs, shaped by each element's type."""
    state: dict[str, Any] = {}
    for block in view.get("blocks", []):
        if block.get("type") != "input":
            continue
        element = block["element"]
        block_id, action_id, kind = block["block_id"], element["action_id"], element["type"]
        value = values.get(block_id)
        entry: dict[str, Any] = {"type": kind}
        if kind == "plain_text_input":
            entry["value"] = value if value is not None else element.get("initial_value")
        elif kind == "static_select":
            chosen = (
                value if value is not None else (element.get("initial_option") or {}).get("value")
            )
            option = next((o for o in element["options"] if o["value"] == chosen), None)
            entry["selected_option"] = option
        elif kind == "users_select":
            entry["selected_user"] = value if value is not None else element.get("initial_user")
        elif kind == "checkboxes":
            options = [o for o in element["options"] if o["value"] in (value or [])]
            entry["selected_options"] = options
        elif kind == "datetimepicker":
            entry["selected_date_time"] = value
        state[block_id] = {action_id: entry}
    return state


def _json(raw: str) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError:
        # A plain-text acknowledgment: Slack shows it to the user as the message text.
        return {"text": raw}
    return data if isinstance(data, dict) else {"_value": data}


async def eventually(check: Callable[[], Any], timeout: float = 5.0, interval: float = 0.02) -> Any:
    """Poll until `check()` returns something truthy (or stops raising AssertionError)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            if last:
                raise last
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(interval)
