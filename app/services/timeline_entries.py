"""How a timeline event reads: its label and text, the same in Slack and in the postmortem.

Apart from the timeline service so that what reads the timeline (the catch-up and handover
briefs, read inside the incidents service's transactions) does not depend on that service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.store.models import TimelineEvent

LABELS = {
    "declared": "Declared",
    "acknowledged": "Acknowledged",
    "role_assigned": "Role",
    "handover": "Handover",
    "update": "Update",
    "status_changed": "Status",
    "severity_changed": "Severity",
    "escalation_fired": "Escalation",
    "escalation_cancelled": "Escalation",  # no longer written; kept for older incidents
    "escalation_retry": "Escalation",
    "reminder_snoozed": "Reminder",
    "update_missed": "Update",
    "paged": "Page",
    "pager": "Pager",
    "retro_agenda": "Retrospective",
    "retro_held": "Retrospective",
    "problem": "Problem",
    "note": "Note",
    "message": "Message",
    "action_added": "Action item",
    "action_done": "Action item",
    "action_reassigned": "Action item",
    "postmortem": "Postmortem",
    "closed": "Closed",
    "archived": "Archived",
    "alert_fired": "Alert",
    "alert_cleared": "Alert",
    "alert_attached": "Alert",
}


@dataclass(frozen=True)
class Entry:
    """One timeline line, shaped for reading (the same for Slack and for the document)."""

    at: datetime
    kind: str
    label: str
    text: str
    actor: str | None
    link: str | None = None


def entry(event: TimelineEvent) -> Entry:
    link = event.data.get("permalink") if event.kind == "message" else None
    label = LABELS.get(event.kind, event.kind.replace("_", " ").capitalize())
    if event.kind == "message":
        label = "Pinned message" if event.data.get("how") == "pinned" else "Marked message"
    return Entry(event.at, event.kind, label, event.text, event.actor, link)
