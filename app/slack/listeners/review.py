"""After the fire: the timeline, action items and the postmortem (closing is `Flows.close`).

The subcommands are declared in `commands`; the Done / Reassign buttons and the reassign form
are registered here too. Changes go through the services (state and queued messages in one
transaction); this module then delivers the queue and refreshes the Home tabs concerned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.messages.blocks import Message
from app.messages.mrkdwn import user as mention
from app.services.action_items import ActionChange
from app.slack import action_views, views
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.slack.listeners.home import publish_home
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    gate.on_button(
        bot,
        "action_item_done",
        gate.ITEM_BUTTON,
        lambda seen, body, reply: mark_done(bot, seen, reply),
    )
    gate.on_button(
        bot,
        "action_item_reassign",
        gate.ITEM_BUTTON,
        lambda seen, body, reply: open_reassign(bot, seen, body["trigger_id"], reply),
        opens_form=True,
    )

    async def reassigned(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        owner = views.values(body["view"]).get("owner")
        await reassign(bot, seen, str(owner), reply)

    gate.on_submit(
        bot,
        action_views.REASSIGN,
        gate.ITEM_FORM,
        reassigned,
        check=lambda view: (
            {} if views.values(view).get("owner") else {"owner": "Pick the new owner."}
        ),
    )


# --- commands -----------------------------------------------------------------------------


async def timeline_text(bot: Bot, incident_id: int) -> str:
    snap = await bot.incidents.snapshot(incident_id)
    entries = await bot.timeline.entries(incident_id)
    return bot.rooms.render("timeline.md.j2", snap, entries=entries)


async def incident_items(bot: Bot, incident_id: int) -> Message:
    snap = await bot.incidents.snapshot(incident_id)
    items = await bot.actions.for_incident(incident_id)
    today = bot.actions.today()
    return action_views.action_list(bot.services.renderer, items, today, snap)


async def my_items(bot: Bot, user: str) -> Message:
    items = await bot.actions.open_for(user)
    items = [i for i in items if await _visible(bot, i.incident_id, user)]
    today = bot.actions.today()
    return action_views.action_list(bot.services.renderer, items, today)


async def _visible(bot: Bot, incident_id: int, user: str) -> bool:
    snap = await bot.incidents.snapshot(incident_id)
    return await bot.services.access.can_see(snap, user)


# --- action item buttons and form ----------------------------------------------------------


async def after_change(bot: Bot, change: ActionChange, reply: Replier) -> None:
    """Deliver the queued messages and refresh the Home tab of everyone concerned."""
    report = await bot.outbox.deliver(change.item.incident_id)
    if report.failed:
        await reply.say(
            ":hourglass: Saved. Slack is not taking messages right now; Warroom will send "
            "them as soon as it does."
        )
    for person in dict.fromkeys(change.affected):
        await publish_home(bot, person)


async def mark_done(bot: Bot, seen: Seen, reply: Replier) -> None:
    change = await bot.actions.done(seen.item_id, reply.user)
    await after_change(bot, change, reply)
    if reply.user not in change.affected:
        await publish_home(bot, reply.user)
    await reply.say(f":white_check_mark: Action item A{seen.item_id} is done.")


async def open_reassign(bot: Bot, seen: Seen, trigger_id: str, reply: Replier) -> None:
    assert seen.item is not None and seen.incident is not None
    # Refused before the form is filled in (the submission is checked again).
    await bot.services.access.check_item(seen.user, seen.item_id, seen.item.owner, seen.incident)
    meta = views.metadata(item=seen.item_id, reply_url=reply.response_url)
    await bot.services.slack.open_view(trigger_id, action_views.reassign_modal(seen.item, meta))


async def reassign(bot: Bot, seen: Seen, owner: str, reply: Replier) -> None:
    change = await bot.actions.reassign(seen.item_id, owner, reply.user)
    await after_change(bot, change, reply)
    await reply.say(f":bust_in_silhouette: A{seen.item_id} now belongs to {mention(owner)}.")
