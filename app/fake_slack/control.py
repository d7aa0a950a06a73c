"""HTTP control surface (`/_fake/...`) for driving the fake from another process.

Benchmarks and manual runs (`python -m app.fake_slack`) cannot reach the Python object,
so the same seeding, inspection and fault controls are exposed as small JSON endpoints.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .http_io import json_response
from .state import JsonDict, Message

if TYPE_CHECKING:
    from .server import FakeSlack

Route = Callable[[web.Request], Awaitable[web.Response]]


def add_routes(app: web.Application, fake: FakeSlack) -> None:
    """Mount the control endpoints on the fake's application."""
    app.router.add_get("/_fake/state", _bind(fake, _get_state))
    app.router.add_get("/_fake/calls", _bind(fake, _get_calls))
    app.router.add_post("/_fake/faults", _bind(fake, _post_faults))
    app.router.add_post("/_fake/reset", _bind(fake, _post_reset))
    app.router.add_post("/_fake/users", _bind(fake, _post_user))
    app.router.add_post("/_fake/usergroups", _bind(fake, _post_usergroup))
    app.router.add_post("/_fake/channels", _bind(fake, _post_channel))
    app.router.add_post("/_fake/messages", _bind(fake, _post_message))
    app.router.add_post("/_fake/pins", _bind(fake, _post_pin))
    app.router.add_post("/_fake/reactions", _bind(fake, _post_reaction))
    app.router.add_post("/_fake/response_urls", _bind(fake, _post_response_url))
    app.router.add_post("/_fake/trigger_ids", _bind(fake, _post_trigger_id))


def _bind(fake: FakeSlack, handler: Callable[[FakeSlack, JsonDict], JsonDict]) -> Route:
    """Adapt a `(fake, json body) -> json` function to an aiohttp handler with 400s."""

    async def route(request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.body_exists else {}
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            return json_response(handler(fake, body))
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"ok": False, "error": str(exc)}, status=400)

    return route


# inspection ------------------------------------------------------------------------


def _message_dump(fake: FakeSlack, message: Message) -> JsonDict:
    data = fake.workspace.message_api(message)
    data["edits"] = [
        {"text": edit.text, "blocks": edit.blocks, "edited_ts": edit.edited_ts}
        for edit in message.edits
    ]
    return data


def _channels_dump(fake: FakeSlack) -> list[JsonDict]:
    ws = fake.workspace
    dumped = []
    for channel in ws.channels.values():
        data = ws.channel_api(channel)
        data["members"] = list(channel.members)
        data["messages"] = [_message_dump(fake, m) for m in ws.history[channel.id]]
        data["pins"] = fake.pins(channel.id)
        data["bookmarks"] = fake.bookmarks(channel.id)
        dumped.append(data)
    return dumped


def dump_state(fake: FakeSlack) -> JsonDict:
    """Everything a test would assert on, as one JSON document."""
    ws = fake.workspace
    return {
        "ok": True,
        "team_id": ws.team_id,
        "bot_user_id": ws.bot_user_id,
        "users": [u.to_api(ws.team_id) for u in ws.users.values()],
        "usergroups": [g.to_api(ws.team_id, True) for g in ws.usergroups.values()],
        "channels": _channels_dump(fake),
        "views": ws.views,
        "home_views": ws.home_views,
        "ephemeral": [vars(e) for e in ws.ephemeral],
        "responses": [{"id": rid, "body": body} for rid, body in fake.responses],
        "files": {
            fid: {
                "name": f.name,
                "title": f.title,
                "size": len(f.content or b""),
                "channels": f.channels,
            }
            for fid, f in ws.files.items()
        },
        "faults": fake.faults.describe(),
        "rate_limit_scale": fake.rate_limiter.scale if fake.rate_limiter else None,
    }


def _get_state(fake: FakeSlack, _body: JsonDict) -> JsonDict:
    return dump_state(fake)


def _get_calls(fake: FakeSlack, _body: JsonDict) -> JsonDict:
    return {"ok": True, "calls": [call.to_json() for call in fake.calls]}


# control ---------------------------------------------------------------------------


