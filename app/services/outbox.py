"""Delivering queued messages: one ordered stream per destination, each message exactly once.

Messages are queued in the same transaction as the change they announce (see
`Incidents._announce` and `enqueue`), so a change is never saved without its announcement. A
stream is an incident's messages to one destination: its war room ("channel"), its announcement
thread ("thread"), or one person by DM ("user:<id>"). Order holds within a stream, and only
there: an update's war-room post and its thread copy go out together, a DM does not wait for
the war room, and one incident never waits for another. Delivery claims due rows with a lease
(several replicas may deliver; a stream with a message being sent or waiting out a backoff is
not claimed, so its later messages keep their place), delivers each claimed stream in its own
task (at most `STREAMS` at once per process), posts its rows in queue order and records each
`ts`. A row whose outcome is unknown (a dropped connection, or a replica that died mid-call) is
looked up in Slack by its metadata key before being posted again.

What Slack refuses is handled by what the refusal means (`SlackError.kind`): an outage leaves
the row, and the rest of its stream, due again later, with backoff; a refused token holds every
row, uncounted, until Slack accepts it again; a room that takes no posts (archived, bot removed)
is rejoined when it is public, else its messages wait (the war room's; copies for the
announcement thread are skipped) and the commander and declarer are told once; a deleted
announcement is posted again (by the thread's stream, the only one that posts under it) and its
thread continues there; only an invalid message is dropped, logged at ERROR, with the commander
told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, not_, or_, select, tuple_, update
from sqlmodel import col
from sqlmodel import select as select_models  # typed rows; sqlalchemy's for the rest
from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.escalation import retry_delay
from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.messages import blocks
from app.messages.blocks import Message
from app.services.context import Services
from app.services.ports import ErrorKind, SlackError
from app.store import repo
from app.store.claims import claim
from app.store.leases import renewing
from app.store.models import Incident, OutboxMessage

log = logging.getLogger(__name__)

BATCH = 200
# Streams one process delivers at once: enough that independent incidents and destinations do
# not wait for each other, few enough that a backlog does not open hundreds of Slack calls at
# once (the Slack adapter paces what goes out; this bounds what waits there).
STREAMS = 32

# One ordered stream: an incident's messages to one destination.
Stream = tuple[int, str]


@dataclass(frozen=True)
class Outgoing:
    """A message to queue: where it goes and what it says."""

    destination: str  # "channel", "thread" or "user:<id>"
    message: Message
    broadcast: bool = False


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    # Refused by Slack for good (an invalid message): dropped, logged and the commander told.
    dropped: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Set while Slack refuses the bot token: nothing was sent, everything stays queued.
    held: str | None = None
    # Set when the incident's channel cannot take messages (archived, bot removed): they wait.
    room: str | None = None


def enqueue(
    session: AsyncSession, incident_id: int, now: datetime, items: Sequence[Outgoing]
) -> None:
    for item in items:
        session.add(
            OutboxMessage(
                incident_id=incident_id,
                destination=item.destination,
                broadcast=item.broadcast,
                text=item.message.text,
                blocks=item.message.blocks,
                due_at=now,
                created_at=now,
            )
        )


def message_key(row: OutboxMessage) -> str:
    return f"outbox:{row.id}"


def _id(row: OutboxMessage) -> int:
    return row.id or 0


# Posts the incident's announcement again after it was deleted; returns its new ts.
Reannounce = Callable[[int, str], Awaitable[str | None]]


@dataclass
class _Lane:
    """This process's lock on one stream, and how many deliveries use or wait for it."""

    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class _Claimed:
    rows: list[OutboxMessage]
    incidents: dict[int, Incident]


