"""Claims due escalation rows atomically and fires them.

Several replicas may share one database: a claim moves rows from `pending` to `firing` with a
lease in one statement (Postgres adds `FOR UPDATE SKIP LOCKED`), so each row is fired by one
replica, which renews the lease while it works. A replica that dies mid-fire loses its lease
and another picks the row up (the same replica, restarted, takes it back at once); the parts
already done (`done`) are not repeated. A Slack outage puts the row back to `pending` with a
later due time, up to `MAX_ATTEMPTS`, then the step ends as `failed` with a note in the room; a
refused token holds it, uncounted, until Slack accepts the token again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import and_, or_, update
from sqlmodel import col

from app.domain.escalation import RECURRING_REMINDER, Kind, cancelled_by, gives_up, retry_delay
from app.scheduler.effects import Effects, NotYet
from app.services.context import Services
from app.services.escalations import Escalations, describe_key, incident_times
from app.services.outbox import Outbox
from app.services.ports import ErrorKind, SlackError
from app.services.recovery import Recovery
from app.store import repo
from app.store.claims import claim
from app.store.leases import renewing, take_back
from app.store.models import ActionItem, ChecklistTask, EscalationRow, Incident

log = logging.getLogger(__name__)

BATCH = 100
CONCURRENCY = 10
MAX_RETRO_REMINDERS = 6


def in_order(rows: Sequence[EscalationRow]) -> list[list[EscalationRow]]:
    """The claimed rows as groups fired one after the other within a group, the groups at
    once: an incident's playbook steps go in their order (an invite before the post that
    mentions the people invited); every other row is a group of its own."""
    groups: list[list[EscalationRow]] = []
    steps: dict[int, list[EscalationRow]] = {}
    for row in rows:
        if row.kind == Kind.PLAYBOOK:
            if row.incident_id not in steps:
                steps[row.incident_id] = []
                groups.append(steps[row.incident_id])
            steps[row.incident_id].append(row)
        else:
            groups.append([row])
    for group in steps.values():
        group.sort(key=lambda r: (r.due_at, r.id or 0))
    return groups


@dataclass
class TickReport:
    fired: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    repaired: list[int] = field(default_factory=list)
    delivered: list[int] = field(default_factory=list)
    # Ended without firing: refused by Slack for good, or out of attempts.
    failed: list[int] = field(default_factory=list)

    @property
    def claimed(self) -> int:
        return len(self.fired) + len(self.cancelled) + len(self.retried) + len(self.failed)


class Engine:
    def __init__(
        self,
        services: Services,
        escalations: Escalations,
        effects: Effects,
        recovery: Recovery | None = None,
        outbox: Outbox | None = None,
        chores: Sequence[Callable[[], Awaitable[None]]] = (),
    ) -> None:
        self.services = services
        self.escalations = escalations
        self.effects = effects
        self.recovery = recovery
        self.outbox = outbox
        self.chores = list(chores)
        self.replica = services.replica
        self._lease = timedelta(seconds=services.policy.escalation.lease_seconds)
        self._scheduler: AsyncIOScheduler | None = None
        self._tick_lock = asyncio.Lock()
        self._row_locks: dict[int, asyncio.Lock] = {}

    # --- running --------------------------------------------------------------------------

    def start(self, interval: float | None = None) -> None:
        """One interval job; overlapping runs are skipped, missed runs collapse into one.

        It runs every `escalation.tick_seconds` of the policy, or every `interval` real seconds
        (a clock running faster than real time ticks more often)."""
        self._scheduler = AsyncIOScheduler(timezone="UTC")
        self._scheduler.add_job(
            self.tick,
            "interval",
            seconds=interval or self.services.policy.escalation.tick_seconds,
            max_instances=1,
            coalesce=True,
            id="escalation-tick",
        )
        self._scheduler.start()

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        async with self._tick_lock:  # let a running tick finish
            pass

    async def fire_due(self, incident_id: int) -> TickReport:
        """Fire what is due for one incident now (its pages, right after declaring), without
        the rest of a tick's work."""
        report = TickReport()
        if self.services.auth.waiting():
            return report
        rows = await self._claim(incident_id)
        for group in in_order(rows):
            for row in group:
                await self._fire(row, report)
        await self._page(incident_id)
        return report

    async def _page(self, incident_id: int | None = None) -> None:
        """Send the pager calls that are due (never raises: a tick must go on)."""
        try:
            await self.escalations.paging.deliver(incident_id)
        except Exception:
            log.exception("escalation tick: delivering pages failed")

    async def tick(self) -> TickReport:
        """Fire everything due now. Never raises: a tick failing must not stop the next one."""
        async with self._tick_lock:
            report = TickReport()
            for chore in self.chores:
                try:
                    await chore()
                except Exception:
                    log.exception("escalation tick: %s failed", getattr(chore, "__name__", chore))
            # Pagers first, and whatever Slack is doing: they are how people hear when Slack
            # is the thing that is down.
            await self._page()
            if not await self._token_works():
                # Slack refuses the token: everything stays queued until a probe finds it works.
                return report
            if self.recovery is not None:
                try:
                    report.repaired = await self.recovery.run()
                except Exception:
                    log.exception("escalation tick: repairing war rooms failed")
            if self.outbox is not None:
                try:
                    report.delivered = (await self.outbox.deliver()).sent
                except Exception:
                    log.exception("escalation tick: delivering queued messages failed")
            try:
                rows = await self._claim()
            except Exception:
                log.exception("escalation tick: claim failed")
                return report
            limit = asyncio.Semaphore(CONCURRENCY)

            async def fire(group: list[EscalationRow]) -> None:
                for row in group:
                    async with limit:
                        await self._fire(row, report)

            results = await asyncio.gather(
                *(fire(group) for group in in_order(rows)), return_exceptions=True
            )
            for result in results:
                # A row whose bookkeeping failed (database gone, say) keeps its lease and is
                # taken up again once the lease lapses; the tick itself carries on.
                if isinstance(result, Exception):
                    log.error("escalation tick: a step failed: %r", result)
            if rows:
                await self._page()  # what the steps just fired asked for
            return report

    async def _token_works(self) -> bool:
        """False while Slack refuses the bot token. When the backoff allows, try it again
        here, so the pause ends (and /healthz recovers) even with nothing queued."""
        auth = self.services.auth
        if not auth.paused:
            return True
        if not auth.probe_due():
            return False
        auth.probing()
        try:
            await self.services.slack.auth_test()
        except SlackError as exc:
            log.debug("token still refused: %s", exc.code)
        return not auth.paused

    # --- claiming -------------------------------------------------------------------------

    async def _claim(self, incident_id: int | None = None) -> Sequence[EscalationRow]:
        now = self.services.clock.now()
        due = or_(
            and_(col(EscalationRow.state) == "pending", col(EscalationRow.due_at) <= now),
            and_(col(EscalationRow.state) == "firing", col(EscalationRow.lease_until) < now),
        )
        filters = [] if incident_id is None else [col(EscalationRow.incident_id) == incident_id]
        return await claim(
            self.services.db,
            EscalationRow,
            due,
            values={
                "state": "firing",
                "claimed_by": self.replica,
                "lease_until": now + self._lease,
            },
            order_by=col(EscalationRow.due_at),
            limit=BATCH,
            filters=filters,
        )

    # --- firing ---------------------------------------------------------------------------

    async def _fire(self, row: EscalationRow, report: TickReport) -> None:
        assert row.id is not None
        async with self.services.db.session() as session:
            incident = await repo.get(session, row.incident_id)
        if incident is None:
            await self._finish(row, "cancelled", "incident gone")
            report.cancelled.append(row.id)
            return
        reason = cancelled_by(row.cancel_on, incident_times(incident))
        if row.kind == Kind.ACTION_REMINDER and reason is None:
            reason = await self._action_settled(row)
        if row.kind == Kind.CHECKLIST_DUE and reason is None:
            reason = await self._task_settled(row)
        if reason:
            await self._finish(row, "cancelled", reason)
            report.cancelled.append(row.id)
            return
        try:
            async with renewing(lambda: self._renew(row), self._lease.total_seconds() / 3):
                await self.effects.perform(row, incident, self._mark_done)
        except NotYet as exc:
            # Waiting for something that will happen (a channel, queued messages): no cap.
            await self._retry(row, f"waiting: {exc}", capped=False)
            report.retried.append(row.id)
            return
        except SlackError as exc:
            error = f"{exc.method}: {exc.code}"
            if exc.kind is ErrorKind.CREDENTIAL:
                await self._hold(row, error)
                report.retried.append(row.id)
            elif exc.retryable:
                if await self._retry(row, error):
                    report.retried.append(row.id)
                else:
                    await self._give_up(row, incident, error, "Slack kept failing")
                    report.failed.append(row.id)
            else:
                await self._give_up(row, incident, error, "Slack refused it")
                report.failed.append(row.id)
            return
        except Exception as exc:
            log.exception("escalation %s failed", row.id)
            error = f"error: {type(exc).__name__}"
            if await self._retry(row, error):
                report.retried.append(row.id)
            else:
                await self._give_up(row, incident, error, "it kept failing")
                report.failed.append(row.id)
            return
        await self._finish(row, "fired", "")
        report.fired.append(row.id)
        await self._after_fired(row)

    async def _give_up(self, row: EscalationRow, incident: Incident, error: str, why: str) -> None:
        """End a step that will not work by retrying: on the timeline, and said in the war room
        (or to the commander). A recurring reminder still plans its next one."""
        await self._finish(row, "failed", error)
        text = (
            f"{describe_key(row.key)} could not be completed: {why} ({error}) after "
            f"{row.attempts + 1} attempt(s); not retried."
        )
        log.error(
            "escalation %s (%s) of incident %s failed: %s", row.id, row.key, row.incident_id, error
        )
        async with self.services.db.session() as session:
            snap = repo.snapshot(incident, await repo.current_roles(session, row.incident_id))
        try:
            await self.effects.tell(snap, text)
        except Exception:
            log.exception("escalation %s: could not report its failure", row.id)
        await self._after_fired(row)

    async def _renew(self, row: EscalationRow) -> None:
        """Keep the lease on a step this replica is still firing."""
        async with self.services.db.session() as session:
            await session.exec(
                update(EscalationRow)
                .where(col(EscalationRow.id) == row.id)
                .where(col(EscalationRow.state) == "firing")
                .where(col(EscalationRow.claimed_by) == self.replica)
                .values(lease_until=self.services.clock.now() + self._lease)
            )

    async def take_back(self) -> None:
        """At start-up: resume at once what a replica of this name held when it stopped."""
        await take_back(self.services.db, self.replica, self.services.clock.now())

    async def _action_settled(self, row: EscalationRow) -> str | None:
        """Why an action item reminder no longer applies (done, gone, no owner), or None."""
        async with self.services.db.session() as session:
            item = await session.get(ActionItem, row.step or 0)
        if item is None:
            return "action item gone"
        if item.done_at is not None:
            return "action item done"
        if not item.owner or item.due_on is None:
            return "action item has no owner or deadline"
        return None

    async def _task_settled(self, row: EscalationRow) -> str | None:
        """Why a checklist task's nudge no longer applies (done, gone), or None."""
        async with self.services.db.session() as session:
            task = await session.get(ChecklistTask, row.step or 0)
        if task is None:
            return "task gone"
        if task.done_at is not None:
            return "task done"
        return None

    async def _mark_done(self, row: EscalationRow, part: str) -> None:
        """Record one finished part (a DM, the channel post). Parts of one row may finish
        together: the lock keeps each write a superset of the one before."""
        lock = self._row_locks.setdefault(row.id or 0, asyncio.Lock())
        async with lock:
            await self._write_done(row, part)
        if not lock.locked():
            self._row_locks.pop(row.id or 0, None)

    async def _write_done(self, row: EscalationRow, part: str) -> None:
        row.done = [*row.done, part]
        async with self.services.db.session() as session:
            await session.exec(
                update(EscalationRow)
                .where(col(EscalationRow.id) == row.id)
                .where(col(EscalationRow.claimed_by) == self.replica)
                .values(done=row.done, lease_until=self.services.clock.now() + self._lease)
            )

    async def _finish(self, row: EscalationRow, state: str, outcome: str) -> None:
        now = self.services.clock.now()
        values: dict[str, object] = {"state": state, "outcome": outcome, "lease_until": None}
        values["fired_at" if state == "fired" else "cancelled_at"] = now
        async with self.services.db.session() as session:
            await session.exec(
                update(EscalationRow)
                .where(col(EscalationRow.id) == row.id)
                .where(col(EscalationRow.claimed_by) == self.replica)
                .values(**values)
            )
            # Pages and escalations that went out are part of the story; a step cancelled
            # because it was no longer needed is not (its row keeps the reason), and a failed
            # step is said by `_give_up`, in the room as well as on the timeline.
            if state == "fired" and row.kind in {Kind.LADDER, Kind.PAGE}:
                session.add(
                    repo.event(
                        row.incident_id,
                        now,
                        "escalation_fired",
                        f"{describe_key(row.key)} fired",
                        key=row.key,
                        targets=row.targets,
                    )
                )
        self._ended(row, state, now)

    def _ended(self, row: EscalationRow, state: str, now: datetime) -> None:
        """Counted by kind and outcome; a fired step's lag (fired minus due) observed, and
        said in one line."""
        lag = (now - row.due_at).total_seconds() if state == "fired" else None
        self.services.metrics.step_ended(row.kind, state, lag)
        if state != "fired":
            return
        log.info(
            "incident %s: escalation %s fired (%s), %.1f s after due",
            row.incident_id,
            row.id,
            row.kind,
            lag,
            extra={
                "event": "escalation.fired",
                "incident_id": row.incident_id,
                "action": "escalation_fired",
                "kind": row.kind,
                "key": row.key,
                "lag_seconds": round(lag or 0.0, 3),
            },
        )

    async def _retry(self, row: EscalationRow, error: str, capped: bool = True) -> bool:
        """Due again after a backoff; False (nothing written) when the step has used its
        attempts. The timeline says it once, at the first failure, not at every retry."""
        now = self.services.clock.now()
        attempts = row.attempts + 1
        if capped and gives_up(attempts):
            return False
        log.warning("escalation %s (%s) will retry: %s", row.id, row.key, error)
        async with self.services.db.session() as session:
            await session.exec(
                update(EscalationRow)
                .where(col(EscalationRow.id) == row.id)
                .where(col(EscalationRow.claimed_by) == self.replica)
                .values(
                    state="pending",
                    attempts=attempts,
                    due_at=now + retry_delay(attempts),
                    outcome=error,
                    lease_until=None,
                )
            )
            if attempts == 1:
                session.add(
                    repo.event(
                        row.incident_id,
                        now,
                        "escalation_retry",
                        f"{describe_key(row.key)} failed ({error}); retrying",
                        key=row.key,
                    )
                )
        return True

    async def _hold(self, row: EscalationRow, error: str) -> None:
        """Back to pending, uncounted and off the timeline: Slack refuses the token, and the
        step goes out as soon as it accepts it again."""
        async with self.services.db.session() as session:
            await session.exec(
                update(EscalationRow)
                .where(col(EscalationRow.id) == row.id)
                .where(col(EscalationRow.claimed_by) == self.replica)
                .values(
                    state="pending",
                    due_at=self.services.clock.now(),
                    outcome=error,
                    lease_until=None,
                )
            )

    async def _after_fired(self, row: EscalationRow) -> None:
        """Reminders recur: plan the next one."""
        now = self.services.clock.now()
        if row.kind == Kind.UPDATE_MISSED or row.key == RECURRING_REMINDER:
            # A promise's reminder fires once; once the promise is missed, the room is
            # reminded every cadence until an update makes a new promise.
            async with self.services.db.session() as session:
                incident = await repo.get(session, row.incident_id)
            assert incident is not None
            cadence = self.services.policy.severity(incident.severity).update_every_minutes
            if cadence:
                await self.escalations.plan_recurring_reminder(
                    row.incident_id, due_at=now + timedelta(minutes=cadence)
                )
        elif row.kind == Kind.RETRO_REMINDER:
            sent = sum(
                1
                for r in await self.escalations.rows(row.incident_id)
                if r.kind == Kind.RETRO_REMINDER and r.state == "fired"
            )
            if sent < MAX_RETRO_REMINDERS:
                await self.escalations.plan_retro(row.incident_id, last_sent=now)
        elif row.kind == Kind.ACTION_REMINDER:
            # One reminder per working day until the item is done.
            async with self.services.db.session() as session:
                item = await session.get(ActionItem, row.step or 0)
            if item is not None and item.done_at is None and item.due_on and item.id:
                await self.escalations.plan_action(row.incident_id, item.id, item.due_on, after=now)
