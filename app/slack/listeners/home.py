"""App Home: the open incidents at a glance, the viewer's roles and open action items, and a
button to declare. Private incidents appear only to the people in them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from app.messages import blocks
from app.services import custom_fields
from app.services.ports import SlackError
from app.slack import action_views, views
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)
MAX_HOME_INCIDENTS = 40
MAX_HOME_ITEMS = 20


def register(bot: Bot) -> None:
    async def home_opened(seen: Seen, event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home" and seen.user:
            await publish_home(bot, seen.user)

    gate.on_event(bot, "app_home_opened", gate.NOTHING, home_opened)

    async def declare_clicked(seen: Seen, body: dict[str, Any], reply: Replier) -> None:
        view = views.declare_modal(bot.services.policy, views.metadata())
        await bot.services.slack.open_view(body["trigger_id"], view)

    gate.on_button(bot, "home_declare", gate.NOTHING, declare_clicked, opens_form=True)


async def publish_home(bot: Bot, user: str) -> None:
    """Open incidents the viewer may see (most severe first; drills only to the people in
    them), the viewer's roles and open action items, and a Declare button. Re-published when
    what it shows changes for them."""
    permissions = bot.services.access
    renderer = bot.services.renderer
    incidents = await permissions.listed(await bot.incidents.open_incidents(), user)
    listing = renderer.render(
        "incident_list.md.j2",
        incidents=incidents[:MAX_HOME_INCIDENTS],
        now=bot.services.clock.now(),
        described=custom_fields.described(bot.services.policy, incidents[:MAX_HOME_INCIDENTS]),
    )
    held = [
        (i, role)
        for i in await bot.incidents.not_closed()
        for role, holder in i.roles.items()
        if holder == user
    ]
    roles_text = renderer.render(
        "home_roles.md.j2",
        held=[(i, bot.services.policy.role(r).name) for i, r in held],
    )
    items = []
    for item in await bot.actions.open_for(user):
        snap = await bot.incidents.snapshot(item.incident_id)
        if await permissions.can_see(snap, user):
            items.append(item)
    today = bot.actions.today()
    item_blocks: list[dict[str, Any]] = blocks.sections(
        renderer.render("action_list.md.j2", incident=None, items=items, mine=True)
    )
    for item in items[:MAX_HOME_ITEMS]:
        text = action_views.item_text(renderer, item, today, show_incident=True)
        item_blocks += [*blocks.sections(text), action_views.buttons(item)]
    view = {
        "type": "home",
        "blocks": [
            blocks.header("Incidents"),
            {
                "type": "actions",
                "elements": [
                    blocks.button("Declare incident", "home_declare", "declare", "danger")
                ],
            },
            {"type": "divider"},
            *blocks.sections(listing)[:40],
            {"type": "divider"},
            *blocks.sections(roles_text)[:10],
            {"type": "divider"},
            *item_blocks,
        ][:100],
    }
    try:
        await bot.services.slack.publish_home(user, view)
    except SlackError as exc:
        log.warning("App Home for %s not published: %s", user, exc.code)