class Outbox:
    def __init__(self, services: Services, reannounce: Reannounce | None = None) -> None:
        self.services = services
        self.reannounce = reannounce
        # One delivery at a time per stream in this process; a deliver() call while one runs
        # asks it for another round (`_again`) instead of finding the stream held and leaving
        # its messages to the next tick.
        self._lanes: dict[Stream, _Lane] = {}
        self._again: set[Stream] = set()
        # How many deliveries were asked for, per incident. A stream being sent looks again
        # when the count moved since its rows were claimed: a delivery asked for between
        # another's claim and its stream starting finds the stream's rows blocked (being sent)
        # and leaves them to that stream.
        self._asked: dict[int, int] = defaultdict(int)
        self._slots = asyncio.Semaphore(STREAMS)
        # One claim at a time in this process: two claims at once (a command's and the tick's)
        # could otherwise split one stream's due rows between them on Postgres, where each
        # skips the rows the other has locked.
        self._claiming = asyncio.Lock()

    async def deliver(self, incident_id: int | None = None) -> DeliveryReport:
        """Send what is due (for one incident, or all), every stream at once. Never raises for
        Slack's failures.

        Messages queued while a stream is being sent go out in the same run, in order, not at
        the next tick."""
        report = DeliveryReport()
        if self.services.auth.waiting():
            report.held = self.services.auth.problem
            return report
        if incident_id is not None:
            self._asked[incident_id] += 1
            # The incident's streams being sent now take what was queued meanwhile.
            self._again.update(
                stream
                for stream, lane in self._lanes.items()
                if stream[0] == incident_id and lane.lock.locked()
            )
        asked = dict(self._asked)
        claimed = await self._claim(incident_id)
        streams: dict[Stream, list[OutboxMessage]] = defaultdict(list)
        for row in claimed.rows:
            streams[(row.incident_id, row.destination)].append(row)
        results = await asyncio.gather(
            *(
                self._drain(
                    stream, report, rows, claimed.incidents.get(stream[0]), asked.get(stream[0], 0)
                )
                for stream, rows in streams.items()
            ),
            return_exceptions=True,
        )
        # Every stream had its turn; a failure of one (not Slack's: the database's) is raised
        # once the others are done.
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return report

    async def _drain(
        self,
        stream: Stream,
        report: DeliveryReport,
        rows: list[OutboxMessage],
        incident: Incident | None,
        asked: int,
    ) -> None:
        """Deliver the stream's claimed `rows`, then again for as long as more were queued
        meanwhile (`asked`: the incident's delivery count when they were claimed). The leases
        are renewed from the claim on, waiting included."""
        held = rows

        async def renew() -> None:
            await self._renew(held)

        async with renewing(renew, self._lease_seconds / 3), self._exclusive(stream):
            async with self._slots:
                while True:
                    self._again.discard(stream)
                    if not held:
                        claimed = await self._claim(*stream)
                        held, incident = claimed.rows, claimed.incidents.get(stream[0])
                    if held:
                        assert incident is not None
                        # A copy of its own: the thread's stream may move the announcement.
                        own = Incident(**incident.model_dump())
                        await self._deliver_in_order(sorted(held, key=_id), own, report)
                    held = []
                    if stream not in self._again and self._asked[stream[0]] == asked:
                        return
                    asked = self._asked[stream[0]]

    @contextlib.asynccontextmanager
    async def _exclusive(self, stream: Stream) -> AsyncIterator[None]:
        """Hold the stream's lock in this process; forget the lock once nobody needs it."""
        lane = self._lanes.setdefault(stream, _Lane())
        lane.users += 1
        try:
            async with lane.lock:
                yield
        finally:
            lane.users -= 1
            if not lane.users:
                del self._lanes[stream]

    @property
    def _lease_seconds(self) -> float:
        return float(self.services.policy.escalation.lease_seconds)

    async def _renew(self, rows: Sequence[OutboxMessage]) -> None:
        """Keep the lease on rows this replica is still sending (slow Slack, long batch)."""
        if not rows:
            return
        until = self.services.clock.now() + timedelta(seconds=self._lease_seconds)
        async with self.services.db.session() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id).in_([r.id for r in rows]))
                .where(col(OutboxMessage.state) == "sending")
                .where(col(OutboxMessage.claimed_by) == self.services.replica)
                .values(lease_until=until)
            )

    async def _claim(self, incident_id: int | None, destination: str | None = None) -> _Claimed:
        """Claim what is due (of one incident, or one stream), with the incidents it belongs
        to, in one transaction."""
        now = self.services.clock.now()
        due = or_(
            and_(col(OutboxMessage.state) == "pending", col(OutboxMessage.due_at) <= now),
            and_(col(OutboxMessage.state) == "sending", col(OutboxMessage.lease_until) < now),
        )
        # A stream with a message waiting out a backoff, or being sent elsewhere, is held back
        # whole: its messages go out in queue order. The incident's other streams go on.
        blocked = select(col(OutboxMessage.incident_id), col(OutboxMessage.destination)).where(
            or_(
                and_(col(OutboxMessage.state) == "pending", col(OutboxMessage.due_at) > now),
                and_(col(OutboxMessage.state) == "sending", col(OutboxMessage.lease_until) >= now),
            )
        )
        stream = tuple_(col(OutboxMessage.incident_id), col(OutboxMessage.destination))
        filters: list[ColumnElement[bool]] = [not_(stream.in_(blocked))]
        if incident_id is not None:
            filters.append(col(OutboxMessage.incident_id) == incident_id)
        if destination is not None:
            filters.append(col(OutboxMessage.destination) == destination)
        async with self._claiming, self.services.db.session() as session:
            rows = await claim(
                self.services.db,
                OutboxMessage,
                due,
                values={
                    "state": "sending",
                    "claimed_by": self.services.replica,
                    "lease_until": now + timedelta(seconds=self._lease_seconds),
                    # A row taken back from a lapsed lease may have gone out: look first.
                    "uncertain": or_(
                        col(OutboxMessage.uncertain), col(OutboxMessage.state) == "sending"
                    ),
                },
                order_by=col(OutboxMessage.id),
                limit=BATCH,
                filters=filters,
                session=session,
            )
            incidents = await repo.get_many(session, (row.incident_id for row in rows))
        return _Claimed(rows, incidents)

    async def _deliver_in_order(
        self, rows: list[OutboxMessage], incident: Incident, report: DeliveryReport
    ) -> None:
        """Post one stream's claimed rows in queue order; the first that must wait holds the
        rest of the stream back with it."""
        for index, row in enumerate(rows):
            try:
                outcome = await self._send(row, incident)
            except SlackError as exc:
                report.errors.append(exc.code)
                report.failed.append(row.id or 0)
                if exc.kind is ErrorKind.CREDENTIAL:
                    # Not this message's fault: hold it, uncounted, until the token works.
                    report.held = exc.code
                    now = self.services.clock.now()
                    for later in rows[index:]:
                        await self._release(later, now, None, exc if later is row else None)
                    return
                if exc.kind is ErrorKind.ROOM:
                    report.room = exc.code
                # Keep the order: this and every later message of the stream wait as long.
                due = self.services.clock.now() + retry_delay(row.attempts + 1)
                for later in rows[index:]:
                    await self._release(later, due, exc if later is row else None)
                return
            if outcome == "skipped":
                report.skipped.append(row.id or 0)
            elif outcome == "dropped":
                report.dropped.append(row.id or 0)
            elif outcome == "waiting":
                due = self.services.clock.now() + timedelta(seconds=15)
                for later in rows[index:]:
                    await self._release(later, due, None)
                return
            else:
                report.sent.append(row.id or 0)

    async def _send(self, row: OutboxMessage, incident: Incident) -> str:
        """Post one row: "sent", "skipped", "dropped" or "waiting"; raises the SlackError
        that must hold it (and every later message of its stream) back."""
        channel, thread_ts = self._where(row, incident)
        if channel == "skip":
            await self._finish(row, "skipped", None, None, "private incident: no announcement")
            return "skipped"
        if channel is None:
            return "waiting"
        key = message_key(row)
        if row.uncertain and not channel.startswith("U"):
            oldest = f"{row.created_at.timestamp() - 1:.6f}"
            try:
                found = await self.services.slack.find_posted(channel, key, oldest, thread_ts)
            except SlackError as exc:
                if exc.kind is ErrorKind.ROOM:
                    return await self._refused(row, incident, channel, exc)
                if exc.kind is not ErrorKind.GONE_THREAD:
                    raise
                found = None  # the thread is gone: the message is not in it
            if found:
                await self._finish(row, "sent", found, channel, "found already posted")
                return "sent"
        message = Message(text=row.text, blocks=row.blocks)
        for attempt in (1, 2):
            try:
                ts = await self.services.slack.post(
                    channel, message, thread_ts=thread_ts, broadcast=row.broadcast, key=key
                )
            except SlackError as exc:
                if exc.uncertain:
                    row.uncertain = True
                if exc.retryable:
                    raise
                if attempt == 1 and await self._repair(row, incident, channel, thread_ts, exc):
                    channel, thread_ts = self._where(row, incident)
                    assert channel is not None
                    continue
                return await self._refused(row, incident, channel, exc)
            break
        await self._finish(row, "sent", ts, channel, "")
        if incident.room_problem and incident.room_problem.startswith(f"{row.destination}:"):
            await self._room_fixed(incident, row.destination)
        return "sent"

    async def _repair(
        self,
        row: OutboxMessage,
        incident: Incident,
        channel: str,
        thread_ts: str | None,
        exc: SlackError,
    ) -> bool:
        """Fix what can be fixed without a person: rejoin a public channel the bot was removed
        from; post the announcement again when it was deleted (the thread continues under the
        new one). True when the post is worth trying again now."""
        if row.destination.startswith("user:"):
            return False
        if exc.code == "not_in_channel":
            try:
                await self.services.slack.join(channel)
            except SlackError as join_error:
                log.info("incident %s: cannot rejoin %s: %s", incident.id, channel, join_error)
                return False
            log.warning("incident %s: Warroom was not in %s and joined it", incident.id, channel)
            return True
        if exc.kind is ErrorKind.GONE_THREAD and row.destination == "thread" and thread_ts:
            if self.reannounce is None or incident.id is None:
                return False
            try:
                fresh = await self.reannounce(incident.id, thread_ts)
            except SlackError as repost_error:
                if repost_error.retryable:
                    raise
                log.warning(
                    "incident %s: announcement not posted again yet: %s",
                    incident.id,
                    repost_error.code,
                )
                return False
            if not fresh:
                return False
            incident.announcement_ts = fresh
            return True
        return False

    async def _refused(
        self, row: OutboxMessage, incident: Incident, channel: str, exc: SlackError
    ) -> str:
        """Slack refused the post for a reason waiting will not cure by itself."""
        in_room = row.destination in ("channel", "thread")
        if in_room and exc.kind in (ErrorKind.ROOM, ErrorKind.GONE_THREAD):
            if incident.status == Status.CLOSED.value:
                # The room of a closed incident is archived on purpose.
                log.warning(
                    "incident %s is closed and %s takes no messages (%s): message %s dropped",
                    incident.id,
                    channel,
                    exc.code,
                    row.id,
                )
                await self._finish(row, "failed", None, channel, exc.code)
                return "dropped"
            if exc.kind is ErrorKind.ROOM:
                await self._tell_room_problem(row, incident, channel, exc)
                if row.destination == "thread":
                    # The thread copies what the war room says: skip it rather than hold the
                    # war room's messages for the announcement channel.
                    log.warning(
                        "incident %s: announcement channel %s takes no posts (%s): thread copy "
                        "%s skipped",
                        incident.id,
                        channel,
                        exc.code,
                        row.id,
                    )
                    await self._finish(row, "skipped", None, channel, exc.code)
                    return "skipped"
            raise exc  # held, with backoff, until the room works again
        await self._drop(row, incident, channel, exc)
        return "dropped"

    async def _drop(
        self, row: OutboxMessage, incident: Incident, channel: str, exc: SlackError
    ) -> None:
        """Slack will never take this message: drop it, loudly, and tell the commander."""
        log.error(
            "incident %s: message %s (key %s, to %s) refused by Slack for good (%s): dropped",
            incident.id,
            row.id,
            message_key(row),
            row.destination,
            exc.code,
        )
        await self._finish(row, "failed", None, channel, exc.code)
        excerpt = " ".join(row.text.split())[:200]
        where = {"channel": "the war room", "thread": "the announcement thread"}.get(
            row.destination, f"<@{row.destination.removeprefix('user:')}>"
        )
        text = (
            f":warning: Slack refused a message of incident #{incident.id} for {where} "
            f"({exc.code}), so it was not posted. It began: {excerpt}"
        )
        await self._tell(incident, text, people=("commander",))

    async def _tell_room_problem(
        self, row: OutboxMessage, incident: Incident, channel: str, exc: SlackError
    ) -> None:
        """Tell the commander and the declarer, once per problem, why the incident's messages
        wait and what fixes it.

        The incident records one problem at a time, and the war room's comes first: while it
        is recorded, the announcement channel's is not said (the war room's and the thread's
        streams run at once, and would otherwise take turns telling the same people)."""
        problem = f"{row.destination}:{exc.code}"
        untold = or_(col(Incident.room_problem).is_(None), col(Incident.room_problem) != problem)
        if row.destination != "channel":
            war_room = col(Incident.room_problem).startswith("channel:")
            untold = and_(untold, or_(col(Incident.room_problem).is_(None), not_(war_room)))
        async with self.services.db.session() as session:
            result = await session.exec(
                update(Incident)
                .where(col(Incident.id) == incident.id)
                .where(untold)
                .values(room_problem=problem)
            )
        incident.room_problem = problem  # a post that works later clears it (if still its)
        if not result.rowcount:
            return  # already told, or the war room's problem is what people hear about
        room = (
            f"the war room of incident #{incident.id} (<#{channel}>)"
            if row.destination == "channel"
            else f"the announcement channel <#{channel}>"
        )
        bot = f"<@{self.services.bot_user_id}>" if self.services.bot_user_id else "Warroom"
        fix = {
            "is_archived": f"{room} is archived. Unarchive it (Slack does not let a bot do it)",
            "not_in_channel": (
                f"Warroom was removed from {room} and cannot rejoin it. Add it back with "
                f"`/invite {bot}` in the channel"
            ),
            "channel_not_found": (
                f"Warroom cannot find {room} (deleted, or private without Warroom in it). "
                f"Restore the channel, or add Warroom back with `/invite {bot}`"
            ),
        }.get(exc.code, f"Slack refuses posts to {room} ({exc.code}). Fix the channel")
        log.warning(
            "incident %s: cannot post to %s (%s): messages wait", incident.id, channel, exc.code
        )
        then = (
            "and the waiting messages will follow in order."
            if row.destination == "channel"
            else "and the announcement thread gets its updates again (the war room has them all)."
        )
        await self._tell(
            incident,
            f":warning: Warroom cannot post the messages of incident #{incident.id}: {fix}, {then}",
            people=("commander", "declarer"),
        )

    async def room_works_again(self, incident_id: int, destination: str) -> DeliveryReport:
        """Slack says the incident's room for `destination` ("channel": the war room, "thread":
        the announcement channel) takes posts again (unarchived, Warroom added back): forget
        its problem, end the backoff of the messages its stream holds and send them now."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            await session.exec(
                update(Incident)
                .where(col(Incident.id) == incident_id)
                .where(col(Incident.room_problem).startswith(f"{destination}:"))
                .values(room_problem=None)
            )
            result = await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.incident_id) == incident_id)
                .where(col(OutboxMessage.destination) == destination)
                .where(col(OutboxMessage.state) == "pending")
                .where(col(OutboxMessage.due_at) > now)
                .values(due_at=now, attempts=0)
            )
        if result.rowcount:
            log.warning(
                "incident %s: Slack says its %s takes posts again: %s held messages sent now",
                incident_id,
                "war room" if destination == "channel" else "announcement channel",
                result.rowcount,
            )
        return await self.deliver(incident_id)

    async def _room_fixed(self, incident: Incident, destination: str) -> None:
        """A post to `destination` went through: forget its problem (not another stream's,
        recorded meanwhile)."""
        async with self.services.db.session() as session:
            await session.exec(
                update(Incident)
                .where(col(Incident.id) == incident.id)
                .where(col(Incident.room_problem).startswith(f"{destination}:"))
                .values(room_problem=None)
            )
        log.warning("incident %s: posting works again (%s)", incident.id, incident.room_problem)
        incident.room_problem = None

    async def _tell(self, incident: Incident, text: str, people: tuple[str, ...]) -> None:
        """Say it on the timeline and, by DM, to the incident's commander (and declarer)."""
        assert incident.id is not None
        async with self.services.db.session() as session:
            roles = await repo.current_roles(session, incident.id)
            session.add(repo.event(incident.id, self.services.clock.now(), "problem", text))
        wanted = {"commander": roles.get(Role.COMMANDER), "declarer": incident.declared_by}
        for user in dict.fromkeys(wanted[p] for p in people if wanted[p]):
            if not user or user == self.services.bot_user_id:
                continue
            try:
                await self.services.slack.dm(user, blocks.simple(text))
            except SlackError as exc:
                log.warning("incident %s: could not tell %s: %s", incident.id, user, exc.code)

    @staticmethod
    def _where(row: OutboxMessage, incident: Incident) -> tuple[str | None, str | None]:
        """(channel, thread_ts) for a row; channel None = not possible yet, "skip" = never."""
        if row.destination == "channel":
            return incident.channel_id, None
        if row.destination == "thread":
            if incident.is_private:
                return "skip", None
            if not (incident.announcement_channel_id and incident.announcement_ts):
                return ("skip", None) if incident.war_room_ready else (None, None)
            return incident.announcement_channel_id, incident.announcement_ts
        if row.destination.startswith("user:"):
            return row.destination.removeprefix("user:"), None
        return "skip", None

    async def _finish(
        self,
        row: OutboxMessage,
        state: str,
        ts: str | None,
        channel: str | None,
        outcome: str,
    ) -> None:
        async with self.services.db.session() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .values(
                    state=state,
                    sent_ts=ts,
                    sent_channel=channel,
                    outcome=outcome,
                    lease_until=None,
                    uncertain=False,
                )
            )

    async def _release(
        self,
        row: OutboxMessage,
        due: datetime,
        error: SlackError | None,
        held: SlackError | None = None,
    ) -> None:
        """Back to pending until `due`; a failed attempt (`error`) is counted, a hold is not."""
        attempts = row.attempts + (1 if error else 0)
        said = error or held
        async with self.services.db.session() as session:
            await session.exec(
                update(OutboxMessage)
                .where(col(OutboxMessage.id) == row.id)
                .where(col(OutboxMessage.claimed_by) == self.services.replica)
                .values(
                    state="pending",
                    attempts=attempts,
                    due_at=due,
                    lease_until=None,
                    uncertain=row.uncertain,
                    outcome=f"{said.method}: {said.code}" if said else row.outcome,
                )
            )

    async def pending_count(self, incident_id: int) -> int:
        async with self.services.db.session() as session:
            result = await session.exec(
                select_models(col(OutboxMessage.id))
                .where(col(OutboxMessage.incident_id) == incident_id)
                .where(col(OutboxMessage.state).in_(["pending", "sending"]))
            )
            return len(result.all())
