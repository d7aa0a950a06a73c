"""App Home: the open incidents at a glance and a button to declare one."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_bolt.context.ack.async_ack import AsyncAck

from app.messages import blocks
from app.slack import views
from app.slack.gateway import SlackError
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.bot import Warroom

log = logging.getLogger(__name__)
MAX_HOME_INCIDENTS = 40


def register(warroom: Warroom) -> None:
    app = warroom.app

    @app.event("app_home_opened")
    @warroom.inflight.track
    async def home_opened(event: dict[str, Any]) -> None:
        if event.get("tab", "home") == "home":
            await publish_home(warroom, event["user"])

    @app.action("home_declare")
    @warroom.inflight.track
    async def declare_clicked(ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        reply = Replier(warroom.services.slack, body["user"]["id"])
        view = views.declare_modal(warroom.services.policy, views.metadata())
        await reply.run(lambda: warroom.services.slack.open_view(body["trigger_id"], view))


async def publish_home(warroom: Warroom, user: str) -> None:
    """Open incidents the viewer may see (most severe first) and a Declare button."""
    permissions = warroom.services.permissions
    incidents = await permissions.visible(await warroom.incidents.open_incidents(), user)
    listing = warroom.services.renderer.render(
        "incident_list.md.j2",
        incidents=incidents[:MAX_HOME_INCIDENTS],
        now=warroom.services.clock.now(),
    )
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
            *blocks.sections(listing)[:90],
        ],
    }
    try:
        await warroom.services.slack.publish_home(user, view)
    except SlackError as exc:
        log.warning("App Home for %s not published: %s", user, exc.code)
