"""Planning and cancelling escalation steps as the incident changes. Only the database:
the engine (app/scheduler) fires what is due."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from enum import Enum

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.escalation import (
    IncidentTimes,
    Kind,
    Occasion,
    PlannedStep,
    action_key,
    cancelled_by,
    plan_action_reminder,
    plan_archive,
    plan_checklist_nudge,
    plan_declared,
    plan_playbooks,
    plan_promise,
    plan_retro_reminder,
    plan_update_reminder,
)
from app.domain.lifecycle import Status
from app.domain.paging import PageAction
from app.domain.playbooks import parse_run_key
from app.services.context import Services
from app.services.errors import ServiceError, no_incident
from app.services.paging import Paging
from app.store import repo
from app.store.models import AlertGroup, AlertRow, EscalationRow, Incident, TimelineEvent

LIVE = ("pending", "firing")
# The playbook events each owed plan may be: a status change comes with progress (mitigate,
# an update that moves the status) or the resolution.
PLAYBOOK_EVENTS: dict[str, tuple[str, ...]] = {
    "declared": ("declared",),
    "severity": ("severity_changed",),
    "progress": ("status_changed",),
    "resolved": ("status_changed",),
}


class Held(Enum):
    """What recording the retrospective found."""

    NOW = "now"  # recorded by this request
    BEFORE = "before"  # someone recorded it earlier
    REPLAY = "replay"  # this same request (same key) recorded it earlier


def incident_times(incident: Incident) -> IncidentTimes:
    status = Status(incident.status)
    return IncidentTimes(
        severity=incident.severity,
        is_open=status.is_open,
        declared_at=incident.declared_at,
        acknowledged_at=incident.acknowledged_at,
        last_update_at=incident.last_update_at,
        status_changed=status is not Status.INVESTIGATING or incident.mitigated_at is not None,
        resolved_at=incident.resolved_at,
        retro_held_at=incident.retro_held_at,
        next_update_at=incident.next_update_at,
    )


class Escalations:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.paging = Paging(services)

    async def _incident(self, session: AsyncSession, incident_id: int) -> Incident:
        incident = await repo.get(session, incident_id)
        if incident is None:
            raise no_incident(incident_id)
        return incident

    async def _allow(self, session: AsyncSession, incident: Incident, action: str, by: str) -> None:
        assert incident.id is not None
        roles = await repo.current_roles(session, incident.id)
        await self.services.access.check(action, by, repo.snapshot(incident, roles))

    async def rows(self, incident_id: int) -> list[EscalationRow]:
        async with self.services.db.session() as session:
            result = await session.exec(
                select(EscalationRow)
                .where(EscalationRow.incident_id == incident_id)
                .order_by(col(EscalationRow.due_at), col(EscalationRow.id))
            )
            return list(result.all())

    async def _insert(self, incident: Incident, steps: list[PlannedStep]) -> list[str]:
        """Add steps not already live or fired; skip those whose reason to fire is gone.

        One transaction for the lot; if another replica planned one of them at the same moment
        (the unique index says so), the steps are added one by one and theirs stands.
        """
        assert incident.id is not None
        times = incident_times(incident)
        wanted = [step for step in steps if not cancelled_by(step.cancel_on, times)]
        if not wanted:
            return []
        try:
            return await self._insert_batch(incident.id, wanted)
        except IntegrityError:
            added: list[str] = []
            for step in wanted:
                try:
                    added += await self._insert_batch(incident.id, [step])
                except IntegrityError:
                    continue
            return added

    async def _insert_batch(self, incident_id: int, steps: list[PlannedStep]) -> list[str]:
        async with self.services.db.session() as session:
            result = await session.exec(
                select(EscalationRow.key, EscalationRow.state)
                .where(EscalationRow.incident_id == incident_id)
                .where(col(EscalationRow.key).in_([s.key for s in steps]))
            )
            taken = {(key, state) for key, state in result.all()}
            added: list[str] = []
            for step in steps:
                # A ladder rung fires once per incident, a promise's steps once per promise,
                # a playbook step is planned once whatever became of it; other reminders recur.
                if step.ever:
                    if any(key == step.key for key, _ in taken):
                        continue
                else:
                    blocking = {*LIVE, "fired"} if step.once else set(LIVE)
                    if any((step.key, state) in taken for state in blocking):
                        continue
                session.add(
                    EscalationRow(
                        incident_id=incident_id,
                        key=step.key,
                        kind=step.kind.value,
                        step=step.step,
                        due_at=step.due_at,
                        cancel_on=step.cancel_on,
                        targets=step.targets,
                        created_at=self.services.clock.now(),
                    )
                )
                added.append(step.key)
        return added

    async def plan_declared(self, incident_id: int) -> list[str]:
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        return await self._insert(
            incident, plan_declared(self.services.policy, incident_times(incident))
        )

    async def cancel(
        self,
        incident_id: int,
        reason: str,
        cancel_on: set[str] | None = None,
        kinds: set[Kind] | None = None,
        keep: set[Kind] | None = None,
        keys: set[str] | None = None,
    ) -> int:
        """Cancel pending steps matching the filters. A step that never happened stays off the
        timeline (its row keeps the reason, for `/incident escalations`)."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            query = (
                select(EscalationRow)
                .where(EscalationRow.incident_id == incident_id)
                .where(EscalationRow.state == "pending")
            )
            if cancel_on is not None:
                query = query.where(col(EscalationRow.cancel_on).in_(cancel_on))
            if kinds is not None:
                query = query.where(col(EscalationRow.kind).in_([k.value for k in kinds]))
            if keep:
                query = query.where(col(EscalationRow.kind).not_in([k.value for k in keep]))
            if keys is not None:
                query = query.where(col(EscalationRow.key).in_(keys))
            rows = list((await session.exec(query.with_for_update())).all())
            for row in rows:
                row.state, row.cancelled_at, row.outcome = "cancelled", now, reason
                session.add(row)
        return len(rows)

    async def run_pending(self, incident_id: int) -> None:
        """Do the planning the incident's changes recorded as owed, in order, then clear
        exactly what was done. Every plan is idempotent (steps already live or fired are not
        added twice), so a crash half-way or a second replica doing it too is harmless."""
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
            owed = list(incident.plans_pending)
        if not owed:
            return
        for plan in owed:
            await self._plans[plan](incident_id)
            if plan in PLAYBOOK_EVENTS:
                await self.plan_playbooks(incident_id, PLAYBOOK_EVENTS[plan])
        async with self.services.db.session() as session:
            locked = await repo.get_for_update(session, incident_id)
            if locked is None or locked.plans_pending[: len(owed)] != owed:
                return
            locked.plans_pending = locked.plans_pending[len(owed) :]
            if not locked.plans_pending:
                locked.plans_pending_since = None
            session.add(locked)

    async def owed(self, older_than: datetime) -> list[int]:
        """Incidents whose planning has been owed since before `older_than` (a crash)."""
        async with self.services.db.session() as session:
            result = await session.exec(
                select(Incident.id)
                .where(col(Incident.plans_pending_since).is_not(None))
                .where(col(Incident.plans_pending_since) <= older_than)
                .order_by(col(Incident.id))
            )
            return [i for i in result.all() if i is not None]

    @property
    def _plans(self) -> dict[str, Callable[[int], Awaitable[object]]]:
        return {
            "declared": self.plan_declared,
            "acknowledged": self.on_acknowledged,
            "progress": self.on_progress,
            "promise": self.replan_promise,
            "severity": self.on_severity_changed,
            "resolved": self.on_resolved,
        }

    async def plan_playbooks(self, incident_id: int, events: tuple[str, ...]) -> list[str]:
        """Plan the steps of the playbooks that apply to the incident on its latest occurrence
        of each event (a severity or status change is its timeline event). Each step is
        planned at most once per incident (or per occurrence): planning again adds nothing."""
        if not self.services.policy.playbooks:
            return []
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
            snap = repo.snapshot(incident, await repo.current_roles(session, incident_id))
            labels = await _alert_labels(session, incident_id)
            occasions: list[Occasion] = []
            for event in events:
                if event == "declared":
                    occasions.append(Occasion("declared", "declared", incident.declared_at))
                    continue
                latest = (
                    await session.exec(
                        select(TimelineEvent)
                        .where(TimelineEvent.incident_id == incident_id)
                        .where(TimelineEvent.kind == event)
                        .order_by(col(TimelineEvent.id).desc())
                        .limit(1)
                    )
                ).first()
                if latest is not None:
                    occasions.append(Occasion(event, str(latest.id), latest.at))
        steps: list[PlannedStep] = []
        for occasion in occasions:
            steps += plan_playbooks(self.services.policy, snap, occasion, labels)
        return await self._insert(incident, steps) if steps else []

    async def plan_checklist_nudge(self, incident_id: int, task_id: int, due_at: datetime) -> None:
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        await self._insert(incident, [plan_checklist_nudge(task_id, due_at)])

    async def on_acknowledged(self, incident_id: int) -> None:
        await self.cancel(incident_id, "acknowledged", cancel_on={"acknowledged"})
        # The pages go quiet too (targets with `acknowledge_with_incident`).
        await self.paging.follow(incident_id, PageAction.ACKNOWLEDGE, "incident acknowledged")

    async def on_progress(self, incident_id: int) -> None:
        """An update or status change: cancel 'without progress' steps. (An update's new
        promise is planned by `replan_promise`.)"""
        await self.cancel(incident_id, "progress posted", cancel_on={"progress"})

    async def replan_promise(self, incident_id: int) -> None:
        """Plan the steps of the incident's current promise (its reminder and the nudge when
        it is missed) and cancel those of any earlier promise, and the recurring reminder of
        a missed one. Run again, it changes nothing."""
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        times = incident_times(incident)
        steps = plan_promise(self.services.policy, times)
        async with self.services.db.session() as session:
            result = await session.exec(
                select(EscalationRow.key)
                .where(EscalationRow.incident_id == incident_id)
                .where(EscalationRow.state == "pending")
                .where(
                    col(EscalationRow.kind).in_(
                        [Kind.UPDATE_REMINDER.value, Kind.UPDATE_MISSED.value]
                    )
                )
            )
            stale = set(result.all()) - {step.key for step in steps}
        if stale:
            await self.cancel(incident_id, "new promise", keys=stale)
        await self._insert(incident, steps)

    async def plan_recurring_reminder(self, incident_id: int, due_at: datetime) -> None:
        """After a missed promise: the room's reminder, again every cadence until an update."""
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        step = plan_update_reminder(self.services.policy, incident_times(incident), due_at)
        if step:
            await self._insert(incident, [step])

    async def on_resolved(self, incident_id: int) -> None:
        # Follow-up work outlives the incident: action reminders stay planned.
        await self.cancel(incident_id, "resolved", keep={Kind.RETRO_REMINDER, Kind.ACTION_REMINDER})
        await self.paging.follow(incident_id, PageAction.RESOLVE, "incident resolved")
        await self.plan_retro(incident_id)

    async def plan_retro(self, incident_id: int, last_sent: datetime | None = None) -> None:
        """Plan the next retrospective reminder (the first when `last_sent` is None)."""
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        if incident.resolved_at is None:
            return
        step = plan_retro_reminder(self.services.policy, incident.resolved_at, last_sent)
        await self._insert(incident, [step])

    async def plan_action(
        self, incident_id: int, item_id: int, due_on: date, after: datetime | None = None
    ) -> None:
        """(Re)plan an action item's reminder: on its due date, or the working day after
        `after` (the last reminder)."""
        await self.cancel(incident_id, "rescheduled", keys={action_key(item_id)})
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        await self._insert(
            incident, [plan_action_reminder(self.services.policy, item_id, due_on, after)]
        )

    async def cancel_action(self, incident_id: int, item_id: int, reason: str) -> None:
        await self.cancel(incident_id, reason, keys={action_key(item_id)})

    async def plan_archive(self, incident_id: int, closed_at: datetime) -> None:
        async with self.services.db.session() as session:
            incident = await self._incident(session, incident_id)
        delay = self.services.policy.escalation.archive_after_minutes
        await self._insert(incident, [plan_archive(closed_at, delay)])

    async def on_severity_changed(self, incident_id: int) -> None:
        """Re-plan from the new severity's policy; steps that already fired stay fired. The
        promise (which the change may have brought forward) keeps its steps when it stands."""
        await self.cancel(incident_id, "severity changed", kinds={Kind.LADDER, Kind.PAGE})
        await self.replan_promise(incident_id)
        await self.plan_declared(incident_id)

    async def snooze(self, incident_id: int, minutes: int, by: str) -> datetime:
        """Put the next update off: the promise moves to `minutes` from now (never earlier
        than it was), and its reminder and nudge with it. Returns the promise."""
        if minutes not in self.services.policy.escalation.snooze_minutes:
            allowed = ", ".join(str(m) for m in self.services.policy.escalation.snooze_minutes)
            raise ServiceError(f"Snooze for {allowed} minutes.")
        now = self.services.clock.now()
        until = now + timedelta(minutes=minutes)
        async with self.services.db.session() as session:
            incident = await repo.get_for_update(session, incident_id)
            if incident is None:
                raise no_incident(incident_id)
            await self._allow(session, incident, "snooze", by)
            if not Status(incident.status).is_open:
                raise ServiceError(f"Incident #{incident_id} is {incident.status}.")
            if incident.next_update_at is None or incident.next_update_at < until:
                incident.next_update_at = until
                incident.version += 1  # the topic and the headline show the promise
            until = incident.next_update_at
            session.add(incident)
            session.add(
                repo.event(
                    incident_id,
                    now,
                    "reminder_snoozed",
                    f"Update reminder snoozed for {minutes} min",
                    by,
                )
            )
        await self.replan_promise(incident_id)
        return until

    async def retro_held(self, incident_id: int, by: str, key: str | None = None) -> Held:
        """Record that the retrospective took place. `key` is the request's identity: the
        same request again finds its own record (`Held.REPLAY`)."""
        now = self.services.clock.now()
        try:
            async with self.services.db.session() as session:
                if key and await repo.event_by_key(session, key) is not None:
                    return Held.REPLAY
                incident = await repo.get_for_update(session, incident_id)
                if incident is None:
                    raise no_incident(incident_id)
                await self._allow(session, incident, "retro", by)
                if Status(incident.status).is_open:
                    raise ServiceError(
                        f"Incident #{incident_id} is still open; hold the retrospective after "
                        "it is resolved."
                    )
                if incident.retro_held_at is not None:
                    return Held.BEFORE
                incident.retro_held_at = now
                session.add(incident)
                event = repo.event(incident_id, now, "retro_held", "Retrospective held", by)
                event.source_key = key
                session.add(event)
        except IntegrityError:
            if key is None:
                raise
            return Held.REPLAY  # the same request, at the same moment, recorded it
        await self.cancel(incident_id, "retrospective held", kinds={Kind.RETRO_REMINDER})
        return Held.NOW


