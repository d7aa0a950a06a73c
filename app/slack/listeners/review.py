"""After the fire: the timeline, action items, the postmortem and closing.

The subcommands are declared in `commands`; the Done / Reassign buttons and the reassign form
are registered here too. Changes go through the services (state and queued messages in one
transaction); this module then delivers the queue and refreshes the Home tabs concerned.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.domain.escalation import Kind
from app.messages.blocks import Message
from app.messages.mrkdwn import user as mention
from app.services.action_items import ActionChange
from app.slack import action_views, views
from app.slack.listeners.buttons import on_button
from app.slack.listeners.home import publish_home
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    app = bot.app

    on_button(bot, "action_item_done", lambda item, body, reply: mark_done(bot, item, reply))
    on_button(
        bot,
        "action_item_reassign",
        lambda item, body, reply: open_reassign(bot, item, body["trigger_id"], reply),
    )

    @app.view(action_views.REASSIGN)
    @bot.inflight.track
    async def reassign_submitted(ack: AsyncAck, body: dict[str, Any]) -> None:
        view, user = body["view"], body["user"]["id"]
        owner = views.values(view).get("owner")
        if not owner:
            await ack(response_action="errors", errors={"owner": "Pick the new owner."})
            return
        await ack()
        meta = views.read_metadata(view)
        reply = Replier(bot.services.slack, user, meta.get("reply_url"))
        await reply.run(lambda: reassign(bot, int(meta["item"]), owner, reply))


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


async def close(bot: Bot, incident_id: int, user: str, force: bool, reply: Replier) -> None:
    """Close, post the summary, and archive the channel now or after the configured delay
    (the archive is an escalation step, so it happens even if this process stops)."""
    change = await bot.incidents.close(incident_id, user, force)
    await bot.escalations.cancel(incident_id, "closed", keep={Kind.ACTION_REMINDER, Kind.ARCHIVE})
    assert change.incident.closed_at is not None
    await bot.escalations.plan_archive(incident_id, change.incident.closed_at)
    await bot.flows.publish(incident_id, reply.say)
    await bot.firing.tick()  # archive now when there is no delay


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


async def _require_sight(bot: Bot, incident_id: int, user: str) -> None:
    snap = await bot.incidents.snapshot(incident_id)
    await bot.services.access.require_sight(snap, user)


async def mark_done(bot: Bot, item_id: int, reply: Replier) -> None:
    item = await bot.actions.get(item_id)
    await _require_sight(bot, item.incident_id, reply.user)
    change = await bot.actions.done(item_id, reply.user)
    await after_change(bot, change, reply)
    if reply.user not in change.affected:
        await publish_home(bot, reply.user)
    await reply.say(f":white_check_mark: Action item A{item_id} is done.")


async def open_reassign(bot: Bot, item_id: int, trigger_id: str, reply: Replier) -> None:
    item = await bot.actions.get(item_id)
    await _require_sight(bot, item.incident_id, reply.user)
    meta = views.metadata(item=item_id, reply_url=reply.response_url)
    await bot.services.slack.open_view(trigger_id, action_views.reassign_modal(item, meta))


async def reassign(bot: Bot, item_id: int, owner: str, reply: Replier) -> None:
    item = await bot.actions.get(item_id)
    await _require_sight(bot, item.incident_id, reply.user)
    change = await bot.actions.reassign(item_id, owner, reply.user)
    await after_change(bot, change, reply)
    await reply.say(f":bust_in_silhouette: A{item_id} now belongs to {mention(owner)}.")
