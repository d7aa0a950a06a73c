"""Alerts from monitoring systems: stored per alert, grouped, routed, and turned into triage
cards, incidents and lines in an incident's channel and timeline.

`receive` is what a webhook does, in one transaction under the group's row lock: the same
payload again (a retry, a `repeat_interval` re-send) changes nothing, and two replicas taking
webhooks for one group apply them one after the other. What follows (declaring, the card, the
incident's summary) is `follow_up`, run after the answer and again by the scheduler's sweep, so
a crash between the two loses nothing: every step is idempotent (the declare by its request
key, the card by the version it shows, the summary by the version it said).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.alerts import (
    DEFAULT_ROUTE,
    Alert,
    AlertBatch,
    AlertsPolicy,
    Route,
    correlates,
)
from app.domain.lifecycle import Status
from app.messages import blocks
from app.messages.blocks import Message
from app.services.context import Services
from app.services.flows import Flows
from app.services.incidents import DeclareRequest
from app.services.outbox import Outgoing, enqueue
from app.services.ports import SlackError
from app.store import alerts as store
from app.store import repo
from app.store.models import AlertGroup, AlertRow, Incident, TimelineEvent

log = logging.getLogger(__name__)

SENDERS = {"alertmanager": "Alertmanager", "grafana": "Grafana", "generic": "Webhook"}
# At most this many alerts are listed on a card or in a summary; the rest are counted.
LISTED = 20
# Labels never worth a place on a card: they say what every alert of the group says already.
QUIET_LABELS = frozenset({"alertname", "__name__", "job", "prometheus", "monitor"})


@dataclass(frozen=True)
class Received:
    """What a webhook did: the group it went to (None: dropped by its route), and whether
    anything changed (False for a repeat)."""

    group_id: int | None
    changed: bool
    action: str
    route: int = 0


@dataclass(frozen=True)
class Proposal:
    """The incident an alert group's route proposes: what the declare form is filled with."""

    title: str
    severity: int
    service: str
    description: str
    detected_at: datetime


@dataclass
class _Transitions:
    fired: list[AlertRow] = field(default_factory=list)
    cleared: list[AlertRow] = field(default_factory=list)
    updated: bool = False
    started: bool = False

    @property
    def changed(self) -> bool:
        return bool(self.fired or self.cleared or self.updated)


def key_hash(group_key: str) -> str:
    return hashlib.sha256(group_key.encode()).hexdigest()


def declarer(source: str, source_type: str) -> str:
    """How the bot appears as the declarer of an incident an alert declared."""
    return f"{SENDERS.get(source_type, 'Alerts')} ({source})"


def title_of(row: AlertRow, route: Route) -> str:
    return route.title_for(row.labels, row.annotations)[:200]


