"""What a person needs to know to join an incident or take a role over: the last updates, the
next update due, the open action items, the firing alerts and the latest timeline entries.

Read in one session (the handover reads it in the transaction that moves the role, so the
brief it queues shows the state the handover was made in). Rendering is the templates' job:
`catchup.md.j2` and `handover_brief.md.j2`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.escalation import Kind
from app.services.timeline_entries import Entry, entry
from app.store import alerts as alert_store
from app.store.models import ActionItem, EscalationRow, Incident, StatusUpdate, TimelineEvent

# The latest timeline entries a catch-up shows.
RECENT = 5
# The updates and notes a handover brief shows as "what has been tried".
TRIED = 3
# Timeline entries people wrote themselves: notes and the messages they kept.
NOTES = ("note", "message")


@dataclass(frozen=True)
class UpdateView:
    """One status update, as the templates read it."""

    posted_at: datetime
    posted_by: str
    status_label: str
    done_so_far: str
    investigation: str
    eta: str


@dataclass(frozen=True)
class Briefing:
    now: datetime
    # Newest first.
    updates: list[UpdateView] = field(default_factory=list)
    # When the update reminder is due (the next update people are waiting for), if planned.
    next_update: datetime | None = None
    open_items: list[ActionItem] = field(default_factory=list)
    # `Alerts.counts`' shape: firing, cleared, first; None when no alert belongs to it.
    alerts: dict[str, Any] | None = None
    # The latest timeline entries, oldest first.
    recent: list[Entry] = field(default_factory=list)
    # The latest notes and kept messages, oldest first.
    notes: list[Entry] = field(default_factory=list)

    @property
    def last_update(self) -> UpdateView | None:
        return self.updates[0] if self.updates else None

    def context(self) -> dict[str, Any]:
        """What the templates get, besides the incident."""
        return {
            "now": self.now,
            "u": self.last_update,
            "updates": self.updates,
            "next_update": self.next_update,
            "items": self.open_items,
            "alerts": self.alerts,
            "recent": self.recent,
            "notes": self.notes,
        }


async def read(session: AsyncSession, incident_id: int, now: datetime) -> Briefing:
    updates = await session.exec(
        select(StatusUpdate)
        .where(StatusUpdate.incident_id == incident_id)
        .order_by(col(StatusUpdate.posted_at).desc(), col(StatusUpdate.id).desc())
        .limit(TRIED)
    )
    promised = await session.exec(select(Incident.next_update_at).where(Incident.id == incident_id))
    reminder = await session.exec(
        select(EscalationRow.due_at)
        .where(EscalationRow.incident_id == incident_id)
        .where(EscalationRow.kind == Kind.UPDATE_REMINDER.value)
        .where(col(EscalationRow.state).in_(["pending", "firing"]))
        .order_by(col(EscalationRow.due_at))
        .limit(1)
    )
    items = await session.exec(
        select(ActionItem)
        .where(ActionItem.incident_id == incident_id)
        .where(col(ActionItem.done_at).is_(None))
        .order_by(col(ActionItem.id))
    )
    recent = await session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
        .limit(RECENT)
    )
    notes = await session.exec(
        select(TimelineEvent)
        .where(TimelineEvent.incident_id == incident_id)
        .where(col(TimelineEvent.kind).in_(NOTES))
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
        .limit(TRIED)
    )
    rows = await alert_store.incident_alerts(session, incident_id)
    firing = sum(1 for r in rows if r.resolved_at is None)
    return Briefing(
        now=now,
        updates=[update_view(u) for u in updates.all()],
        # The promise people were given, else when the reminder is due.
        next_update=promised.first() or reminder.first(),
        open_items=list(items.all()),
        alerts=(
            {
                "firing": firing,
                "cleared": len(rows) - firing,
                "first": min(r.starts_at for r in rows),
            }
            if rows
            else None
        ),
        recent=[entry(e) for e in reversed(recent.all())],
        notes=[entry(e) for e in reversed(notes.all())],
    )


def update_view(update: StatusUpdate) -> UpdateView:
    return UpdateView(
        posted_at=update.posted_at,
        posted_by=update.posted_by,
        status_label=update.status.capitalize(),
        done_so_far=update.done_so_far,
        investigation=update.investigation,
        eta=update.eta,
    )
