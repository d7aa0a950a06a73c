"""Public updates: drafts for the Comms lead, their approval, and what public surfaces show.

After each internal update (and at declaration and resolution) of an incident that may go
public, a draft is written from the public template (`public_update.md.j2`) in the same
transaction as the change, and offered by DM to the Comms lead (else the commander) with
**Publish**, **Edit and publish** and **Skip**. Nothing is public until a person publishes it
(or the policy auto-publishes a severity). Private incidents and drills never draft and never
publish. Public surfaces (`public_page`, a hosted status page) read published rows only.

A published update bound for a hosted status page (Atlassian Statuspage) is delivered like the
outbox: claimed with a lease, in order per incident, retried with backoff; a create whose answer
was lost is looked up by its marker before it is sent again, so the incident is created there
once. An update is sent at least once: a crash between the provider's answer and the bookkeeping
sends it again.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.domain.statuspage import (
    BODY_MAX,
    TITLE_MAX,
    Impact,
    PublicIncident,
    PublicPage,
    PublicStatus,
    PublishedUpdate,
    StatusPagePolicy,
    build_page,
    public_status,
    worst,
)
from app.messages import blocks
from app.messages.blocks import Message
from app.messages.mrkdwn import escape, is_user_id
from app.services.context import Services
from app.services.errors import InvalidInput, ServiceError, no_incident
from app.services.outbox import Outgoing, enqueue
from app.services.ports import StatusCall, StatusPageError, StatusPageErrorKind, StatusPagePort
from app.store import repo
from app.store.models import Incident, PublicUpdate

log = logging.getLogger(__name__)

PUBLISH_BUTTON = "public_publish"
EDIT_BUTTON = "public_edit"
SKIP_BUTTON = "public_skip"

# Drafts are offered for these severities even when no component is named (an incident of
# lower severity drafts once it names a component or has been published).
DRAFT_SEVERITIES = (1, 2)
GENERIC_TITLE = "Service disruption"
REMOTE_LEASE = timedelta(seconds=60)
REMOTE_BACKOFF_MAX = timedelta(minutes=2)
REMOTE_BATCH = 20


@dataclass(frozen=True)
class Decision:
    update: PublicUpdate
    # False: someone decided before (see update.state / decided_by); nothing changed.
    now: bool


class StatusUpdates:
    def __init__(self, services: Services, provider: StatusPagePort | None = None) -> None:
        self.services = services
        self.provider = provider

    @property
    def policy(self) -> StatusPagePolicy:
        return self.services.policy.statuspage

    # --- who may go public ----------------------------------------------------------------

    def may_go_public(self, incident: Incident | IncidentSnapshot) -> bool:
        """Private incidents and drills never reach a public surface, whatever anyone asks."""
        return self.policy.enabled and not incident.is_private and not incident.is_drill

    async def _publishable(self, session: AsyncSession, incident_id: int, by: str) -> Incident:
        """The incident, locked, once it may go public and `by` may publish for it (every
        decision and `/incident publish` passes here)."""
        incident = await repo.get_for_update(session, incident_id)
        if incident is None:
            raise no_incident(incident_id)
        self._refuse_private(incident)
        roles = await repo.current_roles(session, incident_id)
        await self.services.access.check("publish", by, repo.snapshot(incident, roles))
        return incident

    def published_text(self) -> str:
        """What the person who published is told."""
        url = self.policy.url
        return f":globe_with_meridians: Published to the status page{f' ({url})' if url else ''}."

    def _refuse_private(self, incident: Incident) -> None:
        if not self.policy.enabled:
            raise ServiceError(
                "No status page is configured ([statuspage] in warroom.toml, see "
                "docs/status-page.md)."
            )
        if incident.is_private:
            raise ServiceError(
                f"Incident #{incident.id} is private: private incidents are never published."
            )
        if incident.is_drill:
            raise ServiceError(f"Incident #{incident.id} is a drill: drills are never published.")

    # --- drafts, written in the change's own transaction -----------------------------------

    async def draft_in(
        self,
        session: AsyncSession,
        incident: Incident,
        roles: dict[Role, str],
        reason: str,
        now: datetime,
        source_key: str,
    ) -> PublicUpdate | None:
        """Write the draft a change owes (if the incident may go public and wants one) and
        queue its DM; auto-published severities are published at once."""
        if not self.may_go_public(incident):
            return None
        assert incident.id is not None
        # Whatever follows, a draft still waiting is out of date now.
        await self._supersede(session, incident.id, now)
        previous = await self._latest_published(session, incident.id)
        if (
            previous is None
            and not incident.components
            and incident.severity not in DRAFT_SEVERITIES
        ):
            return None
        if previous is None and reason == "resolved":
            return None  # never public: nothing to resolve in public
        shown = await self._ever_shown(session, incident.id)
        row = self._compose(incident, reason, now, previous, source_key, shown)
        row.offered_to = _person(
            roles.get(Role.COMMS), roles.get(Role.COMMANDER), incident.declared_by
        )
        session.add(row)
        await session.flush()
        if incident.severity in self.policy.auto_publish:
            self._mark_published(row, "auto", now)
            text = (
                f":globe_with_meridians: Published to the status page automatically "
                f"(Sev{incident.severity} updates are auto-published):"
            )
            enqueue(session, incident.id, now, [self._offer(row, text, buttons=False)])
        else:
            enqueue(session, incident.id, now, [self._offer(row, None, buttons=True)])
        return row

    async def _ever_shown(self, session: AsyncSession, incident_id: int) -> set[str]:
        """The components the incident's published updates named."""
        result = await session.exec(
            select(PublicUpdate.components)
            .where(col(PublicUpdate.incident_id) == incident_id)
            .where(col(PublicUpdate.state) == "published")
        )
        return {cid for components in result.all() for cid in components}

    def _compose(
        self,
        incident: Incident,
        reason: str,
        now: datetime,
        previous: PublicUpdate | None,
        source_key: str,
        shown: set[str],
    ) -> PublicUpdate:
        """The draft of where the incident stands. A component the public was told of that
        the incident no longer names is said to be operational again (on a hosted page too,
        which otherwise keeps it in outage)."""
        assert incident.id is not None
        status = public_status(incident.status)
        components = dict(incident.components or {})
        if status is PublicStatus.RESOLVED:
            components = {}
        components.update(
            {cid: Impact.OPERATIONAL.value for cid in sorted(shown) if cid not in components}
        )
        # A title a person wrote (or the one first published) stays; the generic one gives way
        # once components are named.
        title = self.default_title(incident)
        if previous is not None and previous.title != GENERIC_TITLE:
            title = previous.title
        body = self.render_body(incident, reason, status)
        return PublicUpdate(
            incident_id=incident.id,
            state="draft",
            reason=reason,
            status=status.value,
            title=title,
            body=body,
            components=components,
            source_key=source_key,
            created_at=now,
        )

    def default_title(self, incident: Incident) -> str:
        """No internal words: the impact and the public names of what is affected."""
        impacts = [Impact(v) for v in (incident.components or {}).values()]
        names = self.component_names(incident.components or {})
        if not names:
            return GENERIC_TITLE
        return f"{worst(impacts).label} of {_and(names)}"[:TITLE_MAX]

    def component_names(self, components: dict[str, str]) -> list[str]:
        known = self.policy.components
        return [known[cid].name for cid in components if cid in known]

    def render_body(self, incident: Incident, reason: str, status: PublicStatus) -> str:
        comps = incident.components or {}
        minutes = None
        if incident.next_update_at is not None and status is not PublicStatus.RESOLVED:
            minutes = max(
                1, int((incident.next_update_at - self.services.clock.now()).total_seconds() // 60)
            )
        text = self.services.renderer.public(
            "public_update.md.j2",
            reason=reason,
            status=status.value,
            components=[
                {"name": self.policy.components[cid].name, "impact": Impact(v).label.lower()}
                for cid, v in comps.items()
                if cid in self.policy.components
            ],
            impact=worst(Impact(v) for v in comps.values()).label.lower(),
            next_update_minutes=minutes,
            page_title=self.policy.title,
        )
        return text[:BODY_MAX]

    async def _supersede(self, session: AsyncSession, incident_id: int, now: datetime) -> None:
        await session.exec(
            update(PublicUpdate)
            .where(col(PublicUpdate.incident_id) == incident_id)
            .where(col(PublicUpdate.state) == "draft")
            .values(state="superseded", decided_at=now)
        )

    def _mark_published(self, row: PublicUpdate, by: str, now: datetime) -> None:
        row.state = "published"
        row.decided_by = by
        row.decided_at = now
        row.published_at = now
        if self.policy.publishes_to_atlassian:
            row.remote_state = "pending"
            row.remote_due_at = now

    # --- the DM ---------------------------------------------------------------------------

    def _offer(self, row: PublicUpdate, intro: str | None, buttons: bool) -> Outgoing:
        """By DM to the person offered the draft; in the war room when no person holds the
        roles (an incident an alert declared names its source, not a person)."""
        message = self.draft_message(row, intro, buttons)
        if row.offered_to is None:
            return Outgoing("channel", message)
        return Outgoing(f"user:{row.offered_to}", message)

    def draft_message(
        self, row: PublicUpdate, intro: str | None = None, buttons: bool = True
    ) -> Message:
        """The draft as the Comms lead reads it: exactly the public text, and the buttons."""
        comps = ", ".join(
            f"{escape(self.policy.components[cid].name)} ({Impact(v).label.lower()})"
            for cid, v in row.components.items()
            if cid in self.policy.components
        )
        head = intro or (
            f":memo: *Public update drafted for incident #{row.incident_id}* "
            f"(after {_REASONS.get(row.reason, row.reason)}). Nothing is public until you "
            "publish it; check it names nothing internal."
        )
        summary = (
            f"*{escape(row.title)}*\n*Status:* {PublicStatus(row.status).label}"
            f"\n*Components:* {comps or 'none named'}"
        )
        quoted = "\n".join(f">{escape(line)}" if line else ">" for line in row.body.splitlines())
        body: list[dict[str, object]] = [
            *blocks.sections(head),
            *blocks.sections(summary),
            *blocks.sections(quoted or ">"),
        ]
        if buttons:
            value = f"{row.incident_id}:{row.id}"
            body.append(
                {
                    "type": "actions",
                    "block_id": "public_update_actions",
                    "elements": [
                        blocks.button("Publish", PUBLISH_BUTTON, value, "primary"),
                        blocks.button("Edit and publish", EDIT_BUTTON, value),
                        blocks.button("Skip", SKIP_BUTTON, value),
                    ],
                }
            )
        return blocks.message(f"{head}\n{row.title}\n{row.body}", body)

    def decided_message(self, row: PublicUpdate) -> Message:
        """The DM once someone decided: the buttons go, the decision stays."""
        who = "automatically" if row.decided_by == "auto" else f"by <@{row.decided_by}>"
        intro = {
            "published": f":globe_with_meridians: *Published* {who}:",
            "skipped": f":fast_forward: *Skipped* {who}; not published:",
            "superseded": ":hourglass: A newer draft replaced this one; not published:",
        }.get(row.state, "")
        return self.draft_message(row, intro, buttons=False)

    # --- decisions ------------------------------------------------------------------------

    async def get(self, update_id: int) -> PublicUpdate | None:
        async with self.services.db.session() as session:
            return await session.get(PublicUpdate, update_id)

    async def publish(
        self,
        incident_id: int,
        update_id: int,
        by: str,
        title: str | None = None,
        body: str | None = None,
        status: str | None = None,
    ) -> Decision:
        """Publish a draft (as drafted, or as edited in the form)."""
        return await self._decide(incident_id, update_id, by, "published", title, body, status)

    async def skip(self, incident_id: int, update_id: int, by: str) -> Decision:
        return await self._decide(incident_id, update_id, by, "skipped")

    async def _decide(
        self,
        incident_id: int,
        update_id: int,
        by: str,
        state: str,
        title: str | None = None,
        body: str | None = None,
        status: str | None = None,
    ) -> Decision:
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            incident = await self._publishable(session, incident_id, by)
            row = await session.get(PublicUpdate, update_id)
            if row is None or row.incident_id != incident_id:
                raise ServiceError("That draft is not known.")
            if row.state != "draft":
                session.expunge(row)
                return Decision(row, now=False)
            current = public_status(incident.status)
            if current is PublicStatus.RESOLVED and row.status != current.value:
                # Written before the resolution: publishing it would show a resolved incident
                # as ongoing.
                row.state, row.decided_at = "superseded", now
                session.add(row)
                await session.flush()
                session.expunge(row)
                return Decision(row, now=False)
            values: dict[str, object] = {"decided_by": by, "decided_at": now, "state": state}
            if state == "published":
                row.title, row.body = _checked(title or row.title, body or row.body)
                if status:
                    try:
                        row.status = PublicStatus(status).value
                    except ValueError:
                        raise InvalidInput(
                            "Pick a status: investigating, identified, monitoring or resolved.",
                            "status",
                        ) from None
                row.components = self._components_for(row.status, incident, row.components)
                self._mark_published(row, by, now)
                values.update(
                    title=row.title,
                    body=row.body,
                    status=row.status,
                    components=row.components,
                    published_at=row.published_at,
                    remote_state=row.remote_state,
                    remote_due_at=row.remote_due_at,
                )
                what = f"Public update published: {row.title}"
            else:
                what = "Public update draft skipped"
            session.expunge(row)
            # Decided once: of two people deciding at the same moment, one wins; the other is
            # told who did.
            taken = await session.exec(
                update(PublicUpdate)
                .where(col(PublicUpdate.id) == update_id)
                .where(col(PublicUpdate.state) == "draft")
                .values(**values)
            )
            if taken.rowcount != 1:
                found = await session.get(PublicUpdate, update_id)
                assert found is not None
                session.expunge(found)
                return Decision(found, now=False)
            row.state, row.decided_by, row.decided_at = state, by, now
            session.add(repo.event(incident_id, now, "public_update", what, by))
        log.info("incident %d public update %d %s", incident_id, update_id, state)
        return Decision(row, now=True)

    def _components_for(
        self, status: str, incident: Incident, drafted: dict[str, str]
    ) -> dict[str, str]:
        """The components an update tells of once its status is final: all operational when
        it says resolved; the incident's own when an edit took a resolution back to ongoing."""
        if status == PublicStatus.RESOLVED.value:
            return {cid: Impact.OPERATIONAL.value for cid in drafted}
        if all(v == Impact.OPERATIONAL.value for v in drafted.values()):
            return {**drafted, **(incident.components or {})}
        return drafted

    async def publish_text(self, incident_id: int, text: str, by: str, key: str | None) -> Decision:
        """`/incident publish <text>`: the person typing it approves it; published at once,
        with the incident's current public status and components."""
        return await self._by_hand(incident_id, by, key, text)

    async def draft_now(self, incident_id: int, by: str, key: str | None) -> Decision:
        """`/incident publish`: a fresh draft of where the incident stands, offered to `by`."""
        return await self._by_hand(incident_id, by, key, None)

    async def _by_hand(
        self, incident_id: int, by: str, key: str | None, text: str | None
    ) -> Decision:
        now = self.services.clock.now()
        source = f"manual:{key}" if key else None
        try:
            async with self.services.db.session() as session:
                if source and (found := await _by_source(session, source)):
                    session.expunge(found)
                    return Decision(found, now=False)
                incident = await self._publishable(session, incident_id, by)
                previous = await self._latest_published(session, incident_id)
                if previous is None and public_status(incident.status) is PublicStatus.RESOLVED:
                    raise ServiceError(
                        f"Incident #{incident_id} is resolved and was never published; there "
                        "is nothing to tell the public."
                    )
                shown = await self._ever_shown(session, incident_id)
                row = self._compose(incident, "manual", now, previous, source or "", shown)
                row.source_key = source
                row.offered_to = by
                await self._supersede(session, incident_id, now)
                if text is not None:
                    row.title, row.body = _checked(row.title, text)
                    self._mark_published(row, by, now)
                    session.add(
                        repo.event(
                            incident_id,
                            now,
                            "public_update",
                            f"Public update published: {row.title}",
                            by,
                        )
                    )
                session.add(row)
                await session.flush()
                if text is None:
                    enqueue(session, incident_id, now, [self._offer(row, None, buttons=True)])
                session.expunge(row)
        except IntegrityError:
            if source is None:
                raise
            async with self.services.db.session() as session:
                found = await _by_source(session, source)
                if found is None:
                    raise
                session.expunge(found)
            return Decision(found, now=False)
        return Decision(row, now=True)

    # --- components -----------------------------------------------------------------------

    async def set_components(self, incident_id: int, words: list[str], by: str) -> dict[str, str]:
        """`/incident components api checkout:major` (or `none`): what the incident affects,
        each with its impact (the severity's default when not given). The same right as an
        update. Returns the incident's components."""
        if not self.policy.components:
            raise ServiceError(
                "No status page components are configured ([statuspage.components] in "
                "warroom.toml)."
            )
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            incident = await repo.get_for_update(session, incident_id)
            if incident is None:
                raise no_incident(incident_id)
            roles = await repo.current_roles(session, incident_id)
            await self.services.access.check("update", by, repo.snapshot(incident, roles))
            if incident.status == "closed":
                raise ServiceError(f"Incident #{incident_id} is closed; nothing can change.")
            if [w.lower() for w in words] in (["none"], ["clear"]):
                chosen: dict[str, str] = {}
            else:
                read, unknown = self.policy.read_components(words, incident.severity)
                if unknown or not read:
                    raise InvalidInput(self.components_help(unknown))
                chosen = {cid: impact.value for cid, impact in read.items()}
            incident.components = chosen
            session.add(incident)
            said = ", ".join(
                f"{self.policy.components[c].name} ({Impact(v).label.lower()})"
                for c, v in chosen.items()
            )
            session.add(
                repo.event(incident_id, now, "components", f"Components: {said or 'none'}", by)
            )
        return chosen

    def pick_components(
        self, picked: tuple[str, ...], current: dict[str, str], severity: int
    ) -> dict[str, str]:
        """Components picked in a form: known ones only; a component already set keeps its
        impact, a new one takes the severity's."""
        default = self.policy.default_impact(severity).value
        return {cid: current.get(cid, default) for cid in picked if cid in self.policy.components}

    async def components_of(self, incident_id: int) -> dict[str, str]:
        """The incident's components -> their impact, in words."""
        async with self.services.db.session() as session:
            incident = await session.get(Incident, incident_id)
        if incident is None:
            raise no_incident(incident_id)
        return {c: Impact(v).label.lower() for c, v in (incident.components or {}).items()}

    def components_help(self, unknown: list[str] | None = None) -> str:
        known = ", ".join(f"`{cid}`" for cid in self.policy.components) or "none"
        lead = (
            f"Not a component or impact: {', '.join(f'`{escape(w)}`' for w in unknown)}. "
            if unknown
            else ""
        )
        return (
            f"{lead}Name components, each optionally with an impact: "
            "`/incident components api checkout:major` (impacts: degraded, partial, major; "
            f"`none` clears). Components: {known}."
        )

    # --- public reading -------------------------------------------------------------------

    async def _latest_published(
        self, session: AsyncSession, incident_id: int
    ) -> PublicUpdate | None:
        result = await session.exec(
            select(PublicUpdate)
            .where(col(PublicUpdate.incident_id) == incident_id)
            .where(col(PublicUpdate.state) == "published")
            .order_by(col(PublicUpdate.published_at).desc(), col(PublicUpdate.id).desc())
            .limit(1)
        )
        return result.first()

    async def last_published_at(self, incident_id: int) -> datetime | None:
        async with self.services.db.session() as session:
            row = await self._latest_published(session, incident_id)
        return row.published_at if row else None

    async def public_incidents(self, since: datetime) -> list[PublicIncident]:
        """Every incident with a published update, as the public knows it. Private incidents
        and drills are left out here too, whatever their rows say."""
        async with self.services.db.session() as session:
            result = await session.exec(
                select(PublicUpdate, Incident)
                .join(Incident, col(Incident.id) == col(PublicUpdate.incident_id))
                .where(col(PublicUpdate.state) == "published")
                .where(col(Incident.is_private).is_(False))
                .where(col(Incident.is_drill).is_(False))
                .order_by(
                    col(PublicUpdate.incident_id),
                    col(PublicUpdate.published_at),
                    col(PublicUpdate.id),
                )
            )
            rows = list(result.all())
        by_incident: dict[int, list[PublicUpdate]] = {}
        for row, _incident in rows:
            by_incident.setdefault(row.incident_id, []).append(row)
        # The public numbers its incidents itself, in the order they first went public: the
        # internal numbers would show, by their gaps, how many incidents were never public.
        numbers = {
            incident_id: n
            for n, incident_id in enumerate(
                sorted(by_incident, key=lambda i: (by_incident[i][0].published_at, i)), start=1
            )
        }
        out = []
        for incident_id, updates in by_incident.items():
            latest = updates[-1]
            first = updates[0]
            assert first.published_at is not None and latest.published_at is not None
            status = PublicStatus(latest.status)
            resolved = latest.published_at if status is PublicStatus.RESOLVED else None
            if resolved is not None and resolved < since:
                continue
            # A resolved incident keeps the worst impact the public was told of each
            # component, so its days in the history show it.
            shown: dict[str, Impact] = {}
            if status is PublicStatus.RESOLVED:
                for u in updates:
                    for cid, value in u.components.items():
                        impact = Impact(value)
                        if cid not in shown or impact.rank > shown[cid].rank:
                            shown[cid] = impact
            else:
                shown = {cid: Impact(v) for cid, v in latest.components.items()}
            shown = {cid: v for cid, v in shown.items() if cid in self.policy.components}
            out.append(
                PublicIncident(
                    id=numbers[incident_id],
                    title=latest.title,
                    status=status,
                    components=shown,
                    started_at=first.published_at,
                    resolved_at=resolved,
                    updates=tuple(
                        PublishedUpdate(
                            status=PublicStatus(u.status),
                            body=u.body,
                            published_at=u.published_at or u.created_at,
                        )
                        for u in reversed(updates)
                    ),
                )
            )
        return out

    async def public_page(self) -> PublicPage:
        now = self.services.clock.now()
        since = now - timedelta(days=self.policy.history_days)
        return build_page(self.policy, await self.public_incidents(since), now)

    async def fingerprint(self) -> str:
        """Changes whenever what is published changes (and once a day, for the bars)."""
        async with self.services.db.session() as session:
            result = await session.exec(
                select(func.count(), func.max(PublicUpdate.id)).where(
                    col(PublicUpdate.state) == "published"
                )
            )
            count, top = result.one()
        day = self.services.clock.now().date().isoformat()
        return hashlib.sha256(f"{count}:{top}:{day}".encode()).hexdigest()[:16]

    # --- a hosted status page -------------------------------------------------------------

    async def sweep(self) -> None:
        """The engine's chore: deliver what is due to the hosted status page."""
        await self.deliver_remote()

    async def deliver_remote(self) -> int:
        """Send published updates to the hosted status page, in order per incident. Returns
        how many were sent."""
        if self.provider is None or not self.policy.publishes_to_atlassian:
            return 0
        sent = 0
        for row in await self._claim():
            if await self._send(row):
                sent += 1
        return sent

    async def _claim(self) -> list[PublicUpdate]:
        """Each incident's first waiting update, when it is due and nobody holds it: the
        next one waits until it is sent, so a hosted page gets them in order, and the
        incident is created there once."""
        now = self.services.clock.now()
        me = self.services.replica
        waiting = ["pending", "sending"]
        async with self.services.db.session() as session:
            firsts = (
                select(func.min(PublicUpdate.id))
                .where(col(PublicUpdate.remote_state).in_(waiting))
                .group_by(col(PublicUpdate.incident_id))
            )
            result = await session.exec(
                select(PublicUpdate)
                .where(col(PublicUpdate.id).in_(firsts))
                .where(
                    or_(
                        col(PublicUpdate.remote_lease_until).is_(None),
                        col(PublicUpdate.remote_lease_until) < now,
                    )
                )
                .where(
                    or_(
                        col(PublicUpdate.remote_due_at).is_(None),
                        col(PublicUpdate.remote_due_at) <= now,
                    )
                )
                .order_by(col(PublicUpdate.id))
                .limit(REMOTE_BATCH)
            )
            candidates = list(result.all())
        claimed = []
        for row in candidates:
            async with self.services.db.session() as session:
                # Taken only as it was read: still waiting, free, and tried as often as seen
                # (another replica's attempt in between makes this one stand down).
                taken = await session.exec(
                    update(PublicUpdate)
                    .where(col(PublicUpdate.id) == row.id)
                    .where(col(PublicUpdate.remote_state).in_(waiting))
                    .where(col(PublicUpdate.remote_attempts) == row.remote_attempts)
                    .where(
                        or_(
                            col(PublicUpdate.remote_lease_until).is_(None),
                            col(PublicUpdate.remote_lease_until) < now,
                        )
                    )
                    .values(
                        remote_claimed_by=me,
                        remote_lease_until=now + REMOTE_LEASE,
                        remote_state="sending",
                        remote_attempts=row.remote_attempts + 1,
                    )
                )
            if taken.rowcount == 1:
                row.remote_attempts += 1
                row.remote_state = "sending"
                claimed.append(row)
        return claimed

    async def _send(self, row: PublicUpdate) -> bool:
        assert self.provider is not None and row.id is not None
        async with self.services.db.session() as session:
            incident = await session.get(Incident, row.incident_id)
        if incident is None or not self.may_go_public(incident):
            await self._finish(row, "failed", "the incident may not go public")
            return False
        call = StatusCall(
            incident_id=row.incident_id,
            remote_id=incident.statuspage_id,
            name=row.title,
            status=row.status,
            body=row.body,
            components=tuple(row.components.items()),
            marker=f"warroom-incident-{row.incident_id}",
        )
        try:
            remote = None
            if call.remote_id is None and row.remote_attempts > 1:
                # An earlier attempt may have created it and lost the answer: look first.
                remote = await self.provider.find(call)
                if remote is not None:
                    await self._remember_remote(row.incident_id, remote)
                    call = replace(call, remote_id=remote)
            remote = await self.provider.publish(call)
        except StatusPageError as exc:
            await self._failed(row, exc)
            return False
        await self._remember_remote(row.incident_id, remote)
        await self._finish(row, "sent", f"sent to Statuspage incident {remote}")
        return True

    async def _remember_remote(self, incident_id: int, remote: str) -> None:
        async with self.services.db.session() as session:
            await session.exec(
                update(Incident)
                .where(col(Incident.id) == incident_id)
                .where(col(Incident.statuspage_id).is_(None))
                .values(statuspage_id=remote)
            )

    async def _finish(self, row: PublicUpdate, state: str, outcome: str) -> None:
        async with self.services.db.session() as session:
            await session.exec(
                update(PublicUpdate)
                .where(col(PublicUpdate.id) == row.id)
                .where(col(PublicUpdate.remote_claimed_by) == self.services.replica)
                .values(
                    remote_state=state,
                    remote_outcome=outcome[:500],
                    remote_lease_until=None,
                    remote_claimed_by=None,
                )
            )

    async def _failed(self, row: PublicUpdate, exc: StatusPageError) -> None:
        now = self.services.clock.now()
        if exc.kind is StatusPageErrorKind.INVALID:
            await self._finish(row, "failed", exc.detail)
            await self._tell(
                row, f"Statuspage refused the update and it is not retried: {exc.detail}"
            )
            return
        wait = min(REMOTE_BACKOFF_MAX, timedelta(seconds=5 * 2 ** min(row.remote_attempts, 6)))
        tell = not row.remote_told and (
            exc.kind is StatusPageErrorKind.CREDENTIAL or row.remote_attempts >= 3
        )
        async with self.services.db.session() as session:
            await session.exec(
                update(PublicUpdate)
                .where(col(PublicUpdate.id) == row.id)
                .where(col(PublicUpdate.remote_claimed_by) == self.services.replica)
                .values(
                    remote_state="pending",
                    remote_outcome=exc.detail[:500],
                    remote_due_at=now + wait,
                    remote_lease_until=None,
                    remote_claimed_by=None,
                    remote_told=row.remote_told or tell,
                )
            )
        if tell:
            await self._tell(
                row, f"Statuspage did not take the update yet ({exc.detail}); Warroom keeps trying."
            )

    async def _tell(self, row: PublicUpdate, text: str) -> None:
        """Said once in the war room: Comms can publish by hand meanwhile."""
        now = self.services.clock.now()
        message = blocks.simple(f":warning: Status page: {escape(text)}")
        async with self.services.db.session() as session:
            enqueue(session, row.incident_id, now, [Outgoing("channel", message)])


_REASONS = {
    "declared": "the declaration",
    "update": "an update",
    "resolved": "the resolution",
    "manual": "`/incident publish`",
}


def _and(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def _checked(title: str, body: str) -> tuple[str, str]:
    title, body = title.strip(), body.strip()
    if not title:
        raise InvalidInput("Give the public update a title.", "title")
    if not body:
        raise InvalidInput("Say something in the public update.", "body")
    if len(title) > TITLE_MAX:
        raise InvalidInput(f"Keep the title within {TITLE_MAX} characters.", "title")
    if len(body) > BODY_MAX:
        raise InvalidInput(f"Keep the public update within {BODY_MAX} characters.", "body")
    return title, body


async def _by_source(session: AsyncSession, source: str) -> PublicUpdate | None:
    result = await session.exec(select(PublicUpdate).where(col(PublicUpdate.source_key) == source))
    return result.first()


def _person(*candidates: str | None) -> str | None:
    """The first candidate that is a Slack user (not an alert source's name)."""
    return next((c for c in candidates if c and is_user_id(c)), None)