class Alerts:
    def __init__(self, services: Services, flows: Flows) -> None:
        self.services = services
        self.flows = flows
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # One follow-up per group at a time in this process (the lease covers replicas).
        self._following: dict[int, asyncio.Lock] = {}

    @property
    def policy(self) -> AlertsPolicy:
        return self.services.policy.alerts

    def route_of(self, group: AlertGroup) -> Route:
        routes = self.policy.routes
        if 1 <= group.route <= len(routes):
            return routes[group.route - 1]
        return DEFAULT_ROUTE

    # --- receiving ------------------------------------------------------------------------

    async def receive(self, source: str, batch: AlertBatch) -> Received:
        """Store what the webhook says, per alert. Committed when this returns."""
        number, route = self.policy.route(source, batch.labels)
        if route.action == "drop":
            return Received(None, False, "drop", number)
        now = self.services.clock.now()
        hashed = key_hash(batch.group_key)
        lock = self._locks.setdefault((source, hashed), asyncio.Lock())
        async with lock, self.services.db.session() as session:
            group, created = await store.take_group(
                session,
                source,
                hashed,
                {
                    "group_key": batch.group_key[:4000],
                    "labels": batch.labels,
                    "route": number,
                    "action": route.action,
                    "episode": 1,
                    "firing": False,
                    "version": 1,
                    "card_version": 0,
                    "summary_version": 0,
                    "cleared_said": False,
                    "truncated": 0,
                    "first_seen_at": now,
                    "updated_at": now,
                },
            )
            assert group.id is not None
            moves = _Transitions()

            async def starting() -> None:
                """A new occurrence fires in a group that was not firing: a new episode."""
                if not moves.started and (created or not group.firing):
                    moves.started = True
                    await self._new_episode(session, group, created, number, route, batch, now)

            known = await store.known_alerts(
                session, source, [a.fingerprint[:200] for a in batch.alerts]
            )
            for alert in batch.alerts:
                await self._apply(session, group, alert, now, moves, starting, known)
            await session.flush()
            still = await session.exec(
                select(AlertRow.id).where(
                    col(AlertRow.group_id) == group.id, col(AlertRow.resolved_at).is_(None)
                )
            )
            group.firing = still.first() is not None
            if batch.truncated != group.truncated:
                group.truncated = batch.truncated
                moves.updated = True
            if created and not moves.changed:
                group.version = 1
            elif moves.changed:
                group.version += 1
                group.updated_at = now
            if group.incident_id is not None:
                self._on_timeline(session, group, moves, now)
            session.add(group)
            changed = created or moves.changed
            group_id = group.id
            action = group.action
        if changed:
            log.info(
                "alert group %d (%s): %d fired, %d cleared",
                group_id,
                source,
                len(moves.fired),
                len(moves.cleared),
            )
        return Received(group_id, changed, action, number)

    async def _new_episode(
        self,
        session: AsyncSession,
        group: AlertGroup,
        created: bool,
        number: int,
        route: Route,
        batch: AlertBatch,
        now: datetime,
    ) -> None:
        """The group starts firing (first time, or again after everything cleared): the route
        decides afresh, a new card is due, and an incident that is over is left behind."""
        if not created:
            group.episode += 1
            group.card_ts = None
            group.card_channel = None
            group.card_version = 0
            group.dismissed_by = group.dismissed_reason = None
            group.dismissed_at = None
            group.cleared_said = False
            group.summary_version = 0
            group.summary_at = None
            if group.incident_id is not None:
                incident = await repo.get(session, group.incident_id)
                if incident is None or not Status(incident.status).is_open:
                    group.incident_id = None
        group.labels = batch.labels
        group.route = number
        group.action = route.action
        if group.incident_id is None and route.action in ("declare", "triage", "notify"):
            attach = await self._correlated(session, group, route, now)
            if attach is not None:
                group.incident_id = attach
                session.add(
                    _keyed(
                        f"alert-group:{group.id}:{group.episode}:attached",
                        repo.event(
                            attach,
                            now,
                            "alert_attached",
                            f"Alert group from {group.source} attached: "
                            f"{_group_title(group, route)}",
                        ),
                    )
                )

    async def _correlated(
        self, session: AsyncSession, group: AlertGroup, route: Route, now: datetime
    ) -> int | None:
        """An open incident declared within the route's attach window that the group's
        `correlate_on` labels point at."""
        if not route.attach_window_minutes or not route.correlate_on:
            return None
        since = now - timedelta(minutes=route.attach_window_minutes)
        found = await session.exec(
            select(Incident)
            .where(col(Incident.declared_at) >= since)
            .where(col(Incident.status).in_([s.value for s in Status if s.is_open]))
            .where(col(Incident.is_drill).is_(False))
            .order_by(col(Incident.declared_at).desc())
        )
        labels = {**group.labels}
        labels.setdefault("service", route.service_for(group.labels))
        for incident in found.all():
            assert incident.id is not None
            known: dict[str, str] = {"service": incident.service}
            for other in await store.incident_groups(session, incident.id):
                for name, value in other.labels.items():
                    known.setdefault(name, value)
            if correlates(route.correlate_on, labels, known):
                return incident.id
        return None

    async def _apply(
        self,
        session: AsyncSession,
        group: AlertGroup,
        alert: Alert,
        now: datetime,
        moves: _Transitions,
        starting: Callable[[], Awaitable[None]],
        known: store.Known,
    ) -> None:
        """One alert's news, applied to its own row: a firing alert opens an occurrence
        unless one is open (or this very occurrence already cleared: a late retry); a resolved
        one closes the open occurrence it names."""
        fingerprint = alert.fingerprint[:200]
        current = known.open.get(fingerprint)
        if alert.firing:
            if current is not None:
                if (current.labels, current.annotations, current.links) != (
                    alert.labels,
                    alert.annotations,
                    alert.links,
                ) and current.group_id == group.id:
                    current.labels, current.annotations = alert.labels, alert.annotations
                    current.links = alert.links
                    session.add(current)
                    moves.updated = True
                return
            if (fingerprint, alert.starts_at) in known.occurrences:
                return  # this occurrence already cleared: a retry arriving late
            await starting()
            row = self._row(group, alert, now)
            session.add(row)
            known.add(row)
            moves.fired.append(row)
            return
        ended = min(alert.ends_at or now, now)
        if current is not None:
            # Alertmanager merges an alert by fingerprint while it is active (amtool sends
            # its times to the millisecond), so a start time that differs a little is still
            # this occurrence; one that ended before this occurrence began is late news.
            if alert.ends_at is not None and alert.ends_at < current.starts_at:
                return
            current.resolved_at = max(ended, current.starts_at)
            current.ends_at = alert.ends_at
            session.add(current)
            known.open.pop(fingerprint, None)
            moves.cleared.append(current)
            return
        if alert.starts_at is None or (fingerprint, alert.starts_at) in known.occurrences:
            return
        # Fired and cleared between two webhooks: kept, so the card and the timeline say so.
        row = self._row(group, alert, now)
        row.resolved_at = max(ended, row.starts_at)
        row.ends_at = alert.ends_at
        session.add(row)
        known.add(row)
        moves.fired.append(row)
        moves.cleared.append(row)

    @staticmethod
    def _row(group: AlertGroup, alert: Alert, now: datetime) -> AlertRow:
        assert group.id is not None
        return AlertRow(
            group_id=group.id,
            source=group.source,
            fingerprint=alert.fingerprint[:200],
            episode=group.episode,
            labels=alert.labels,
            annotations=alert.annotations,
            links=alert.links,
            starts_at=min(alert.starts_at or now, now),
            ends_at=alert.ends_at,
            received_at=now,
        )

    def _on_timeline(
        self, session: AsyncSession, group: AlertGroup, moves: _Transitions, now: datetime
    ) -> None:
        assert group.incident_id is not None
        route = self.route_of(group)
        for row in moves.fired:
            session.add(_fired_event(group.incident_id, row, route))
        for row in moves.cleared:
            session.add(
                _keyed(
                    f"alert:{row.id}:cleared",
                    repo.event(
                        group.incident_id,
                        row.resolved_at or now,
                        "alert_cleared",
                        f"Alert cleared: {title_of(row, route)}",
                        fingerprint=row.fingerprint,
                    ),
                )
            )

    # --- what follows ---------------------------------------------------------------------

    async def follow_up(self, group_id: int) -> None:
        """Declare, attach, card and summary, as far as the group's state asks for them."""
        async with self._following.setdefault(group_id, asyncio.Lock()):
            await self._follow_up(group_id)

    async def _follow_up(self, group_id: int) -> None:
        group = await self._group(group_id)
        if group is None:
            return
        if (
            group.action == "declare"
            and group.incident_id is None
            and group.firing
            and group.dismissed_at is None
        ):
            await self.declare(group_id, None)
            group = await self._group(group_id)
            if group is None:
                return
        # A group attached to an incident as it arrived needs no card: its news goes to the
        # incident's channel. A card posted before it was attached says where it went.
        if (group.action in ("triage", "notify") and group.incident_id is None) or (
            group.card_ts is not None and group.card_version < group.version
        ):
            await self.refresh_card(group_id)
        if group.incident_id is not None:
            await self.summarise(group.incident_id)

    async def _group(self, group_id: int) -> AlertGroup | None:
        async with self.services.db.session() as session:
            return await session.get(AlertGroup, group_id)

    async def proposal(self, group_id: int) -> Proposal | None:
        """What the route proposes for the group's incident; None when it has one already."""
        group = await self._group(group_id)
        if group is None or group.incident_id is not None:
            return None
        route = self.route_of(group)
        async with self.services.db.session() as session:
            rows = await store.episode_alerts(session, group)
        firing = [r for r in rows if r.resolved_at is None] or rows
        labels = firing[0].labels if firing else group.labels
        annotations = firing[0].annotations if firing else {}
        now = self.services.clock.now()
        description = "\n".join(
            f"{title_of(r, route)}: {r.annotations.get('description', '')}".rstrip(": ")
            for r in firing[:LISTED]
        )
        return Proposal(
            title=route.title_for(labels, annotations)[:80],
            severity=route.severity_for(labels),
            service=route.service_for(labels)[:80],
            description=description[:3000],
            detected_at=min(min((r.starts_at for r in rows), default=now), now),
        )

    async def adopt(self, group_id: int, request_key: str) -> None:
        """A person declared from the group's card: the group joins that incident."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            incident = await repo.by_request_key(session, request_key)
            if incident is None or incident.id is None:
                return
            await self._link(session, group_id, incident.id, now)
        await self.follow_up(group_id)

    async def declare(self, group_id: int, by: str | None, key: str | None = None) -> int | None:
        """Declare the group's incident (once per episode, whoever asks and however often):
        by the bot when `by` is None, else by that person. Returns the incident's number."""
        group = await self._group(group_id)
        if group is None:
            return None
        if group.incident_id is not None:
            return group.incident_id
        route = self.route_of(group)
        proposal = await self.proposal(group_id)
        if proposal is None:
            return None
        sources = self.policy.sources
        source_type = sources[group.source].type if group.source in sources else "generic"
        request_key = key or f"alert-group:{group.id}:{group.episode}"
        now = self.services.clock.now()
        await self.flows.declare(
            DeclareRequest(
                title=proposal.title,
                severity=proposal.severity,
                declared_by=by or declarer(group.source, source_type),
                description=proposal.description,
                service=proposal.service,
                commander=(route.commander or None) if by is None else by,
                detected_at=proposal.detected_at,
                request_key=request_key,
                limited=by is not None,
                # Fields required at declare are set afterwards (`/incident set`).
                require_fields=False,
            )
        )
        async with self.services.db.session() as session:
            incident = await repo.by_request_key(session, request_key)
            if incident is None or incident.id is None:
                return None
            await self._link(session, group_id, incident.id, now)
        # Playbooks conditioned on the alerts' labels apply now that the alerts are the
        # incident's (those planned at the declaration are not planned again).
        if await self.flows.escalations.plan_playbooks(incident.id, ("declared",)):
            await self.flows.firing.fire_due(incident.id)
        return incident.id

    async def _link(
        self, session: AsyncSession, group_id: int, incident_id: int, now: datetime
    ) -> None:
        """Attach the group to the incident, its alerts on the timeline (each once)."""
        group = await store.lock_group(session, group_id)
        if group is None or group.incident_id is not None:
            return
        group.incident_id = incident_id
        group.version += 1
        session.add(group)
        route = self.route_of(group)
        for row in await store.episode_alerts(session, group):
            if await repo.event_by_key(session, f"alert:{row.id}:fired") is None:
                session.add(_fired_event(incident_id, row, route))
            if row.resolved_at is not None and (
                await repo.event_by_key(session, f"alert:{row.id}:cleared") is None
            ):
                session.add(
                    _keyed(
                        f"alert:{row.id}:cleared",
                        repo.event(
                            incident_id,
                            row.resolved_at,
                            "alert_cleared",
                            f"Alert cleared: {title_of(row, route)}",
                        ),
                    )
                )

    async def attach(self, group_id: int, incident_id: int, by: str) -> bool:
        """A person attaches the group to an open incident they may see."""
        snap = await self.flows.incidents.snapshot(incident_id)
        await self.services.access.require_sight(snap, by)
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            group = await store.lock_group(session, group_id)
            if group is None or group.incident_id is not None:
                return False
            await self._link(session, group_id, incident_id, now)
            session.add(
                _keyed(
                    f"alert-group:{group_id}:{group.episode}:attached",
                    repo.event(
                        incident_id,
                        now,
                        "alert_attached",
                        f"Alert group from {group.source} attached",
                        by,
                    ),
                )
            )
        await self.follow_up(group_id)
        return True

    async def dismiss(self, group_id: int, by: str, reason: str) -> bool:
        """Dismiss the group's card, keeping who and why. False when it was already."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            group = await store.lock_group(session, group_id)
            if group is None or group.dismissed_at is not None or group.incident_id is not None:
                return False
            group.dismissed_at = now
            group.dismissed_by = by
            group.dismissed_reason = reason[:500]
            group.version += 1
            session.add(group)
        await self.refresh_card(group_id)
        return True

    # --- the triage card ------------------------------------------------------------------

    async def _claim(self, group_id: int) -> bool:
        """Take the group's lease (free, lapsed or ours): one replica edits its card at once."""
        now = self.services.clock.now()
        until = now + timedelta(seconds=self.services.policy.escalation.lease_seconds)
        me = self.services.replica
        async with self.services.db.session() as session:
            result = await session.exec(
                update(AlertGroup)
                .where(col(AlertGroup.id) == group_id)
                .where(
                    or_(
                        col(AlertGroup.owner).is_(None),
                        col(AlertGroup.owner) == me,
                        col(AlertGroup.lease_until) < now,
                    )
                )
                .values(owner=me, lease_until=until)
            )
            return bool(result.rowcount)

    async def _release(self, group_id: int, **values: Any) -> None:
        async with self.services.db.session() as session:
            await session.exec(
                update(AlertGroup)
                .where(col(AlertGroup.id) == group_id)
                .where(col(AlertGroup.owner) == self.services.replica)
                .values(owner=None, lease_until=None, **values)
            )

    async def refresh_card(self, group_id: int) -> None:
        """Post the group's card, or edit it in place, until it shows the latest version."""
        for _ in range(5):
            group = await self._group(group_id)
            if group is None or group.card_version >= group.version:
                return
            if not await self._claim(group_id):
                return  # another replica is at it; the sweep looks again
            try:
                shown = await self._show(group)
            except SlackError as exc:
                log.warning("alert group %d: card not updated yet: %s", group_id, exc.code)
                await self._release(group_id)
                return
            await self._release(group_id, **shown)

    async def _show(self, group: AlertGroup) -> dict[str, Any]:
        assert group.id is not None
        message = await self.card(group)
        slack = self.services.slack
        if group.card_ts and group.card_channel:
            await slack.update(group.card_channel, group.card_ts, message)
            return {"card_version": group.version}
        route = self.route_of(group)
        name = self.policy.channel_for(route)
        channel = await slack.find_channel(name)
        if channel is None:
            log.warning("alert group %d: triage channel #%s not found", group.id, name)
            raise SlackError("conversations.list", "channel_not_found")
        key = f"alert-card:{group.id}:{group.episode}"
        ts = await slack.find_posted(channel, key)
        if ts is None:
            try:
                ts = await slack.post(channel, message, key=key)
            except SlackError as exc:
                if exc.code != "not_in_channel":
                    raise
                await slack.join(channel)
                ts = await slack.post(channel, message, key=key)
        else:
            await slack.update(channel, ts, message)
        return {"card_version": group.version, "card_ts": ts, "card_channel": channel}

    async def card(self, group: AlertGroup) -> Message:
        assert group.id is not None
        route = self.route_of(group)
        async with self.services.db.session() as session:
            rows = await store.episode_alerts(session, group)
        firing = [r for r in rows if r.resolved_at is None]
        shown = sorted(rows, key=lambda r: (r.resolved_at is not None, r.starts_at))
        lead = firing[0] if firing else (rows[0] if rows else None)
        labels = lead.labels if lead else group.labels
        common = {
            k: v
            for k, v in group.labels.items()
            if k not in QUIET_LABELS and all(r.labels.get(k) == v for r in rows)
        }
        text = self.services.renderer.render(
            "alert_card.md.j2",
            title=route.title_for(labels, lead.annotations if lead else {}),
            firing=len(firing),
            cleared=len(rows) - len(firing),
            since=min((r.starts_at for r in rows), default=group.first_seen_at),
            source=group.source,
            severity=route.severity_for(labels),
            truncated=group.truncated,
            labels=[{"name": k, "value": v} for k, v in sorted(common.items())][:12],
            alerts=[_listed(r, route) for r in shown[:LISTED]],
            more=max(0, len(shown) - LISTED),
            incident_id=group.incident_id,
            dismissed_by=group.dismissed_by,
            dismissed_reason=group.dismissed_reason or "",
        )
        body = blocks.sections(text)
        if group.action == "triage" and group.incident_id is None and group.dismissed_at is None:
            value = f"{group.id}:{group.episode}"
            body.append(
                {
                    "type": "actions",
                    "block_id": "alert_actions",
                    "elements": [
                        blocks.button("Declare", "alert_declare", value, "primary"),
                        blocks.button("Attach to an incident", "alert_attach", value),
                        blocks.button("Dismiss", "alert_dismiss", value),
                    ],
                }
            )
        return blocks.message(text, body)

    # --- reading --------------------------------------------------------------------------

    async def counts(self, incident_id: int) -> dict[str, Any] | None:
        """How many of the incident's alerts fire and have cleared, and when the first began;
        None when no alert belongs to it."""
        rows = await self.incident_alerts(incident_id)
        if not rows:
            return None
        firing = sum(1 for r in rows if r.resolved_at is None)
        return {
            "firing": firing,
            "cleared": len(rows) - firing,
            "first": min(r.starts_at for r in rows),
        }

    async def incident_alerts(self, incident_id: int) -> list[AlertRow]:
        async with self.services.db.session() as session:
            return await store.incident_alerts(session, incident_id)

    # --- the incident's channel ------------------------------------------------------------

    async def summarise(self, incident_id: int) -> None:
        """Say in the incident's channel what fired and cleared since the last summary, at
        most once per group per `summary_every_seconds`; and when every attached alert has
        cleared, what the route's `on_clear` asks."""
        now = self.services.clock.now()
        every = timedelta(seconds=self.policy.summary_every_seconds)
        said = False
        mitigate_by: str | None = None
        async with self.services.db.session() as session:
            incident = await repo.get(session, incident_id)
            groups = await store.incident_groups(session, incident_id)
            if incident is None or not Status(incident.status).is_open:
                # Over: nothing more is said in its channel, and nothing is owed.
                for group in groups:
                    if group.summary_version < group.version:
                        group.summary_version = group.version
                        session.add(group)
                return
            for group in groups:
                if group.summary_version >= group.version:
                    continue
                if group.summary_at is not None and now - group.summary_at < every:
                    continue
                locked = await store.lock_group(session, group.id or 0)
                if locked is None or locked.summary_version >= locked.version:
                    continue
                text = await self._summary(session, locked, now)
                locked.summary_version = locked.version
                locked.summary_at = now
                session.add(locked)
                if text:
                    enqueue(session, incident_id, now, [Outgoing("channel", blocks.simple(text))])
                    said = True
            if groups and not any(g.firing for g in groups):
                first = groups[0]
                route = self.route_of(first)
                locked = await store.lock_group(session, first.id or 0)
                if locked is not None and not locked.cleared_said and route.on_clear != "off":
                    locked.cleared_said = True
                    session.add(locked)
                    roles = await repo.current_roles(session, incident_id)
                    snap = repo.snapshot(incident, roles)
                    mitigated = route.on_clear == "mitigate" and snap.status is Status.INVESTIGATING
                    text = self.services.renderer.render(
                        "alerts_cleared.md.j2",
                        incident=snap,
                        commander=snap.commander,
                        mitigated=mitigated,
                    )
                    message = blocks.simple(text)
                    if not mitigated and snap.status is Status.INVESTIGATING:
                        message = blocks.message(
                            text,
                            [
                                *blocks.sections(text),
                                {
                                    "type": "actions",
                                    "block_id": "alerts_cleared",
                                    "elements": [
                                        blocks.button(
                                            "Mark mitigated",
                                            "alerts_mitigate",
                                            str(incident_id),
                                            "primary",
                                        )
                                    ],
                                },
                            ],
                        )
                    if mitigated:
                        mitigate_by = incident.declared_by
                    else:
                        enqueue(session, incident_id, now, [Outgoing("channel", message)])
                        said = True
        if mitigate_by is not None:
            await self.flows.mitigate(incident_id, mitigate_by)
            async with self.services.db.session() as session:
                enqueue(
                    session,
                    incident_id,
                    now,
                    [
                        Outgoing(
                            "channel", blocks.simple(":large_green_circle: Every alert cleared.")
                        )
                    ],
                )
            said = True
        if said:
            await self.flows.publish(incident_id, None)

    async def _summary(self, session: AsyncSession, group: AlertGroup, now: datetime) -> str:
        route = self.route_of(group)
        rows = await store.episode_alerts(session, group)
        since = group.summary_at
        fired = [r for r in rows if since is None or r.received_at > since]
        cleared = [
            r
            for r in rows
            if r.resolved_at is not None and (since is None or r.resolved_at > since)
        ]
        if not fired and not cleared:
            return ""
        return self.services.renderer.render(
            "alert_summary.md.j2",
            source=group.source,
            fired=[_listed(r, route) for r in fired[:LISTED]],
            cleared=[_listed(r, route) for r in cleared[:LISTED]],
            firing=sum(1 for r in rows if r.resolved_at is None),
        )

    # --- the sweep ------------------------------------------------------------------------

    async def sweep(self) -> None:
        """Finish what a webhook's follow-up did not (a crash, Slack refusing for a while):
        a declare owed, a card behind its group, a summary owed to an open incident."""
        card_owed = and_(
            col(AlertGroup.card_version) < col(AlertGroup.version),
            or_(
                and_(
                    col(AlertGroup.action).in_(["triage", "notify"]),
                    col(AlertGroup.incident_id).is_(None),
                ),
                col(AlertGroup.card_ts).is_not(None),
            ),
        )
        summary_owed = and_(
            col(AlertGroup.summary_version) < col(AlertGroup.version),
            col(AlertGroup.incident_id).is_not(None),
        )
        declare_owed = and_(
            col(AlertGroup.action) == "declare",
            col(AlertGroup.incident_id).is_(None),
            col(AlertGroup.firing).is_(True),
            col(AlertGroup.dismissed_at).is_(None),
        )
        async with self.services.db.session() as session:
            found = await session.exec(
                select(AlertGroup.id)
                .where(or_(card_owed, summary_owed, declare_owed))
                .order_by(col(AlertGroup.updated_at))
                .limit(100)
            )
            ids = [i for i in found.all() if i is not None]
        for group_id in ids:
            try:
                await self.follow_up(group_id)
            except SlackError as exc:
                log.warning("alert group %d: follow-up failed: %s", group_id, exc.code)


def _group_title(group: AlertGroup, route: Route) -> str:
    return route.title_for(group.labels, {})


def _listed(row: AlertRow, route: Route) -> dict[str, Any]:
    links = [(k, v) for k, v in sorted(row.links.items()) if _web(v)]
    return {"title": title_of(row, route), "firing": row.resolved_at is None, "links": links[:5]}


def _web(url: str) -> bool:
    """Only http(s) links are shown; a sender's other schemes are left out."""
    return url.lower().startswith(("http://", "https://"))


def _fired_event(incident_id: int, row: AlertRow, route: Route) -> TimelineEvent:
    return _keyed(
        f"alert:{row.id}:fired",
        repo.event(
            incident_id,
            row.starts_at,
            "alert_fired",
            f"Alert firing: {title_of(row, route)}",
            fingerprint=row.fingerprint,
        ),
    )


def _keyed(key: str, event: TimelineEvent) -> TimelineEvent:
    """A timeline entry that the same transition, met again, cannot add twice."""
    event.source_key = key
    return event
