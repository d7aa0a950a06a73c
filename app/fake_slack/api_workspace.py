"""auth.*, users.* and usergroups.* methods of the fake Web API."""

from __future__ import annotations

from .api_common import Handler, page_body
from .args import ApiError, Args, paginate
from .state import PERMALINK_HOST, JsonDict, Workspace


def auth_test(ws: Workspace, args: Args) -> JsonDict:
    """auth.test: identifies the bot, which Bolt calls at start-up."""
    bot = ws.users[ws.bot_user_id]
    return {
        "url": f"{PERMALINK_HOST}/",
        "team": ws.team_name,
        "user": bot.name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user_id,
        "bot_id": ws.bot_id,
        "app_id": ws.app_id,
        "is_enterprise_install": False,
    }


def users_info(ws: Workspace, args: Args) -> JsonDict:
    """users.info."""
    user = ws.users.get(args.text("user") or "")
    if user is None:
        raise ApiError("user_not_found")
    return {"user": user.to_api(ws.team_id)}


def users_list(ws: Workspace, args: Args) -> JsonDict:
    """users.list: paginated directory including the bot."""
    page, next_cursor = paginate(list(ws.users.values()), args, default_limit=200)
    body = page_body("members", [u.to_api(ws.team_id) for u in page], next_cursor)
    body["cache_ts"] = int(ws.now())
    return body


def users_lookup_by_email(ws: Workspace, args: Args) -> JsonDict:
    """users.lookupByEmail."""
    email = (args.text("email") or "").lower()
    for user in ws.users.values():
        if user.email and user.email.lower() == email:
            return {"user": user.to_api(ws.team_id)}
    raise ApiError("users_not_found")


def usergroups_list(ws: Workspace, args: Args) -> JsonDict:
    """usergroups.list: members only with include_users, disabled only when asked."""
    include_users = args.flag("include_users")
    include_disabled = args.flag("include_disabled")
    groups = [g for g in ws.usergroups.values() if include_disabled or not g.is_disabled]
    return {"usergroups": [g.to_api(ws.team_id, include_users) for g in groups]}


def usergroups_users_list(ws: Workspace, args: Args) -> JsonDict:
    """usergroups.users.list."""
    group = ws.usergroups.get(args.text("usergroup") or "")
    if group is None or (group.is_disabled and not args.flag("include_disabled")):
        raise ApiError("no_such_subteam")
    return {"users": list(group.users)}


HANDLERS: dict[str, Handler] = {
    "auth.test": auth_test,
    "users.info": users_info,
    "users.list": users_list,
    "users.lookupByEmail": users_lookup_by_email,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
}
