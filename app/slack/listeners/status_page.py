"""Public updates in Slack: the **Publish**, **Edit and publish** and **Skip** buttons on a
draft, and the edit form.

The draft's buttons name the incident and the draft (`"42:7"`); the gate establishes sight
first, and the service checks the `publish` right and that the draft is still a draft (another
person may have decided, or a newer draft replaced it). Once decided, the DM is edited so its
buttons go and the decision shows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.services.errors import ServiceError
from app.services.ports import SlackError
from app.services.status_updates import (
    EDIT_BUTTON,
    PUBLISH_BUTTON,
    SKIP_BUTTON,
    Decision,
)
from app.slack import views
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.slack.reply import Replier
from app.store.models import PublicUpdate

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    gate.on_button(
        bot,
        PUBLISH_BUTTON,
        gate.INCIDENT_BUTTON_PREFIX,  # value "42:7": incident 42, draft 7
        lambda seen, body, reply: publish(bot, seen, body, reply),
    )
    gate.on_button(
        bot,
        SKIP_BUTTON,
        gate.INCIDENT_BUTTON_PREFIX,
        lambda seen, body, reply: skip(bot, seen, body, reply),
    )
    gate.on_button(
        bot,
        EDIT_BUTTON,
        gate.INCIDENT_BUTTON_PREFIX,
        lambda seen, body, reply: edit(bot, seen, body, reply),
        opens_form=True,
    )
    gate.on_submit(
        bot,
        views.PUBLIC_EDIT,
        gate.INCIDENT_FORM,
        lambda seen, body, reply: edited(bot, seen, body, reply),
        check=_edit_errors,
    )


def _draft_id(value: object) -> int:
    _, _, draft = str(value or "").partition(":")
    if not draft.isdigit():
        raise ServiceError("That draft is not known.")
    return int(draft)


def _where(body: dict[str, Any]) -> tuple[str, str] | None:
    """The DM holding the draft's buttons (to edit it once decided)."""
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    ts = container.get("message_ts") or (body.get("message") or {}).get("ts")
    return (str(channel), str(ts)) if channel and ts else None


async def publish(bot: Bot, seen: Seen, body: dict[str, Any], reply: Replier) -> None:
    decision = await bot.public.publish(seen.incident_id, _draft_id(gate.value_of(body)), seen.user)
    await _decided(bot, decision, _where(body), reply)


async def skip(bot: Bot, seen: Seen, body: dict[str, Any], reply: Replier) -> None:
    decision = await bot.public.skip(seen.incident_id, _draft_id(gate.value_of(body)), seen.user)
    await _decided(bot, decision, _where(body), reply)


async def edit(bot: Bot, seen: Seen, body: dict[str, Any], reply: Replier) -> None:
    row = await bot.public.get(_draft_id(gate.value_of(body)))
    if row is None or row.incident_id != seen.incident_id:
        raise ServiceError("That draft is not known.")
    if row.state != "draft":
        await reply.say(_already(row))
        return
    snap = await bot.incidents.snapshot(seen.incident_id)
    # Refused before the form is filled in, not after (the submission is checked again).
    await bot.services.access.check("publish", seen.user, snap)
    where = _where(body)
    meta = views.metadata(
        incident=seen.incident_id,
        update=row.id,
        reply_url=reply.response_url,
        dm=list(where) if where else None,
    )
    view = views.public_edit_modal(row.title, row.status, row.body, meta)
    await bot.services.slack.open_view(body["trigger_id"], view)


def _edit_errors(view: dict[str, Any]) -> dict[str, str]:
    v = views.values(view)
    errors = {}
    if not str(v.get("title") or "").strip():
        errors["title"] = "Give the public update a title."
    if not str(v.get("body") or "").strip():
        errors["body"] = "Say something in the public update."
    if v.get("status") not in views.PUBLIC_STATUSES:
        errors["status"] = "Pick a status."
    return errors


async def edited(bot: Bot, seen: Seen, body: dict[str, Any], reply: Replier) -> None:
    view = body["view"]
    meta = views.read_metadata(view)
    v = views.values(view)
    draft = meta.get("update")
    if not isinstance(draft, int):
        raise ServiceError("That draft is not known.")
    decision = await bot.public.publish(
        seen.incident_id,
        draft,
        seen.user,
        title=str(v.get("title") or ""),
        body=str(v.get("body") or ""),
        status=str(v.get("status") or ""),
    )
    dm = meta.get("dm")
    where = (str(dm[0]), str(dm[1])) if isinstance(dm, list) and len(dm) == 2 else None
    await _decided(bot, decision, where, reply)


def _already(row: PublicUpdate) -> str:
    if row.state == "superseded":
        return "A newer draft replaced this one; use the newest draft (or `/incident publish`)."
    who = "automatically" if row.decided_by == "auto" else f"by <@{row.decided_by}>"
    return f"This draft was already {row.state} {who}."


async def _decided(
    bot: Bot, decision: Decision, where: tuple[str, str] | None, reply: Replier
) -> None:
    row = decision.update
    if not decision.now:
        await reply.say(_already(row))
        return
    if where is not None:
        try:
            await bot.services.slack.update(where[0], where[1], bot.public.decided_message(row))
        except SlackError as exc:
            if exc.retryable:
                raise
    if row.state == "published":
        await reply.say(bot.public.published_text())
    elif row.status == "resolved":
        await reply.say(
            f":fast_forward: Skipped. The status page still shows incident #{row.incident_id} "
            "as ongoing: publish its resolution with `/incident publish` when you are ready."
        )
    else:
        await reply.say(":fast_forward: Skipped; nothing was published.")
