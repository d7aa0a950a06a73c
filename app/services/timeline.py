"""The incident's timeline: what the bot recorded itself, plus what people chose to keep
(a note, a pinned message, a message marked :pushpin:). The postmortem and
`/incident timeline` read it from here, in time order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError

from app.services.context import Services
from app.services.errors import InvalidInput, ServiceError, no_incident
from app.services.incidents import MAX_FIELD, clean
from app.store import repo
from app.store.models import TimelineEvent

LABELS = {
    "declared": "Declared",
    "acknowledged": "Acknowledged",
    "role_assigned": "Role",
    "update": "Update",
    "status_changed": "Status",
    "severity_changed": "Severity",
    "escalation_fired": "Escalation",
    "escalation_cancelled": "Escalation",  # no longer written; kept for older incidents
    "escalation_retry": "Escalation",
    "reminder_snoozed": "Reminder",
    "update_missed": "Update",
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


def ts_time(ts: str) -> datetime:
    """A Slack message ts is its posting time in seconds since the epoch."""
    return datetime.fromtimestamp(float(ts), UTC)


class Timeline:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def entries(self, incident_id: int) -> list[Entry]:
        async with self.services.db.session() as session:
            return [entry(e) for e in await repo.timeline(session, incident_id)]

    async def note(self, incident_id: int, text: str, by: str, key: str | None = None) -> bool:
        """Add a note; False when the request that carries `key` already added it (the same
        command sent again), which changes nothing."""
        if key:
            async with self.services.db.session() as session:
                if await repo.event_by_key(session, key) is not None:
                    return False
        body = clean(text, MAX_FIELD, "note")
        if not body:
            raise InvalidInput("Say what to note: `/incident note <text>`.")
        try:
            async with self.services.db.session() as session:
                incident = await repo.get(session, incident_id)
                if incident is None:
                    raise no_incident(incident_id)
                roles = await repo.current_roles(session, incident_id)
                await self.services.access.check("note", by, repo.snapshot(incident, roles))
                if incident.closed_at is not None:
                    raise ServiceError(f"Incident #{incident_id} is closed; its timeline is final.")
                event = repo.event(incident_id, self.services.clock.now(), "note", body, by)
                event.source_key = key
                session.add(event)
        except IntegrityError:
            if key is None:
                raise
            return False
        return True

    async def keep_message(
        self,
        incident_id: int,
        channel: str,
        ts: str,
        author: str | None,
        text: str,
        permalink: str | None,
        by: str,
        how: str,
    ) -> bool:
        """Put a Slack message on the timeline at the time it was posted; False when that
        message is already there (pinned and also marked, or an event delivered again)."""
        event = repo.event(
            incident_id,
            ts_time(ts),
            "message",
            _shorten(text),
            author,
            channel=channel,
            ts=ts,
            permalink=permalink,
            by=by,
            how=how,
        )
        event.source_key = f"{channel}:{ts}"
        try:
            async with self.services.db.session() as session:
                session.add(event)
        except IntegrityError:
            return False
        return True


def _shorten(text: str) -> str:
    value = clean(text[: MAX_FIELD * 2], MAX_FIELD * 2)
    return value if len(value) <= MAX_FIELD else value[: MAX_FIELD - 1] + "…"
