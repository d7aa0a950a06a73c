"""views.* methods of the fake Web API (modals and App Home)."""

from __future__ import annotations

import hashlib

from .api_common import Handler
from .args import ApiError, Args
from .limits import VIEW_MAX_BYTES, validate_view, view_size
from .state import JsonDict, Workspace

MAX_STACK = 3
_COPIED_FIELDS = (
    "type",
    "title",
    "submit",
    "close",
    "blocks",
    "private_metadata",
    "callback_id",
    "external_id",
    "clear_on_close",
    "notify_on_close",
    "submit_disabled",
)
_DEFAULTS: JsonDict = {
    "private_metadata": "",
    "callback_id": "",
    "external_id": "",
    "clear_on_close": False,
    "notify_on_close": False,
}


def _invalid(message: str) -> ApiError:
    """views.* report argument problems as invalid_arguments with messages."""
    return ApiError("invalid_arguments", response_metadata={"messages": [message]})


def _read_view(args: Args, allowed: tuple[str, ...]) -> JsonDict:
    """Decode and validate `view`: size first (view_too_large), then Block Kit limits."""
    view = args.structured("view", "invalid_arguments")
    if view is None:
        raise _invalid("[ERROR] missing required field: view [json-pointer:/view]")
    if view_size(view) > VIEW_MAX_BYTES:
        raise ApiError("view_too_large")
    problems = validate_view(view, allowed)
    if problems:
        raise ApiError("invalid_arguments", response_metadata={"messages": problems})
    return dict(view)


def _fresh_trigger(ws: Workspace, args: Args) -> str:
    """Trigger ids are accepted once; a second use is expired, as on Slack."""
    trigger = args.text("trigger_id")
    if trigger is None:
        raise _invalid("[ERROR] missing required field: trigger_id")
    if trigger in ws.used_triggers:
        raise ApiError("expired_trigger_id")
    return trigger


def _check_external_id(ws: Workspace, spec: JsonDict, own_id: str | None) -> None:
    """An external_id names exactly one view."""
    external_id = spec.get("external_id")
    if not external_id:
        return
    for view in ws.views.values():
        if view.get("external_id") == external_id and view["id"] != own_id:
            raise ApiError("duplicate_external_id")


def _hash(view_id: str, revision: int) -> str:
    """A new hash per revision, so stale views.update calls can be refused."""
    digest = hashlib.sha1(f"{view_id}:{revision}".encode()).hexdigest()[:16]
    return f"{revision}.{digest}"


def _build(ws: Workspace, spec: JsonDict, view_id: str, previous: JsonDict | None) -> JsonDict:
    """The view object Slack answers with, keeping identity and state across updates.

    Only called once every check passed: it advances the view's revision.
    """
    view: JsonDict = {"id": view_id, "team_id": ws.team_id, **_DEFAULTS}
    view.update({key: spec[key] for key in _COPIED_FIELDS if key in spec})
    revision = ws.view_revisions.get(view_id, 0) + 1
    ws.view_revisions[view_id] = revision
    view["state"] = previous["state"] if previous else {"values": {}}
    view["hash"] = _hash(view_id, revision)
    view["root_view_id"] = previous["root_view_id"] if previous else view_id
    view["previous_view_id"] = previous.get("previous_view_id") if previous else None
    view["app_id"] = ws.app_id
    view["bot_id"] = ws.bot_id
    return view


def views_open(ws: Workspace, args: Args) -> JsonDict:
    """views.open: a new modal stack."""
    trigger = _fresh_trigger(ws, args)
    spec = _read_view(args, ("modal",))
    _check_external_id(ws, spec, None)
    view = _build(ws, spec, ws.new_id("V"), None)
    ws.used_triggers.add(trigger)
    ws.views[view["id"]] = view
    ws.view_triggers[view["id"]] = trigger
    ws.view_stacks.append([view["id"]])
    return {"view": view}


def _stack_for(ws: Workspace, trigger: str) -> list[str] | None:
    """The stack a trigger came from (see FakeSlack.new_trigger_id), else the newest one."""
    origin = ws.trigger_views.get(trigger)
    for stack in reversed(ws.view_stacks):
        if origin is None or origin in stack:
            return stack
    return None


def views_push(ws: Workspace, args: Args) -> JsonDict:
    """views.push: on top of the current stack, at most 3 deep."""
    trigger = _fresh_trigger(ws, args)
    spec = _read_view(args, ("modal",))
    stack = _stack_for(ws, trigger)
    if stack is not None and len(stack) >= MAX_STACK:
        raise ApiError("push_limit_reached")
    _check_external_id(ws, spec, None)
    view = _build(ws, spec, ws.new_id("V"), None)
    if stack is None:
        ws.view_stacks.append([view["id"]])
    else:
        view["root_view_id"] = stack[0]
        view["previous_view_id"] = stack[-1]
        stack.append(view["id"])
    ws.used_triggers.add(trigger)
    ws.views[view["id"]] = view
    ws.view_triggers[view["id"]] = trigger
    return {"view": view}


def _find_view(ws: Workspace, args: Args) -> JsonDict:
    """views.update addresses a view by view_id or external_id."""
    view_id = args.text("view_id")
    external_id = args.text("external_id")
    if view_id is None and external_id is None:
        raise _invalid("[ERROR] either view_id or external_id is required")
    for view in ws.views.values():
        if view["id"] == view_id or (external_id and view.get("external_id") == external_id):
            return view
    raise ApiError("not_found")


def views_update(ws: Workspace, args: Args) -> JsonDict:
    """views.update: replaces content, refuses a stale `hash`."""
    current = _find_view(ws, args)
    expected = args.text("hash")
    if expected is not None and expected != current["hash"]:
        raise ApiError("hash_conflict")
    spec = _read_view(args, (current["type"],))
    _check_external_id(ws, spec, current["id"])
    view = _build(ws, spec, current["id"], current)
    ws.views[view["id"]] = view
    for user_id, home in ws.home_views.items():
        if home["id"] == view["id"]:
            ws.home_views[user_id] = view
    return {"view": view}


def views_publish(ws: Workspace, args: Args) -> JsonDict:
    """views.publish: one Home tab per user, keeping its id across publishes."""
    user_id = args.text("user_id") or ""
    if user_id not in ws.users:
        raise ApiError("user_not_found")
    current = ws.home_views.get(user_id)
    expected = args.text("hash")
    if current and expected is not None and expected != current["hash"]:
        raise ApiError("hash_conflict")
    spec = _read_view(args, ("home",))
    view = _build(ws, spec, current["id"] if current else ws.new_id("V"), current)
    ws.home_views[user_id] = view
    ws.views[view["id"]] = view
    return {"view": view}


HANDLERS: dict[str, Handler] = {
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
}
