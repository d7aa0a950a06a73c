"""Paging people through their pagers (PagerDuty, Opsgenie, a signed webhook), durably and
exactly once.

Every call to a provider is a `PagerCall` row, written in the transaction of what asked for it
(a ladder step firing, `/incident page`, an acknowledgment, the resolution) with a unique
`source_key`, so asking twice stores one call. Delivery claims due rows with a lease (any
replica may deliver), sends each incident-and-target stream in order (a trigger before its
acknowledge before its resolve) and records the outcome. A call whose answer was lost is sent
again: the provider's dedup key makes that harmless.

What a provider refuses is handled by what the refusal means (`PagerErrorKind`): an outage is
retried with backoff for as long as it lasts (told in the war room once it has lasted a while);
a refused or missing key is told in the war room and retried slowly until someone fixes it; a
call the provider says is invalid is not retried, and people are told what it said. Pages go
out whatever Slack is doing: they do not wait for Slack's token or rate limits.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, not_, or_, select, tuple_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel import select as select_models  # typed rows; sqlalchemy's for the rest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.escalation import retry_delay
from app.domain.lifecycle import Status
from app.domain.paging import PageAction, PagingPolicy, dedup_key
from app.messages import blocks
from app.messages.mrkdwn import escape
from app.services.context import Services
from app.services.errors import ServiceError
from app.services.outbox import Outgoing, enqueue
from app.services.ports import PageCall, PagerError, PagerErrorKind
from app.store import repo
from app.store.claims import claim
from app.store.models import Incident, PagerCall

log = logging.getLogger(__name__)

BATCH = 100
# An outage is told in the war room once a call has failed this many times in a row.
TELL_AFTER_ATTEMPTS = 3
# A refused key is retried this often until someone fixes it.
CREDENTIAL_RETRY = timedelta(minutes=2)

Stream = tuple[int, str]
# The incident a page's summary names (see `summary_of`).
SUMMARY_INCIDENT = re.compile(r"^\[Sev\d\] (?:Private incident|Incident) #(\d+)\b")


@dataclass
class PagingReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def summary_of(incident: Incident) -> str:
    """What the pager shows. A private incident's title stays in Slack: the page says only
    that there is one, and where."""
    if incident.is_private:
        return f"[Sev{incident.severity}] Private incident #{incident.id}: join its war room"
    return f"[Sev{incident.severity}] Incident #{incident.id}: {incident.title}"


class Paging:
    def __init__(self, services: Services) -> None:
        self.services = services
        self._claiming = asyncio.Lock()

    @property
    def policy(self) -> PagingPolicy:
        return self.services.policy.paging

    def describe(self, target: str) -> str:
        """ "Payments primary (PagerDuty)" for people."""
        return f"{self.policy.label(target)} ({self.policy.provider_name(target)})"

    # --- asking ---------------------------------------------------------------------------

    def _row(
        self,
        incident: Incident,
        target: str,
        action: PageAction,
        now: datetime,
        *,
        reason: str,
        source_key: str,
        by: str | None = None,
        message: str = "",
    ) -> PagerCall:
        assert incident.id is not None
        provider = self.policy.targets[target].provider
        return PagerCall(
            incident_id=incident.id,
            target=target,
            provider=provider,
            action=action.value,
            dedup_key=dedup_key(self.policy.dedup_prefix, incident.id, target),
            summary=summary_of(incident),
            reason=reason,
            requested_by=by,
            message=message,
            source_key=source_key,
            due_at=now,
            created_at=now,
        )

    async def trigger(
        self,
        incident_id: int,
        targets: list[str],
        *,
        reason: str,
        source_key: str,
        by: str | None = None,
        message: str = "",
        said: str | None = None,
    ) -> list[str]:
        """Page `targets` for the incident; returns those newly asked (a `source_key` already
        used asks nobody again). A drill pages no pager: its people are in the room. `said`:
        a line for the war room, queued in the same transaction."""
        targets = [t for t in dict.fromkeys(targets) if t in self.policy.targets]
        if not targets:
            return []
        now = self.services.clock.now()
        try:
            async with self.services.db.session() as session:
                incident = await repo.get(session, incident_id)
                if incident is None or incident.is_drill:
                    return []
                for target in targets:
                    session.add(
                        self._row(
                            incident,
                            target,
                            PageAction.TRIGGER,
                            now,
                            reason=reason,
                            source_key=f"{source_key}:{target}",
                            by=by,
                            message=message,
                        )
                    )
                    session.add(
                        repo.event(
                            incident_id,
                            now,
                            "paged",
                            f"Paged {self.describe(target)}: {reason}",
                            by,
                            target=target,
                        )
                    )
                if said:
                    enqueue(session, incident_id, now, [Outgoing("channel", blocks.simple(said))])
                await session.flush()
        except IntegrityError:
            if len(targets) == 1:
                return []  # asked before, by this same source
            added: list[str] = []
            for target in targets:
                added += await self.trigger(
                    incident_id,
                    [target],
                    reason=reason,
                    source_key=source_key,
                    by=by,
                    message=message,
                    said=said if not added else None,
                )
            return added
        log.info("incident %s: paging %s (%s)", incident_id, ", ".join(targets), reason)
        return targets

    async def page_by_hand(
        self, incident_id: int, target: str, by: str, message: str, key: str
    ) -> bool:
        """`/incident page <target> [message]`; False when this same request paged before."""
        if target not in self.policy.targets:
            known = ", ".join(f"`{t}`" for t in self.policy.targets) or "none are configured"
            raise ServiceError(f"There is no pager target `{escape(target)}` (targets: {known}).")
        async with self.services.db.session() as session:
            incident = await repo.get(session, incident_id)
            if incident is None:
                raise ServiceError(f"There is no incident #{incident_id}.")
            roles = await repo.current_roles(session, incident_id)
            await self.services.access.check("page", by, repo.snapshot(incident, roles))
            if not Status(incident.status).is_open:
                raise ServiceError(
                    f"Incident #{incident_id} is {incident.status}; nobody is paged."
                )
            if incident.is_drill:
                raise ServiceError(
                    "This is a drill: pagers are never paged for a drill. Its people are here."
                )
        said = f":pager: <@{by}> paged *{escape(self.describe(target))}*" + (
            f": {escape(message)}" if message else "."
        )
        asked = await self.trigger(
            incident_id,
            [target],
            reason=f"paged by <@{by}>",
            source_key=key,
            by=by,
            message=message,
            said=said,
        )
        return bool(asked)

    async def follow(self, incident_id: int, action: PageAction, reason: str) -> list[str]:
        """Acknowledge or resolve the incident's pages (after Warroom's own acknowledgment or
        resolution). Resolving first drops the calls not yet sent: a page that never went
        out is not sent for an incident already resolved."""
        if not self.policy.targets:
            return []  # no pagers configured: nothing to look up
        now = self.services.clock.now()
        asked: list[str] = []
        async with self.services.db.session() as session:
            incident = await repo.get(session, incident_id)
            if incident is None:
                return []
            calls = await self._calls(session, incident_id)
            used = {c.source_key for c in calls}
            by_target: dict[str, list[PagerCall]] = defaultdict(list)
            for call in calls:
                by_target[call.target].append(call)
            for target, rows in by_target.items():
                if target not in self.policy.targets:
                    continue
                triggers = [r for r in rows if r.action == PageAction.TRIGGER.value]
                if not triggers:
                    continue
                last = triggers[-1]
                if action is PageAction.ACKNOWLEDGE:
                    if not self.policy.targets[target].acknowledge_with_incident:
                        continue
                    if last.remote_state in ("acknowledged", "resolved"):
                        continue  # someone did it on the pager already
                if action is PageAction.RESOLVE:
                    unsent = [r for r in rows if r.state == "pending"]
                    for row in unsent:
                        row.state, row.outcome = "skipped", "incident resolved first"
                        session.add(row)
                    # A trigger tried once may have reached the provider (a timeout, a lost
                    # answer): resolve it too; a resolve of a key it never saw is harmless.
                    if not any(r.state in ("sent", "sending") or r.attempts for r in triggers):
                        continue  # nothing reached the provider: nothing to resolve
                if f"{action.value}:{last.id}" in used:
                    continue  # asked before (the same plan run again)
                session.add(
                    self._row(
                        incident,
                        target,
                        action,
                        now,
                        reason=reason,
                        source_key=f"{action.value}:{last.id}",
                    )
                )
                asked.append(target)
        return asked

    async def _calls(self, session: AsyncSession, incident_id: int) -> list[PagerCall]:
        result = await session.exec(
            select_models(PagerCall)
            .where(col(PagerCall.incident_id) == incident_id)
            .order_by(col(PagerCall.id))
        )
        return list(result.all())

    async def paged_by_title(self, title: str, provider: str) -> tuple[int, str] | None:
        """(incident, target) of the page whose summary is `title`: the incident it names, and
        of that incident's targets of `provider`, the one paged last with that summary."""
        match = SUMMARY_INCIDENT.match(title)
        if match is None:
            return None
        incident_id = int(match.group(1))
        async with self.services.db.session() as session:
            result = await session.exec(
                select_models(PagerCall)
                .where(col(PagerCall.incident_id) == incident_id)
                .where(col(PagerCall.provider) == provider)
                .where(col(PagerCall.action) == PageAction.TRIGGER.value)
                .where(col(PagerCall.summary) == title)
                .order_by(col(PagerCall.id).desc())
                .limit(1)
            )
            row: PagerCall | None = result.first()
        return (incident_id, row.target) if row is not None else None

    async def by_source(self, source_key: str) -> PagerCall | None:
        async with self.services.db.session() as session:
            result = await session.exec(
                select_models(PagerCall).where(col(PagerCall.source_key) == source_key)
            )
            found: PagerCall | None = result.first()
            return found

    async def calls(self, incident_id: int) -> list[PagerCall]:
        async with self.services.db.session() as session:
            return await self._calls(session, incident_id)

    # --- delivering -----------------------------------------------------------------------

    @property
    def _lease(self) -> timedelta:
        return timedelta(seconds=self.services.policy.escalation.lease_seconds)

    async def deliver(self, incident_id: int | None = None) -> PagingReport:
        """Send what is due, each stream (incident and target) in order, streams at once.
        Never raises for a provider's failure."""
        report = PagingReport()
        if self.services.pagers is None:
            return report
        rows = await self._claim(incident_id)
        streams: dict[Stream, list[PagerCall]] = defaultdict(list)
        for row in rows:
            streams[(row.incident_id, row.target)].append(row)
        results = await asyncio.gather(
            *(self._stream(sorted(r, key=lambda c: c.id or 0), report) for r in streams.values()),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return report

    async def _claim(self, incident_id: int | None) -> list[PagerCall]:
        now = self.services.clock.now()
        due = or_(
            and_(col(PagerCall.state) == "pending", col(PagerCall.due_at) <= now),
            and_(col(PagerCall.state) == "sending", col(PagerCall.lease_until) < now),
        )
        # A stream with a call waiting out a backoff, or being sent elsewhere, waits whole.
        blocked = select(col(PagerCall.incident_id), col(PagerCall.target)).where(
            or_(
                and_(col(PagerCall.state) == "pending", col(PagerCall.due_at) > now),
                and_(col(PagerCall.state) == "sending", col(PagerCall.lease_until) >= now),
            )
        )
        stream = tuple_(col(PagerCall.incident_id), col(PagerCall.target))
        filters: list[ColumnElement[bool]] = [not_(stream.in_(blocked))]
        if incident_id is not None:
            filters.append(col(PagerCall.incident_id) == incident_id)
        async with self._claiming:
            return await claim(
                self.services.db,
                PagerCall,
                due,
                values={
                    "state": "sending",
                    "claimed_by": self.services.replica,
                    "lease_until": now + self._lease,
                },
                order_by=col(PagerCall.id),
                limit=BATCH,
                filters=filters,
            )

    async def _stream(self, rows: list[PagerCall], report: PagingReport) -> None:
        for index, row in enumerate(rows):
            try:
                outcome = await self._send(row)
            except PagerError as exc:
                self.services.metrics.page_call(row.provider, exc.kind.value)
                report.failed.append(row.id or 0)
                report.errors.append(exc.detail)
                if exc.kind is PagerErrorKind.INVALID:
                    await self._finish(row, "failed", exc.detail)
                    await self._tell(
                        row,
                        f":warning: {self.describe(row.target)} refused to "
                        f"{row.action} the page for incident #{row.incident_id} "
                        f"and it is not retried: {escape(exc.detail)}",
                    )
                    continue  # the stream's later calls still go
                await self._back_off(rows[index:], exc)
                return
            self.services.metrics.page_call(row.provider, "sent")
            report.sent.append(row.id or 0)
            await self._finish(row, "sent", outcome)

    async def _send(self, row: PagerCall) -> str:
        assert self.services.pagers is not None
        async with self.services.db.session() as session:
            incident = await repo.get(session, row.incident_id)
        links: tuple[tuple[str, str], ...] = ()
        details: tuple[tuple[str, str], ...] = (("reason", row.reason),)
        if incident is not None and incident.channel_id:
            links = (
                (
                    f"https://slack.com/app_redirect?channel={incident.channel_id}",
                    "War room in Slack",
                ),
            )
        call = PageCall(
            target=row.target,
            action=row.action,
            dedup_key=row.dedup_key,
            summary=row.summary,
            severity=incident.severity if incident else 1,
            incident_id=row.incident_id,
            message=row.message,
            links=links,
            details=details,
        )
        return await self.services.pagers.send(call)

    async def _finish(self, row: PagerCall, state: str, outcome: str) -> None:
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            await session.exec(
                update(PagerCall)
                .where(col(PagerCall.id) == row.id)
                .values(
                    state=state,
                    outcome=outcome[:500],
                    lease_until=None,
                    sent_at=now if state == "sent" else None,
                )
            )
        log.info(
            "incident %s: pager call %s (%s %s) %s",
            row.incident_id,
            row.id,
            row.action,
            row.target,
            state,
            extra={
                "event": "page." + state,
                "incident_id": row.incident_id,
                "action": row.action,
                "provider": row.provider,
                "target": row.target,
                "outcome": state,
            },
        )

    async def _back_off(self, rows: list[PagerCall], exc: PagerError) -> None:
        """The first call failed for a reason time (or a person fixing the key) cures: it and
        the rest of its stream wait, in order."""
        first = rows[0]
        attempts = first.attempts + 1
        delay = retry_delay(attempts)
        if exc.kind is PagerErrorKind.CREDENTIAL:
            delay = max(delay, CREDENTIAL_RETRY)
        due = self.services.clock.now() + delay
        log.warning(
            "incident %s: pager call %s to %s failed (%s, attempt %d): %s",
            first.incident_id,
            first.id,
            first.target,
            exc.kind.value,
            attempts,
            exc.detail,
        )
        async with self.services.db.session() as session:
            for row in rows:
                await session.exec(
                    update(PagerCall)
                    .where(col(PagerCall.id) == row.id)
                    .where(col(PagerCall.claimed_by) == self.services.replica)
                    .values(
                        state="pending",
                        due_at=due,
                        lease_until=None,
                        attempts=attempts if row is first else row.attempts,
                        outcome=exc.detail[:500] if row is first else row.outcome,
                    )
                )
        if first.told:
            return
        if exc.kind is PagerErrorKind.CREDENTIAL:
            text = (
                f":warning: {self.describe(first.target)} refuses Warroom's key, so the page "
                f"({first.action}) for incident #{first.incident_id} has not gone out: "
                f"{escape(exc.detail)}. Fix the key in Warroom's environment; Warroom keeps "
                "trying every few minutes. Page the people another way meanwhile."
            )
        elif attempts >= TELL_AFTER_ATTEMPTS:
            text = (
                f":warning: {self.describe(first.target)} is not taking the page "
                f"({first.action}) for incident #{first.incident_id} "
                f"({escape(exc.detail)}). Warroom keeps trying; page the people another way "
                "if it is urgent."
            )
        else:
            return
        await self._tell(first, text)

    async def _tell(self, row: PagerCall, text: str) -> None:
        """Say a problem once per call: on the timeline and in the war room (queued, so it
        waits for Slack when Slack is the other thing down)."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            result = await session.exec(
                update(PagerCall)
                .where(col(PagerCall.id) == row.id)
                .where(col(PagerCall.told).is_(False))
                .values(told=True)
            )
            if not result.rowcount:
                return
            row.told = True
            session.add(repo.event(row.incident_id, now, "problem", text))
            enqueue(session, row.incident_id, now, [Outgoing("channel", blocks.simple(text))])

    # --- hearing back ---------------------------------------------------------------------

    async def record_remote(
        self, incident_id: int, target: str, state: str, by: str
    ) -> PagerCall | None:
        """What the provider says someone did with the page (acknowledged, resolved); the
        latest trigger of that target carries it. None when Warroom never paged it."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            result = await session.exec(
                select_models(PagerCall)
                .where(col(PagerCall.incident_id) == incident_id)
                .where(col(PagerCall.target) == target)
                .where(col(PagerCall.action) == PageAction.TRIGGER.value)
                .order_by(col(PagerCall.id).desc())
                .limit(1)
            )
            row: PagerCall | None = result.first()
            if row is None:
                return None
            row.remote_state, row.remote_by, row.remote_at = state, by[:200], now
            session.add(row)
            return row
