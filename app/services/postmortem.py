"""The postmortem: one Markdown document from what the bot knows, with the parts only people
can write left as placeholders. The CLI (`warroom export`) and Slack (`/incident postmortem`)
render it with the same function, so the file in the channel and the exported one match.

It is read outside Slack, where `<@U…>` means nothing: people appear by their display names
(`users.info`, through the Slack port's cached `user_name`). Whoever renders it without Slack
gets the user IDs instead."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlmodel import col, select

from app.domain.policy import Policy
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages.mrkdwn import is_user_id, user
from app.messages.render import Renderer, mentioned
from app.services import custom_fields
from app.services.context import Services
from app.services.errors import ServiceError, incident_snapshot
from app.services.timeline import Entry, entry
from app.store import repo
from app.store.alerts import incident_alerts as alert_rows
from app.store.db import Database
from app.store.models import ActionItem, ChecklistTask

TEMPLATE = "postmortem.md.j2"
PLACEHOLDER = "To be completed in the review."


# A user ID -> the person's display name (the ID itself when Slack does not know them).
NameLookup = Callable[[str], Awaitable[str]]


async def render_postmortem(
    db: Database,
    policy: Policy,
    renderer: Renderer,
    incident_id: int,
    names: NameLookup | None = None,
) -> str:
    """The document; with `names`, people by name, else by user ID."""
    async with db.session() as session:
        snap = await incident_snapshot(session, incident_id)
        events = await repo.timeline(session, incident_id)
        result = await session.exec(
            select(ActionItem)
            .where(ActionItem.incident_id == incident_id)
            .order_by(col(ActionItem.id))
        )
        actions = list(result.all())
        checklist = list(
            (
                await session.exec(
                    select(ChecklistTask)
                    .where(ChecklistTask.incident_id == incident_id)
                    .order_by(col(ChecklistTask.id))
                )
            ).all()
        )
        alerts = [
            {
                "source": row.source,
                "title": row.annotations.get("summary") or row.labels.get("alertname", ""),
                "fired": row.starts_at,
                "cleared": row.resolved_at,
            }
            for row in await alert_rows(session, incident_id)
        ]
    roles = [(policy.role(role).name, snap.roles.get(role)) for role in Role]
    # Its own generation is not part of the incident's story (and would make each
    # regenerated copy differ from the last).
    timeline = [entry(e) for e in events if e.kind != "postmortem"]
    people = _people(snap, timeline, actions, [t.done_by for t in checklist if t.done_by])
    found = await asyncio.gather(*(names(p) for p in people)) if names else people
    return renderer.document(
        TEMPLATE,
        incident=snap,
        sev=policy.severity(snap.severity),
        roles=roles,
        timeline=timeline,
        actions=actions,
        checklist=checklist,
        alerts=alerts,
        tz=policy.workspace.timezone,
        placeholder=PLACEHOLDER,
        names=dict(zip(people, found, strict=True)),
        kind=custom_fields.type_label(policy, snap.type),
        fields=custom_fields.fields_shown(policy, snap),
    )


def _people(
    snap: IncidentSnapshot,
    timeline: list[Entry],
    actions: list[ActionItem],
    others: list[str] | None = None,
) -> list[str]:
    """Everyone the document may name: role holders, actors, owners and people mentioned."""
    texts = [
        snap.title,
        snap.description,
        snap.impact_summary,
        snap.users_affected,
        snap.root_cause,
        snap.next_steps,
        *(e.text for e in timeline),
        *(a.text for a in actions),
    ]
    ids = [
        *snap.roles.values(),
        snap.declared_by,
        *(e.actor for e in timeline),
        *(a.owner for a in actions),
        *(
            value
            for name, value in snap.fields.items()
            if isinstance(value, str) and is_user_id(value)
        ),
        *(others or []),
        *(user_id for text in texts for user_id in mentioned(text)),
    ]
    return [user_id for user_id in dict.fromkeys(ids) if user_id]


def filename(incident_id: int) -> str:
    return f"incident-{incident_id}-postmortem.md"


class Postmortems:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def document(self, incident_id: int) -> str:
        return await render_postmortem(
            self.services.db,
            self.services.policy,
            self.services.renderer,
            incident_id,
            self.services.slack.user_name,
        )

    async def publish(self, incident_id: int, by: str) -> datetime:
        """Upload the document to the war room and record when it was generated."""
        async with self.services.db.session() as session:
            snap = await incident_snapshot(session, incident_id)
        await self.services.access.check("postmortem", by, snap)
        if snap.status.is_open:
            raise ServiceError(
                f"Incident #{incident_id} is still open; write the postmortem after it is resolved."
            )
        if not snap.channel_id:
            raise ServiceError(f"Incident #{incident_id} has no channel to share the file in.")
        text = await self.document(incident_id)
        drill = "DRILL " if snap.is_drill else ""
        await self.services.slack.upload(
            snap.channel_id,
            filename(incident_id),
            f"{drill}Postmortem: Incident #{incident_id}",
            text.encode("utf-8"),
            comment=f"{':test_tube: *DRILL* ' if snap.is_drill else ''}:page_facing_up: "
            f"Postmortem draft for Incident #{incident_id} "
            f"(generated by {user(by)}). Fill in the placeholders in the review.",
        )
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            await repo.set_fields(session, incident_id, postmortem_at=now)
            session.add(repo.event(incident_id, now, "postmortem", "Postmortem generated", by))
        return now
