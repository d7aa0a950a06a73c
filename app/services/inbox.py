"""The inbox: a Slack request is recorded before Slack is told "received", and forgotten only
once it has been carried out.

The cost is one insert before the acknowledgment. In exchange a crash between the
acknowledgment and the work loses nothing: the row stays, and `take_over` hands it to the
next process (this replica after a restart at once, another when the lease lapses), which
carries it out again. Every request has its own idempotency key, so work that got half-way is
finished, not repeated.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import col, delete, select

from app.services.context import Services
from app.store.claims import claim
from app.store.models import InboxRequest

log = logging.getLogger(__name__)


# At most this many requests per insert (7 parameters each, well under SQLite's 32,766).
BATCH = 500
_Queued = tuple[str, str, dict[str, Any], "asyncio.Future[int | None]"]


class NotRecorded(Exception):
    """The request could not be stored in time: the acknowledgment must say nothing was done."""


class Inbox:
    def __init__(self, services: Services) -> None:
        self.services = services
        # Rows are owned by this replica's name plus this run's token: a row with the same
        # name and another token was left by an earlier run of this replica (a restart).
        self.owner = f"{services.replica}#{uuid.uuid4().hex[:8]}"
        # Inserts that answered too late, and the deletes undoing them (kept referenced).
        self._late: set[asyncio.Task[Any]] = set()
        # Requests waiting to be written by the next insert, and the task writing them.
        self._queued: list[_Queued] = []
        self._writer: asyncio.Task[None] | None = None

    # Longer than any command takes, even queued behind Slack's rate limits: another replica
    # takes a request over only when its process is surely gone (a restart of the same replica
    # takes its own back at once).
    _lease = timedelta(minutes=5)

    # Slack waits 3 seconds for an acknowledgment; a database that does not answer within this
    # gets the answer "nothing was done" instead of a silent timeout.
    record_within = 2.0

    async def record_before_ack(self, key: str, kind: str, body: dict[str, Any]) -> int | None:
        """`record`, answered within `record_within` seconds or raising `NotRecorded`.

        The insert is not cancelled when it is late (cancelling a query on a connection that
        does not answer can hang too): it goes on in the background, and if it lands after all
        its row is deleted again, since the sender was told nothing was done."""
        task = asyncio.create_task(self.record(key, kind, body))
        finished, _ = await asyncio.wait({task}, timeout=self.record_within)
        if not finished:
            log.error(
                "the inbox did not answer within %.1fs; request %s refused", self.record_within, key
            )
            self._late.add(task)
            task.add_done_callback(self._undo_late)
            raise NotRecorded(key)
        try:
            return task.result()
        except Exception as exc:
            log.exception("the inbox could not record request %s", key)
            raise NotRecorded(key) from exc

    def _undo_late(self, task: asyncio.Task[int | None]) -> None:
        self._late.discard(task)
        if task.cancelled() or task.exception() is not None or task.result() is None:
            return
        undo = asyncio.create_task(self._delete_late(task.result()))
        self._late.add(undo)
        undo.add_done_callback(self._late.discard)

    async def _delete_late(self, request_id: int | None) -> None:
        assert request_id is not None
        for _ in range(60):
            try:
                await self.done(request_id)
                log.warning(
                    "inbox request %s stored too late to be acknowledged; forgotten", request_id
                )
                return
            except Exception:
                await asyncio.sleep(1)
        log.error("inbox request %s stored too late could not be forgotten", request_id)

    async def record(self, key: str, kind: str, body: dict[str, Any]) -> int | None:
        """Store the request under this process's lease; None when a request with the same key
        is already stored (a retry or a replay: the first one is being carried out).

        Requests arriving while a write is under way are stored together, in one transaction,
        by the next write: under a burst, fifty requests cost a couple of commits, not fifty
        turns at the database's one writer, each after the other."""
        answer: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self._queued.append((key, kind, body, answer))
        if self._writer is None:
            self._writer = asyncio.create_task(self._write_queued())
        return await asyncio.shield(answer)

    async def _write_queued(self) -> None:
        try:
            while self._queued:
                batch, self._queued = self._queued[:BATCH], self._queued[BATCH:]
                try:
                    stored = await self._insert(batch)
                except Exception as exc:
                    for *_, answer in batch:
                        if not answer.done():
                            answer.set_exception(exc)
                    continue
                for key, _, _, answer in batch:
                    if not answer.done():
                        # A key twice in one batch: the second is a retry of the first.
                        answer.set_result(stored.pop(key, None))
        finally:
            self._writer = None

    async def _insert(self, batch: list[_Queued]) -> dict[str, int]:
        """Insert the batch, skipping keys already stored; the ids of the rows inserted."""
        now = self.services.clock.now()
        rows = [
            {
                "key": key,
                "kind": kind,
                "body": body,
                "received_at": now,
                "owner": self.owner,
                "lease_until": now + self._lease,
                "attempts": 1,
            }
            for key, kind, body, _ in batch
        ]
        dialect = self.services.db.engine.dialect.name
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        async with self.services.db.session(first=True) as session:
            statement = (
                insert(InboxRequest)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["key"])
                .returning(col(InboxRequest.id), col(InboxRequest.key))
            )
            result = await session.exec(statement)
            return {key: request_id for request_id, key in result.all()}

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
