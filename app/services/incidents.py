"""State changes of an incident. Each validates through the domain, writes the row and a
timeline event in one transaction, and returns a snapshot for the Slack side to announce."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.escalation import MAX_PROMISE_MINUTES, default_promise_minutes, promise_after
from app.domain.fields import BadValue, display, label, parse_value
from app.domain.lifecycle import UPDATE_STATUSES, Status, TransitionError, check_transition
from app.domain.permissions import MOVES
from app.domain.policy import Policy
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages import mrkdwn
from app.messages.mrkdwn import Mrkdwn
from app.services import custom_fields
from app.services.announcements import Announcements
from app.services.briefing import read as read_briefing
from app.services.context import Services
from app.services.errors import InvalidInput, ServiceError, incident_snapshot, no_incident
from app.services.outbox import Outgoing, enqueue
from app.services.status_updates import StatusUpdates
from app.store import repo
from app.store.models import ActionItem, Incident, RoleAssignment, StatusUpdate, TimelineEvent

# One line per declare, severity change, resolve and close: numbers and user IDs, never a
# title or anything else people typed (logs travel further than the incident's channel).
log = logging.getLogger(__name__)

MAX_TITLE = 80
MAX_FIELD = 3000


@dataclass(frozen=True)
class DeclareRequest:
    title: str
    severity: int
    declared_by: str
    description: str = ""
    service: str = ""
    is_private: bool = False
    # A practice incident (`/incident drill`): see `[drills]` in the policy.
    is_drill: bool = False
    commander: str | None = None
    detected_at: datetime | None = None
    request_key: str | None = None
    source_channel_id: str | None = None
    source_ts: str | None = None
    source_permalink: str | None = None
    reply_url: str | None = None
    # A person's declares count against `[limits]`; the bot declaring for an alert group (one
    # incident per group, by the group's key) does not.
    limited: bool = True
    # The incident type (a `[types]` key; empty: the default type) and custom field values
    # by field name, as typed or picked (checked against each field's kind).
    type: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    # Fields required at declare must be given (a person declaring); an alert group's
    # incident starts without them.
    require_fields: bool = True
    # The form shows every field; values for fields the chosen type lacks are left out.
    only_applying: bool = False
    # Status page components affected (`[statuspage.components]` ids); each takes the
    # severity's impact.
    components: tuple[str, ...] = ()


@dataclass(frozen=True)
class UpdateRequest:
    # None keeps the status the incident has when the update is stored (decided under the
    # incident's lock, so a status change a moment earlier is never reverted).
    status: Status | None
    done_so_far: str = ""
    investigation: str = ""
    eta: str = ""
    # When the next update will come, in minutes from now; None: the severity's update
    # cadence (no promise for a severity without one).
    next_update_minutes: int | None = None
    # The status page components affected, as picked in the form; None leaves them as they
    # are. A component kept keeps its impact; one added takes the severity's.
    components: tuple[str, ...] | None = None
    # The status the form showed when it was opened (None: not from a form). A move picked in
    # a form is refused when the incident's status changed since: the person chose it
    # against a status that is no longer true.
    shown: Status | None = None


def stale_form(incident_id: int, shown: Status, now: Status) -> InvalidInput:
    """The refusal of a status move picked in a form opened before the status changed."""
    return InvalidInput(
        f"Incident #{incident_id} is now {now.label} (it was {shown.label} when this form "
        "opened), so nothing was posted. Check the status and submit again.",
        "status",
    )


@dataclass(frozen=True)
class ResolveRequest:
    root_cause: str = ""
    impact_summary: str = ""
    users_affected: str = ""
    next_steps: str = ""
    # Custom field values set in the resolution form, by field name.
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Change:
    """What a use case did: the incident after it, and whether anything changed."""

    incident: IncidentSnapshot
    changed: bool = True


# Characters that change how text around them reads without showing themselves: the bidi
# embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), and the zero-width space,
# non-joiner, joiner and direction marks (U+200B-U+200F), the word joiner (U+2060) and the
# byte-order mark (U+FEFF). A title can otherwise show in Slack reversed, or look like another.
INVISIBLE = frozenset(
    [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + [chr(c) for c in range(0x200B, 0x2010)]
    + ["\u2060", "\ufeff"]
)


def clean(text: str | None, limit: int = MAX_FIELD, field: str | None = None) -> str:
    """Strip control characters (keeping newlines and tabs) and invisible bidi and zero-width
    characters, and refuse over-long text."""
    value = "".join(
        ch
        for ch in (text or "")
        if (ch in "\n\t" or (ord(ch) >= 32 and ord(ch) != 127)) and ch not in INVISIBLE
    ).strip()
    if len(value) > limit:
        raise InvalidInput(
            f"{(field or 'Text').replace('_', ' ').capitalize()} is {len(value):,} characters; "
            f"at most {limit:,} fit.",
            field,
        )
    return value


def validate_declare(
    req: DeclareRequest, now: datetime, policy: Policy | None = None
) -> DeclareRequest:
    """The request cleaned and checked. With the policy: its type (the default when none is
    given), the type's default severity and privacy, and its field values checked."""
    title = clean(req.title, MAX_TITLE, "title")
    if not title:
        raise InvalidInput("Give the incident a title (what is broken, in a few words).", "title")
    typed: dict[str, Any] = {}
    if policy is not None:
        kind = custom_fields.pick_type(policy, req.type)
        spec = policy.incident_type(kind)
        values = custom_fields.check_values(
            policy, kind, req.fields, only_applying=req.only_applying
        )
        if req.require_fields:
            custom_fields.require_for_declare(policy, kind, values)
        severity = req.severity or (spec.default_severity if spec else None) or 0
        typed = {
            "type": kind,
            "fields": values,
            "severity": severity,
            "is_private": req.is_private or bool(spec and spec.private),
        }
    if typed.get("severity", req.severity) == 0 and policy is not None and policy.types:
        raise InvalidInput("Pick a severity: this type has no default one.", "severity")
    if typed.get("severity", req.severity) not in (1, 2, 3, 4):
        raise InvalidInput("Severity must be 1, 2, 3 or 4.", "severity")
    if req.detected_at and req.detected_at > now:
        raise InvalidInput("Detected-at time is in the future.", "detected_at")
    return DeclareRequest(
        **{
            **req.__dict__,
            "title": title,
            "description": clean(req.description, MAX_FIELD, "description"),
            "service": clean(req.service, MAX_TITLE, "service"),
            **typed,
        }
    )