def _entries(value: Any) -> list[JsonDict]:
    """Accept one fault object or a list of them."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def apply_faults(fake: FakeSlack, config: JsonDict) -> None:
    """Configure faults from JSON, mirroring the Python methods one to one."""
    if config.get("reset"):
        fake.reset_faults()
    for entry in _entries(config.get("fail")):
        fake.fail(
            entry["method"],
            entry.get("error", "name_taken"),
            int(entry.get("times", 1)),
            channel=entry.get("channel"),
        )
    for entry in _entries(config.get("fail_http")):
        fake.fail_http(
            entry["method"],
            int(entry.get("status", 429)),
            int(entry.get("retry_after", 1)),
            int(entry.get("times", 1)),
            channel=entry.get("channel"),
        )
    for entry in _entries(config.get("hold")):
        fake.hold(entry["method"], entry.get("channel"))
    for entry in _entries(config.get("release")):
        fake.release(entry.get("method"), entry.get("channel"))
    for entry in _entries(config.get("delay")):
        fake.delay(entry["method"], float(entry["seconds"]))
    for entry in _entries(config.get("drop")):
        fake.drop(
            entry["method"],
            int(entry.get("times", 1)),
            after_processing=bool(entry.get("after_processing")),
        )
    _apply_rate(fake, config)


def _apply_rate(fake: FakeSlack, config: JsonDict) -> None:
    """`fault_rate` and `rate_limits` (a scale, or null/false to turn them off)."""
    rate = config.get("fault_rate")
    if rate is not None:
        fake.fault_rate(
            float(rate["rate"]),
            int(rate.get("seed", 0)),
            tuple(rate.get("kinds", ("429", "500", "slow", "drop"))),
            slow_seconds=float(rate.get("slow_seconds", 0.5)),
            retry_after=int(rate.get("retry_after", 1)),
            methods=rate.get("methods"),
        )
    if "rate_limits" in config:
        limits = config["rate_limits"]
        if limits:
            fake.enforce_rate_limits(float(limits.get("scale", 1.0)))
        else:
            fake.disable_rate_limits()


def _post_faults(fake: FakeSlack, body: JsonDict) -> JsonDict:
    apply_faults(fake, body)
    return {"ok": True, "faults": fake.faults.describe()}


def _post_reset(fake: FakeSlack, body: JsonDict) -> JsonDict:
    fake.reset(
        state=bool(body.get("state", True)),
        faults=bool(body.get("faults", True)),
        calls=bool(body.get("calls", True)),
    )
    return {"ok": True}


def _post_user(fake: FakeSlack, body: JsonDict) -> JsonDict:
    user = fake.add_user(
        body["id"],
        body["name"],
        body.get("real_name", ""),
        body.get("tz", "UTC"),
        display_name=body.get("display_name", ""),
        email=body.get("email"),
    )
    return {"ok": True, "user": user}


def _post_usergroup(fake: FakeSlack, body: JsonDict) -> JsonDict:
    group = fake.add_usergroup(
        body["id"], body["handle"], body.get("users", []), body.get("name", "")
    )
    return {"ok": True, "usergroup": group}


def _post_channel(fake: FakeSlack, body: JsonDict) -> JsonDict:
    channel_id = fake.add_channel(
        body["name"],
        is_private=bool(body.get("is_private", False)),
        members=body.get("members", []),
        bot_member=bool(body.get("bot_member", False)),
        topic=body.get("topic", ""),
    )
    return {"ok": True, "id": channel_id}


def _post_message(fake: FakeSlack, body: JsonDict) -> JsonDict:
    """A person's message (text in Slack's format: `&`, `<` and `>` escaped)."""
    message = fake.add_message(
        body["channel"], body["user"], body["text"], thread_ts=body.get("thread_ts")
    )
    return {"ok": True, "ts": message.ts, "message": fake.workspace.message_api(message)}


def _post_pin(fake: FakeSlack, body: JsonDict) -> JsonDict:
    fake.add_pin(body["channel"], body["ts"], body["user"])
    return {"ok": True}


def _post_reaction(fake: FakeSlack, body: JsonDict) -> JsonDict:
    fake.add_reaction(body["channel"], body["ts"], body["user"], body["name"])
    return {"ok": True}


def _post_response_url(fake: FakeSlack, _body: JsonDict) -> JsonDict:
    """A response_url for a request built outside this process (a command, a click)."""
    return {"ok": True, "response_url": fake.new_response_url()}


def _post_trigger_id(fake: FakeSlack, body: JsonDict) -> JsonDict:
    """A trigger_id for such a request; `view_id` names the modal stack views.push extends."""
    return {"ok": True, "trigger_id": fake.new_trigger_id(body.get("view_id"))}
