"""Block Kit for action items: the list with Done / Reassign buttons, and the reassign form."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks
from app.messages.render import Renderer
from app.slack import views
from app.store.models import ActionItem

REASSIGN = "reassign_action_item"
MAX_LISTED = 23  # two blocks an item, within Slack's 50 blocks with the heading


def item_text(renderer: Renderer, item: ActionItem, today: date, show_incident: bool) -> str:
    overdue = item.due_on is not None and item.due_on < today and item.done_at is None
    return renderer.render(
        "action_item.md.j2", a=item, overdue=overdue, show_incident=show_incident
    )


def buttons(item: ActionItem) -> dict[str, Any]:
    value = str(item.id)
    return {
        "type": "actions",
        "block_id": f"action_item_{item.id}",
        "elements": [
            blocks.button("Done", "action_item_done", value, "primary"),
            blocks.button("Reassign", "action_item_reassign", value),
        ],
    }


def action_list(
    renderer: Renderer,
    items: Sequence[ActionItem],
    today: date,
    incident: IncidentSnapshot | None = None,
) -> blocks.Message:
    """An incident's items (`incident` given) or one person's open items across incidents."""
    heading = renderer.render(
        "action_list.md.j2", incident=incident, items=items, mine=incident is None
    )
    parts: list[dict[str, Any]] = blocks.sections(heading)
    lines = [heading]
    for item in list(items)[:MAX_LISTED]:
        text = item_text(renderer, item, today, show_incident=incident is None)
        lines.append(text)
        parts.extend(blocks.sections(text))
        if item.done_at is None:
            parts.append(buttons(item))
    if len(items) > MAX_LISTED:
        more = f"_…and {len(items) - MAX_LISTED} more._"
        lines.append(more)
        parts.append(blocks.context(more))
    return blocks.message("\n".join(lines), parts)


def reassign_modal(item: ActionItem, meta: str) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "users_select"}
    if item.owner:
        element["initial_user"] = item.owner
    intro = {
        "type": "section",
        "text": {
            "type": "mrkdwn",
            "text": blocks.trim(f"*A{item.id}:* {views.escape(item.text)}", 3000),
        },
    }
    return views.modal(
        REASSIGN,
        "Reassign action item",
        "Reassign",
        [intro, views.field("owner", "New owner", element)],
        meta,
    )