Announce = Callable[[IncidentSnapshot], Sequence[Outgoing]]


def _intend(incident: Incident, plan: str, now: datetime) -> None:
    """Record, in the change's transaction, the escalation planning the change owes
    (`Escalations.run_pending` does it and clears it; the repair sweep does it after a crash)."""
    incident.plans_pending = [*incident.plans_pending, plan]
    incident.plans_pending_since = incident.plans_pending_since or now


class Incidents:
    def __init__(
        self,
        services: Services,
        announcements: Announcements,
        public: StatusUpdates | None = None,
    ) -> None:
        self.services = services
        self.announcements = announcements
        # Public updates: a change that owes the status page a draft writes it in its own
        # transaction (docs/status-page.md).
        self.public = public or StatusUpdates(services)
        self._locks: dict[int, asyncio.Lock] = {}
        self._declarers: dict[str, asyncio.Lock] = {}

    async def _announce(
        self,
        session: AsyncSession,
        incident: Incident,
        now: datetime,
        build: Announce,
        visible: bool = True,
        roles: dict[Role, str] | None = None,
    ) -> IncidentSnapshot:
        """Queue the change's messages in the change's own transaction. A `visible` change
        (one the topic, pinned summary or headline show) also marks those for a refresh.
        `roles`: the role holders, when the change read them already and changed none."""
        assert incident.id is not None
        if visible:
            incident.version += 1
        session.add(incident)
        await session.flush()
        if roles is None:
            roles = await repo.current_roles(session, incident.id)
        snap = repo.snapshot(incident, roles)
        enqueue(session, incident.id, now, build(snap))
        return snap

    # --- reading --------------------------------------------------------------------------

    async def snapshot(self, incident_id: int) -> IncidentSnapshot:
        async with self.services.db.session() as session:
            return await incident_snapshot(session, incident_id)

    async def snapshot_in_channel(self, channel_id: str) -> IncidentSnapshot | None:
        """The incident whose war room `channel_id` is, in one round trip to the database."""
        async with self.services.db.session() as session:
            incident = await repo.by_channel(session, channel_id)
            if incident is None or incident.id is None:
                return None
            return repo.snapshot(incident, await repo.current_roles(session, incident.id))

    async def in_channel(self, channel_id: str) -> int | None:
        async with self.services.db.session() as session:
            incident = await repo.by_channel(session, channel_id)
        return incident.id if incident else None

    async def open_incidents(self) -> list[IncidentSnapshot]:
        async with self.services.db.session() as session:
            rows = await repo.open_incidents(session)
            roles = await repo.roles_for(session, [r.id for r in rows if r.id is not None])
        return [repo.snapshot(r, roles[r.id]) for r in rows if r.id is not None]

    async def not_closed(self) -> list[IncidentSnapshot]:
        """Open and resolved incidents: where people still hold roles that matter."""
        async with self.services.db.session() as session:
            result = await session.exec(
                select(Incident)
                .where(col(Incident.status) != Status.CLOSED.value)
                .order_by(col(Incident.severity), col(Incident.id))
            )
            rows = list(result.all())
            roles = await repo.roles_for(session, [r.id for r in rows if r.id is not None])
        return [repo.snapshot(r, roles[r.id]) for r in rows if r.id is not None]

    # --- declaring ------------------------------------------------------------------------

    async def declare(self, req: DeclareRequest) -> Change:
        """Store a new incident. A repeated request key returns the first one, unchanged."""
        now = self.services.clock.now()
        req = validate_declare(req, now, self.services.policy)
        commander = req.commander or req.declared_by
        # One person's declares queue up (the advisory lock does it across replicas), so the
        # limit below counts every declare stored before this one.
        declarer = self._declarers.setdefault(req.declared_by, asyncio.Lock())
        try:
            async with declarer, self.services.db.session() as session:
                await repo.lock_declarer(session, req.declared_by)
                if req.request_key:
                    existing = await repo.by_request_key(session, req.request_key)
                    if existing is not None and existing.id is not None:
                        roles = await repo.current_roles(session, existing.id)
                        return Change(repo.snapshot(existing, roles), changed=False)
                if req.limited:
                    await self._within_limit(session, req.declared_by, now)
                incident = Incident(
                    title=req.title,
                    severity=req.severity,
                    status=Status.INVESTIGATING.value,
                    description=req.description,
                    service=req.service,
                    is_private=req.is_private,
                    is_drill=req.is_drill,
                    type=req.type,
                    fields=req.fields,
                    components=self.public.pick_components(req.components, {}, req.severity),
                    declared_by=req.declared_by,
                    request_key=req.request_key,
                    source_channel_id=req.source_channel_id,
                    source_ts=req.source_ts,
                    source_permalink=req.source_permalink,
                    reply_url=req.reply_url,
                    detected_at=req.detected_at or now,
                    declared_at=now,
                    # The first update is due one cadence after the declaration.
                    next_update_at=promise_after(self.services.policy, req.severity, now),
                )
                session.add(incident)
                await session.flush()
                assert incident.id is not None
                session.add(
                    RoleAssignment(
                        incident_id=incident.id,
                        role=Role.COMMANDER.value,
                        user_id=commander,
                        assigned_by=req.declared_by,
                        assigned_at=now,
                    )
                )
                session.add(
                    repo.event(
                        incident.id,
                        now,
                        "declared",
                        f"Declared Sev{req.severity}{' drill' if req.is_drill else ''}: "
                        f"{req.title}",
                        req.declared_by,
                        severity=req.severity,
                        commander=commander,
                        drill=req.is_drill,
                        **({"type": req.type} if req.type else {}),
                    )
                )
                _intend(incident, "declared", now)
                await self.public.draft_in(
                    session,
                    incident,
                    {Role.COMMANDER: commander},
                    "declared",
                    now,
                    f"declared:{incident.id}",
                )
                # The commander's brief links the war room: it is queued when the channel is
                # recorded (Rooms._create_channel), not before.
                incident_id = incident.id
                await session.flush()
                snap = repo.snapshot(incident, {Role.COMMANDER: commander})
        except IntegrityError:
            if not req.request_key:
                raise
            async with self.services.db.session() as session:
                existing = await repo.by_request_key(session, req.request_key)
            if existing is None or existing.id is None:
                raise
            return Change(await self.snapshot(existing.id), changed=False)
        if not req.is_drill:  # practice counts in no metric
            self.services.metrics.declared.labels(severity=str(req.severity)).inc()
        # Lifecycle lines carry ids, severity and the action, never a title (a private
        # incident's title is not for the log).
        log.info(
            "incident %d declared: Sev%d%s by %s",
            incident_id,
            req.severity,
            " drill" if req.is_drill else "",
            req.declared_by,
            extra=_fields(incident_id, "declared", req.severity, req.declared_by)
            | {"private": req.is_private, "drill": req.is_drill},
        )
        return Change(snap)

    async def _within_limit(self, session: AsyncSession, user: str, now: datetime) -> None:
        """Refuse a declare beyond `[limits]`: one person's flood would bury the real incidents
        under channels, announcements and pages, and spend Slack's rate limits on them."""
        limits = self.services.policy.limits
        declared = await repo.declared_since(session, user, now - limits.declare_window)
        wait = limits.declare_wait(declared, now)
        if wait is None:
            return
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        log.warning("declare by %s refused: %d in %s", user, len(declared), limits.declare_window)
        raise ServiceError(
            f"You declared {len(declared)} incidents in the last "
            f"{limits.declare_window_minutes} minutes; ask someone else to declare this one, "
            f"or wait {minutes} minute{'' if minutes == 1 else 's'}."
        )

    # --- lifecycle ------------------------------------------------------------------------

    async def acknowledge(self, incident_id: int, user: str) -> Change:
        now = self.services.clock.now()
        async with self._change(incident_id) as (session, incident):
            await self._allow(session, incident, "ack", user)
            if not Status(incident.status).is_open:
                raise ServiceError(f"Incident #{incident_id} is {incident.status}; nothing to ack.")
            if incident.acknowledged_at is not None:
                raise ServiceError(
                    Mrkdwn(
                        f"Incident #{incident_id} was already acknowledged by "
                        f"{mrkdwn.user(incident.acknowledged_by)}."
                    )
                )
            incident.acknowledged_at = now
            incident.acknowledged_by = user
            session.add(repo.event(incident_id, now, "acknowledged", "Acknowledged", user))
            _intend(incident, "acknowledged", now)
            await self._announce(
                session, incident, now, lambda snap: self.announcements.acknowledged(snap, user)
            )
        log.info(
            "incident %d acknowledged by %s",
            incident_id,
            user,
            extra=_fields(incident_id, "acknowledged", incident.severity, user),
        )
        return Change(await self.snapshot(incident_id))

    async def acknowledge_on_pager(self, incident_id: int, who: str, where: str) -> Change:
        """Someone acknowledged the incident's page on their pager (`where`: "PagerDuty"):
        the same as an acknowledgment in Slack (the ladder's acknowledgment step is
        cancelled), recorded with the name the provider gave. Unchanged when it is already
        acknowledged or no longer open."""
        now = self.services.clock.now()
        said = f"Acknowledged in {where} by {who}"
        async with self._change(incident_id) as (session, incident):
            if not Status(incident.status).is_open or incident.acknowledged_at is not None:
                session.add(repo.event(incident_id, now, "pager", said))
                roles = await repo.current_roles(session, incident_id)
                return Change(repo.snapshot(incident, roles), changed=False)
            incident.acknowledged_at = now
            # Not a Slack ID: shown as the (escaped) name wherever the acknowledger is.
            incident.acknowledged_by = f"{who} (in {where})"[:200]
            session.add(repo.event(incident_id, now, "acknowledged", said, where=where, who=who))
            _intend(incident, "acknowledged", now)
            await self._announce(
                session,
                incident,
                now,
                lambda snap: self.announcements.acknowledged_on_pager(snap, who, where),
            )
        log.info(
            "incident %d acknowledged in %s",
            incident_id,
            where,
            extra=_fields(incident_id, "acknowledged", incident.severity, None) | {"source": where},
        )
        return Change(await self.snapshot(incident_id))

    async def assign_role(
        self, incident_id: int, role: Role, user: str, by: str, handover: bool = False
    ) -> Change:
        """Give `role` to `user`; the previous holder's assignment ends. A `handover` is on the
        timeline as one ("Handover: Incident Commander from @a to @b"), and queues a handover
        brief for the new holder (instead of the role's brief) and a word to the previous one,
        all in the change's transaction. Giving a role to its holder changes nothing."""
        now = self.services.clock.now()
        async with self._change(incident_id) as (session, incident):
            self._require_not_closed(incident)
            roles = await self._allow(session, incident, "roles", by)
            if roles.get(role) == user:
                return Change(repo.snapshot(incident, roles), changed=False)
            previous = roles.get(role)
            await self._end_role(session, incident_id, role, now)
            session.add(
                RoleAssignment(
                    incident_id=incident_id,
                    role=role.value,
                    user_id=user,
                    assigned_by=by,
                    assigned_at=now,
                )
            )
            name = self.services.policy.role(role).name
            if not handover:
                said = f"{name}: <@{user}>"
            elif previous:
                said = f"{name} from {_mention(previous)} to <@{user}>"
            else:
                said = f"{name} to <@{user}> (nobody held it)"
            session.add(
                repo.event(
                    incident_id,
                    now,
                    "handover" if handover else "role_assigned",
                    said,
                    by,
                    role=role.value,
                    user=user,
                    previous=previous,
                )
            )
            if handover:
                briefing = await read_briefing(session, incident_id, now)
                await self._announce(
                    session,
                    incident,
                    now,
                    lambda snap: self.announcements.handed_over(
                        snap, role, user, previous, by, briefing
                    ),
                )
            else:
                await self._announce(
                    session,
                    incident,
                    now,
                    lambda snap: self.announcements.role_assigned(snap, role, user, by),
                )
        return Change(await self.snapshot(incident_id))

    async def post_update(
        self, incident_id: int, req: UpdateRequest, by: str, request_key: str | None = None
    ) -> tuple[Change, StatusUpdate]:
        """Store an update. A repeated request key (the same form or command sent again)
        returns the update it stored, unchanged (`changed` False)."""
        now = self.services.clock.now()
        fields = {
            "done_so_far": clean(req.done_so_far, MAX_FIELD, "done_so_far"),
            "investigation": clean(req.investigation, MAX_FIELD, "investigation"),
            "eta": clean(req.eta, 200, "eta"),
        }
        if not any(fields.values()):
            raise InvalidInput("Say something in the update: what was done, or where it stands.")
        if req.status is not None and req.status not in UPDATE_STATUSES:
            raise InvalidInput(status_choice(), "status")
        if req.next_update_minutes is not None and not (
            1 <= req.next_update_minutes <= MAX_PROMISE_MINUTES
        ):
            raise InvalidInput(
                f"Promise the next update within 1 to {MAX_PROMISE_MINUTES} minutes.",
                "next_update",
            )
        try:
            async with self._change(incident_id) as (session, incident):
                roles = await self._allow(session, incident, "update", by)
                if request_key and (
                    stored := await _update_by_key(session, incident_id, request_key)
                ):
                    return Change(repo.snapshot(incident, roles), changed=False), stored
                current = Status(incident.status)
                if not current.is_open:
                    raise ServiceError(
                        f"Incident #{incident_id} is {current.value}; updates are for open ones."
                    )
                if req.status is not None and req.shown is not None:
                    # Refused only when the incident moved elsewhere since the form opened:
                    # a status already at the one picked (someone else made the same move, or
                    # this form's own first submission did) is no conflict.
                    if current not in (req.shown, req.status):
                        raise stale_form(incident_id, req.shown, current)
                target = current if req.status is None else req.status
                self._transition(current, target)
                if target != current and target in MOVES:
                    # The same right as the move's own command (`/incident mitigate`).
                    snap = repo.snapshot(incident, roles)
                    await self.services.access.check(MOVES[target], by, snap)
                update = StatusUpdate(
                    incident_id=incident_id,
                    status=target.value,
                    posted_by=by,
                    posted_at=now,
                    request_key=request_key,
                    done_so_far=fields["done_so_far"],
                    investigation=fields["investigation"],
                    eta=fields["eta"],
                )
                session.add(update)
                incident.last_update_at = now
                minutes = req.next_update_minutes or default_promise_minutes(
                    self.services.policy, incident.severity
                )
                promise = now + timedelta(minutes=minutes) if minutes else None
                promised = promise != incident.next_update_at
                incident.next_update_at = promise
                if target != current:
                    incident.status = target.value
                    session.add(self._status_event(incident_id, now, current, target, by))
                if target is Status.MITIGATED and incident.mitigated_at is None:
                    incident.mitigated_at = now
                if req.components is not None:
                    incident.components = self.public.pick_components(
                        req.components, incident.components or {}, incident.severity
                    )
                session.add(
                    repo.event(
                        incident_id,
                        now,
                        "update",
                        _update_summary(fields),
                        by,
                        status=target.value,
                    )
                )
                await session.flush()
                _intend(incident, "progress", now)
                _intend(incident, "promise", now)
                await self.public.draft_in(
                    session, incident, roles, "update", now, f"update:{update.id}"
                )
                snap = await self._announce(
                    session,
                    incident,
                    now,
                    lambda snap: self.announcements.update_posted(snap, update),
                    # The topic and the headline show the status and the promise.
                    visible=target != current or promised,
                    roles=roles,
                )
        except IntegrityError:
            # The same request twice at the same moment: the first one stands.
            if request_key and (replayed := await self._replayed_update(incident_id, request_key)):
                return replayed
            raise
        return Change(snap), update

    async def _replayed_update(
        self, incident_id: int, request_key: str
    ) -> tuple[Change, StatusUpdate] | None:
        async with self.services.db.session() as session:
            update = await _update_by_key(session, incident_id, request_key)
        if update is None:
            return None
        return Change(await self.snapshot(incident_id), changed=False), update

    async def change_severity(self, incident_id: int, severity: int, by: str) -> Change:
        if severity not in (1, 2, 3, 4):
            raise InvalidInput("Severity must be 1, 2, 3 or 4.")
        now = self.services.clock.now()
        async with self._change(incident_id) as (session, incident):
            if not Status(incident.status).is_open:
                raise ServiceError(
                    f"Incident #{incident_id} is {incident.status}; its severity is final."
                )
            roles = await self._allow(session, incident, "severity", by)
            if incident.severity == severity:
                return Change(repo.snapshot(incident, roles), changed=False)
            session.add(
                repo.event(
                    incident_id,
                    now,
                    "severity_changed",
                    f"Severity Sev{incident.severity} → Sev{severity}",
                    by,
                    old=incident.severity,
                    new=severity,
                )
            )
            old = incident.severity
            incident.severity = severity
            incident.next_update_at = self._promise_for_severity(incident, now)
            _intend(incident, "severity", now)
            await self._announce(
                session,
                incident,
                now,
                lambda snap: self.announcements.severity_changed(snap, old, by),
            )
        log.info(
            "incident %d severity changed: Sev%d -> Sev%d by %s",
            incident_id,
            old,
            severity,
            by,
            extra=_fields(incident_id, "severity_changed", severity, by) | {"old_severity": old},
        )
        return Change(await self.snapshot(incident_id))

    async def mitigate(self, incident_id: int, by: str) -> Change:
        now = self.services.clock.now()
        async with self._change(incident_id) as (session, incident):
            await self._allow(session, incident, "mitigate", by)
            self._move(session, incident, Status.MITIGATED, now, by)
            incident.mitigated_at = incident.mitigated_at or now
            _intend(incident, "progress", now)
            await self._announce(
                session, incident, now, lambda snap: self.announcements.mitigated(snap, by)
            )
        return Change(await self.snapshot(incident_id))

    async def resolve(self, incident_id: int, req: ResolveRequest, by: str) -> Change:
        now = self.services.clock.now()
        fields = {
            "root_cause": clean(req.root_cause, MAX_FIELD, "root_cause"),
            "impact_summary": clean(req.impact_summary, MAX_FIELD, "impact_summary"),
            "users_affected": clean(req.users_affected, 500, "users_affected"),
            "next_steps": clean(req.next_steps, MAX_FIELD, "next_steps"),
        }
        policy = self.services.policy
        async with self._change(incident_id) as (session, incident):
            await self._allow(session, incident, "resolve", by)
            given = custom_fields.check_values(policy, incident.type, req.fields)
            values = {**(incident.fields or {}), **given}
            # Whatever the surface: a field required at resolve holds the incident open.
            if Status(incident.status) is not Status.RESOLVED:
                custom_fields.require_for_resolve(policy, incident.type, values)
            self._move(session, incident, Status.RESOLVED, now, by)
            self._record_fields(session, incident, given, now, by)
            incident.resolved_at = now
            incident.resolved_by = by
            incident.next_update_at = None  # a resolved incident promises no more updates
            incident.mitigated_at = incident.mitigated_at or now
            for name, value in fields.items():
                setattr(incident, name, value)
            _intend(incident, "resolved", now)
            await self.public.draft_in(
                session,
                incident,
                await repo.current_roles(session, incident_id),
                "resolved",
                now,
                f"resolved:{incident_id}:{now.isoformat()}",
            )
            await self._announce(session, incident, now, self.announcements.resolved)
        if not incident.is_drill:  # practice counts in no metric
            self.services.metrics.resolved.labels(severity=str(incident.severity)).inc()
        log.info(
            "incident %d resolved: Sev%d by %s",
            incident_id,
            incident.severity,
            by,
            extra=_fields(incident_id, "resolved", incident.severity, by),
        )
        return Change(await self.snapshot(incident_id))

    async def set_field(self, incident_id: int, name: str, raw: Any, by: str) -> Change:
        """Set (or, with an empty value, clear) one custom field, on the timeline. The same
        right as posting an update."""
        policy = self.services.policy
        now = self.services.clock.now()
        async with self._change(incident_id) as (session, incident):
            roles = await self._allow(session, incident, "update", by)
            self._require_not_closed(incident)
            name = name.strip().lower()
            spec = policy.fields.get(name)
            if spec is None or name not in policy.fields_for(incident.type):
                raise InvalidInput(custom_fields.not_applying(policy, incident.type, name))
            try:
                value = parse_value(name, spec, raw)
            except BadValue as exc:
                raise InvalidInput(str(exc)) from None
            current = (incident.fields or {}).get(name)
            if value == current:
                return Change(repo.snapshot(incident, roles), changed=False)
            self._record_fields(session, incident, {name: value}, now, by)
            session.add(incident)
            await session.flush()
            snap = repo.snapshot(incident, roles)
        return Change(snap)

    def _record_fields(
        self,
        session: AsyncSession,
        incident: Incident,
        values: dict[str, Any],
        now: datetime,
        by: str,
    ) -> None:
        """Store changed field values (None clears one), each with a timeline entry."""
        assert incident.id is not None
        stored = dict(incident.fields or {})
        for name, value in values.items():
            if stored.get(name) == value:
                continue
            spec = self.services.policy.fields[name]
            if value is None:
                stored.pop(name, None)
                text = f"Field {label(name, spec)} cleared"
            else:
                stored[name] = value
                shown = f"<@{value}>" if spec.kind == "user" else display(spec, value)
                text = f"Field {label(name, spec)}: {shown}"
            session.add(
                repo.event(incident.id, now, "field_set", text, by, field=name, value=value)
            )
        # A new dict, so the JSON column sees the change.
        incident.fields = stored

    async def close(self, incident_id: int, by: str, force: bool = False) -> Change:
        """Close a resolved incident. The review comes first: without a generated postmortem
        closing is refused unless `force` says the team decided to skip it."""
        now = self.services.clock.now()
        async with self._change(incident_id) as (session, incident):
            await self._allow(session, incident, "close", by)
            current = Status(incident.status)
            if current is Status.CLOSED:
                raise ServiceError(f"Incident #{incident_id} is already closed.")
            if current is not Status.RESOLVED:
                raise ServiceError(
                    f"Incident #{incident_id} is {current.value}; resolve it before closing."
                )
            if incident.postmortem_at is None and not force:
                raise ServiceError(
                    f"Incident #{incident_id} has no postmortem yet. Generate it with "
                    "`/incident postmortem`, or close anyway with `/incident close --force`."
                )
            self._transition(current, Status.CLOSED)
            open_items = (
                await session.exec(
                    select(func.count())
                    .select_from(ActionItem)
                    .where(col(ActionItem.incident_id) == incident_id)
                    .where(col(ActionItem.done_at).is_(None))
                )
            ).one()
            incident.status = Status.CLOSED.value
            incident.closed_at = now
            skipped = incident.postmortem_at is None
            session.add(
                repo.event(
                    incident_id,
                    now,
                    "closed",
                    "Closed without a postmortem" if skipped else "Closed",
                    by,
                )
            )
            await self._announce(
                session,
                incident,
                now,
                lambda snap: self.announcements.closed(snap, by, int(open_items), skipped),
            )
        log.info(
            "incident %d closed: Sev%d by %s%s",
            incident_id,
            incident.severity,
            by,
            " (without a postmortem)" if skipped else "",
            extra=_fields(incident_id, "closed", incident.severity, by),
        )
        return Change(await self.snapshot(incident_id))

    # --- helpers --------------------------------------------------------------------------

    def _promise_for_severity(self, incident: Incident, now: datetime) -> datetime | None:
        """The promise after a severity change: a tighter cadence brings it forward to one
        cadence after the last update (or the declaration; a cadence that has passed already
        counts from now); a looser one keeps what was promised."""
        base = incident.last_update_at or incident.declared_at
        cadence = promise_after(self.services.policy, incident.severity, base)
        if cadence is not None and cadence < now:
            cadence = promise_after(self.services.policy, incident.severity, now)
        current = incident.next_update_at
        if current is None or cadence is None:
            return current or cadence
        return min(current, cadence)

    async def _allow(
        self, session: AsyncSession, incident: Incident, action: str, by: str
    ) -> dict[Role, str]:
        """Refuse unless `by` sees the incident and may take `action`; returns the current
        role holders."""
        assert incident.id is not None
        roles = await repo.current_roles(session, incident.id)
        await self.services.access.check(action, by, repo.snapshot(incident, roles))
        return roles

    @asynccontextmanager
    async def _change(self, incident_id: int) -> AsyncIterator[tuple[AsyncSession, Incident]]:
        """One transaction over one locked incident. Changes to an incident queue up: the row
        lock does it on Postgres, the per-incident lock within a replica (SQLite)."""
        lock = self._locks.setdefault(incident_id, asyncio.Lock())
        async with lock, self.services.db.session() as session:
            incident = await repo.get_for_update(session, incident_id)
            if incident is None:
                raise no_incident(incident_id)
            yield session, incident

    @staticmethod
    def _require_not_closed(incident: Incident) -> None:
        if incident.status == Status.CLOSED.value:
            raise ServiceError(f"Incident #{incident.id} is closed; nothing about it can change.")

    def _move(
        self, session: AsyncSession, incident: Incident, target: Status, now: datetime, by: str
    ) -> None:
        """Change the status (refusing a repeat or a move the lifecycle forbids), on the
        timeline."""
        assert incident.id is not None
        current = Status(incident.status)
        if current is target:
            raise ServiceError(f"Incident #{incident.id} is already {target.value}.")
        self._transition(current, target)
        incident.status = target.value
        session.add(self._status_event(incident.id, now, current, target, by))

    @staticmethod
    def _transition(current: Status, target: Status) -> None:
        try:
            check_transition(current, target)
        except TransitionError as exc:
            raise ServiceError(str(exc)) from None

    @staticmethod
    def _status_event(
        incident_id: int, now: datetime, old: Status, new: Status, by: str
    ) -> TimelineEvent:
        return repo.event(
            incident_id,
            now,
            "status_changed",
            f"{old.label} → {new.label}",
            by,
            old=old.value,
            new=new.value,
        )

    @staticmethod
    async def _end_role(session: AsyncSession, incident_id: int, role: Role, now: datetime) -> None:
        await session.exec(
            update(RoleAssignment)
            .where(col(RoleAssignment.incident_id) == incident_id)
            .where(col(RoleAssignment.role) == role.value)
            .where(col(RoleAssignment.ended_at).is_(None))
            .values(ended_at=now)
        )


