"""Action items: the follow-up work a review agrees on, each with an owner and a deadline.

Assignment is told to the owner by DM through the outbox, in the transaction that stores it.
Reminders for overdue items are escalation steps, so they survive restarts and fire once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.lifecycle import Status
from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks, mrkdwn
from app.messages.mrkdwn import Mrkdwn
from app.services.context import Services
from app.services.errors import InvalidInput, ServiceError, incident_snapshot, no_item
from app.services.escalations import Escalations
from app.services.incidents import clean
from app.services.outbox import Outgoing, enqueue
from app.store import repo
from app.store.models import ActionItem

MAX_ACTION = 500


@dataclass(frozen=True)
class ActionRequest:
    text: str
    owner: str | None = None
    due_on: date | None = None


@dataclass(frozen=True)
class ActionChange:
    """An item after a change, and the people whose view of it changed."""

    item: ActionItem
    affected: list[str]


class ActionItems:
    def __init__(self, services: Services, escalations: Escalations) -> None:
        self.services = services
        self.escalations = escalations

    def today(self) -> date:
        return (
            self.services.clock.now()
            .astimezone(ZoneInfo(self.services.policy.workspace.timezone))
            .date()
        )

    # --- reading --------------------------------------------------------------------------

    async def for_incident(self, incident_id: int) -> list[ActionItem]:
        async with self.services.db.session() as session:
            result = await session.exec(
                select(ActionItem)
                .where(ActionItem.incident_id == incident_id)
                .order_by(col(ActionItem.id))
            )
            return list(result.all())

    async def open_for(self, owner: str) -> list[ActionItem]:
        """The owner's unfinished items across incidents, soonest deadline first."""
        async with self.services.db.session() as session:
            result = await session.exec(
                select(ActionItem)
                .where(ActionItem.owner == owner)
                .where(col(ActionItem.done_at).is_(None))
                .order_by(
                    col(ActionItem.due_on).is_(None), col(ActionItem.due_on), col(ActionItem.id)
                )
            )
            return list(result.all())

    async def get(self, item_id: int) -> ActionItem:
        async with self.services.db.session() as session:
            item = await session.get(ActionItem, item_id)
        if item is None:
            raise no_item(item_id)
        return item

    # --- changing -------------------------------------------------------------------------

    async def add(
        self, incident_id: int, req: ActionRequest, by: str, request_key: str | None = None
    ) -> ActionChange:
        """Add an item. A repeated request key (the same command sent again) returns the item
        it added, and nobody's view of it changed."""
        if request_key and (replayed := await self._by_request_key(request_key)):
            return ActionChange(replayed, [])
        text = clean(req.text, MAX_ACTION, "action item")
        if not text:
            raise InvalidInput("Say what needs doing: `/incident action <text> [@owner]`.")
        if req.due_on is not None and req.due_on < self.today():
            raise InvalidInput(f"The due date {req.due_on.isoformat()} is in the past.")
        now = self.services.clock.now()
        try:
            async with self.services.db.session() as session:
                snap = await incident_snapshot(session, incident_id)
                await self.services.access.check("action", by, snap)
                await self._owner_sees(snap, req.owner)
                item = ActionItem(
                    incident_id=incident_id,
                    text=text,
                    owner=req.owner,
                    due_on=req.due_on,
                    created_by=by,
                    created_at=now,
                    request_key=request_key,
                )
                session.add(item)
                await session.flush()
                session.add(
                    repo.event(incident_id, now, "action_added", _describe(item), by, item=item.id)
                )
                said = self._render("action_added.md.j2", snap, item, by=by)
                queued = [] if snap.status is Status.CLOSED else [Outgoing("channel", said)]
                if item.owner:
                    queued.append(self._assigned_dm(snap, item, by))
                enqueue(session, incident_id, now, queued)
        except IntegrityError:
            # The same request, at the same moment: the first one stands.
            if request_key and (replayed := await self._by_request_key(request_key)):
                return ActionChange(replayed, [])
            raise
        await self._plan(item)
        return ActionChange(item, [item.owner] if item.owner else [])

    async def done(self, item_id: int, by: str) -> ActionChange:
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            item = await self._item_for_update(session, item_id)
            snap = await incident_snapshot(session, item.incident_id)
            await self.services.access.check_item(by, item_id, item.owner, snap)
            if item.done_at is not None:
                raise ServiceError(f"Action item A{item_id} is already done.")
            item.done_at, item.done_by = now, by
            session.add(item)
            session.add(
                repo.event(item.incident_id, now, "action_done", _describe(item), by, item=item_id)
            )
            if snap.status is not Status.CLOSED:
                said = self._render("action_done.md.j2", snap, item, by=by)
                enqueue(session, item.incident_id, now, [Outgoing("channel", said)])
        await self.escalations.cancel_action(item.incident_id, item_id, "action item done")
        return ActionChange(item, [item.owner] if item.owner else [])

    async def reassign(self, item_id: int, owner: str, by: str) -> ActionChange:
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            item = await self._item_for_update(session, item_id)
            snap = await incident_snapshot(session, item.incident_id)
            await self.services.access.check_item(by, item_id, item.owner, snap)
            if item.done_at is not None:
                raise ServiceError(f"Action item A{item_id} is done; nothing to reassign.")
            previous = item.owner
            if previous == owner:
                return ActionChange(item, [])
            await self._owner_sees(snap, owner)
            item.owner = owner
            session.add(item)
            session.add(
                repo.event(
                    item.incident_id,
                    now,
                    "action_reassigned",
                    _describe(item),
                    by,
                    item=item_id,
                    previous=previous,
                )
            )
            enqueue(session, item.incident_id, now, [self._assigned_dm(snap, item, by)])
        await self._plan(item)
        return ActionChange(item, [u for u in (previous, owner) if u])

    # --- helpers --------------------------------------------------------------------------

    async def _owner_sees(self, snap: IncidentSnapshot, owner: str | None) -> None:
        """The owner is told the item by DM (its text, the incident's title): a private
        incident's items go only to people who may see it."""
        if owner and not await self.services.access.can_see(snap, owner):
            raise InvalidInput(
                Mrkdwn(
                    f"{mrkdwn.user(owner)} is not in incident #{snap.id}'s private channel, so "
                    "they cannot own its action items. Invite them to the channel first, or "
                    "pick someone in it."
                ),
                "owner",
            )

    async def _by_request_key(self, key: str) -> ActionItem | None:
        async with self.services.db.session() as session:
            result = await session.exec(select(ActionItem).where(ActionItem.request_key == key))
            return result.first()

    async def _plan(self, item: ActionItem) -> None:
        if item.due_on is not None and item.owner and item.id is not None:
            await self.escalations.plan_action(item.incident_id, item.id, item.due_on)

    @staticmethod
    async def _item_for_update(session: AsyncSession, item_id: int) -> ActionItem:
        result = await session.exec(
            select(ActionItem).where(ActionItem.id == item_id).with_for_update()
        )
        item = result.first()
        if item is None:
            raise no_item(item_id)
        return item

    def _render(
        self, template: str, snap: IncidentSnapshot, item: ActionItem, **extra: object
    ) -> blocks.Message:
        text = self.services.renderer.render(template, incident=snap, a=item, **extra)
        return blocks.simple(text)

    def _assigned_dm(self, snap: IncidentSnapshot, item: ActionItem, by: str) -> Outgoing:
        text = self.services.renderer.render("action_assigned.md.j2", incident=snap, a=item, by=by)
        assert item.id is not None
        message = blocks.message(
            text,
            [
                *blocks.sections(text),
                {"type": "actions", "elements": [done_button(item.id)]},
            ],
        )
        return Outgoing(f"user:{item.owner}", message)


def done_button(item_id: int) -> dict[str, object]:
    return blocks.button("Done", "action_item_done", str(item_id), "primary")


def _describe(item: ActionItem) -> str:
    owner = f" · owner <@{item.owner}>" if item.owner else ""
    due = f" · due {item.due_on.isoformat()}" if item.due_on else ""
    return f"A{item.id}: {item.text}{owner}{due}"
