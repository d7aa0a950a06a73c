"""The inbox: a Slack request is recorded before Slack is told "received", and forgotten only
once it has been carried out.

The cost is one insert before the acknowledgment. In exchange a crash between the
acknowledgment and the work loses nothing: the row stays, and `take_over` hands it to the
next process (this replica after a restart at once, another when the lease lapses), which
carries it out again. Every request has its own idempotency key, so work that got half-way is
finished, not repeated.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, delete, select

from app.services.context import Services
from app.store.claims import claim
from app.store.models import InboxRequest


class Inbox:
    def __init__(self, services: Services) -> None:
        self.services = services
        # Rows are owned by this replica's name plus this run's token: a row with the same
        # name and another token was left by an earlier run of this replica (a restart).
        self.owner = f"{services.replica}#{uuid.uuid4().hex[:8]}"

    # Longer than any command takes, even queued behind Slack's rate limits: another replica
    # takes a request over only when its process is surely gone (a restart of the same replica
    # takes its own back at once).
    _lease = timedelta(minutes=5)

    async def record(self, key: str, kind: str, body: dict[str, Any]) -> int | None:
        """Store the request under this process's lease; None when a request with the same key
        is already stored (a retry or a replay: the first one is being carried out)."""
        now = self.services.clock.now()
        try:
            async with self.services.db.session() as session:
                row = InboxRequest(
                    key=key,
                    kind=kind,
                    body=body,
                    received_at=now,
                    owner=self.owner,
                    lease_until=now + self._lease,
                    attempts=1,
                )
                session.add(row)
                await session.flush()
                return row.id
        except IntegrityError:
            return None

    async def done(self, request_id: int) -> None:
        async with self.services.db.session() as session:
            await session.exec(delete(InboxRequest).where(col(InboxRequest.id) == request_id))

    async def take_over(self, limit: int = 20) -> list[InboxRequest]:
        """Requests whose process died before carrying them out, now leased to this one."""
        now = self.services.clock.now()
        earlier_run = col(InboxRequest.owner).startswith(
            f"{self.services.replica}#", autoescape=True
        ) & (col(InboxRequest.owner) != self.owner)
        due = or_(col(InboxRequest.lease_until) < now, earlier_run)
        return await claim(
            self.services.db,
            InboxRequest,
            due,
            {
                "owner": self.owner,
                "lease_until": now + self._lease,
                "attempts": col(InboxRequest.attempts) + 1,
            },
            col(InboxRequest.id),
            limit,
        )

    async def pending(self) -> list[InboxRequest]:
        async with self.services.db.session() as session:
            return list((await session.exec(select(InboxRequest))).all())