def _mention(holder: str) -> str:
    """A role holder on the timeline: a mention, or the name of what is not a person (an alert
    source that declared the incident)."""
    return f"<@{holder}>" if mrkdwn.is_user_id(holder) else holder


def status_choice() -> str:
    """What to say when an update names a status the update form does not offer."""
    offered = ", ".join(s.label for s in UPDATE_STATUSES[:-1]) + f" or {UPDATE_STATUSES[-1].label}"
    return (
        f"Pick {offered}. Resolving takes the resolution form (`/incident resolve`), "
        "closing `/incident close`."
    )


def _update_summary(fields: dict[str, str]) -> str:
    parts = [fields["investigation"], fields["done_so_far"], fields["eta"]]
    return next((p for p in parts if p), "")[:300]


def _fields(incident_id: int, action: str, severity: int, user: str | None) -> dict[str, object]:
    """A lifecycle log line's structured fields (`LOG_FORMAT=json`)."""
    fields: dict[str, object] = {
        "event": "incident." + action,
        "incident_id": incident_id,
        "action": action,
        "severity": severity,
    }
    if user:
        fields["user_id"] = user
    return fields


async def _update_by_key(
    session: AsyncSession, incident_id: int, request_key: str
) -> StatusUpdate | None:
    """The update a request stored already (a replay of the same form or command)."""
    result = await session.exec(
        select(StatusUpdate)
        .where(StatusUpdate.incident_id == incident_id)
        .where(StatusUpdate.request_key == request_key)
    )
    return result.first()