async def _alert_labels(session: AsyncSession, incident_id: int) -> list[dict[str, str]]:
    """The labels of each alert of the incident (its group's labels, then its own)."""
    groups = list(
        (await session.exec(select(AlertGroup).where(AlertGroup.incident_id == incident_id))).all()
    )
    labels: list[dict[str, str]] = []
    for group in groups:
        labels.append(dict(group.labels))
        rows = await session.exec(select(AlertRow).where(AlertRow.group_id == group.id))
        labels += [{**group.labels, **row.labels} for row in rows.all()]
    return labels


def describe_key(key: str) -> str:
    if (ref := parse_run_key(key)) is not None:
        return f"Playbook {ref.playbook}, step {ref.index + 1}"
    if key.startswith("checklist:"):
        return "Checklist task nudge"
    if key.startswith("ladder:"):
        return f"Escalation step {key.split(':', 1)[1]}"
    if key.startswith("page:"):
        return "Page"
    if key.startswith("action:"):
        return f"Reminder for action item A{key.split(':', 1)[1]}"
    if key.startswith("update_reminder:"):
        return "Update reminder"
    if key.startswith("update_missed:"):
        return "Late update nudge"
    return {
        "update_reminder": "Update reminder",
        "retro_reminder": "Retrospective reminder",
        "archive": "Channel archive",
    }.get(key, key)
