"""The use cases as a person triggers them, callable from any entry point (a slash command, a
button, a form, an alert webhook, the sandbox, the CLI).

Each flow: the change (state plus queued messages, one transaction), the escalation plan, then
delivery of the queued messages and a refresh of topic and headline. The private answer goes
through a plain `say` callback, so the caller decides where it lands; when Slack does not take
the messages, the person is told they are saved and will follow.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.domain.escalation import Kind
from app.domain.lifecycle import Status
from app.domain.paging import incident_of
from app.domain.roles import Role
from app.messages import blocks
from app.messages.mrkdwn import Mrkdwn, escape
from app.services.catchup import CatchUps
from app.services.context import Services
from app.services.errors import InvalidInput
from app.services.escalations import Escalations, Held, describe_key
from app.services.incidents import DeclareRequest, Incidents, ResolveRequest, UpdateRequest
from app.services.outbox import Outbox, Outgoing, enqueue
from app.services.ports import Firing, Say, SlackError, urgent
from app.services.rooms import Rooms
from app.store import repo
from app.store.models import Incident, ProcessedEvent, TimelineEvent


class Flows:
    def __init__(
        self,
        services: Services,
        incidents: Incidents,
        rooms: Rooms,
        escalations: Escalations,
        outbox: Outbox,
        firing: Firing,
    ) -> None:
        self.services = services
        self.incidents = incidents
        self.rooms = rooms
        self.escalations = escalations
        self.paging = escalations.paging
        self.outbox = outbox
        self.firing = firing
        self.catchups = CatchUps(services, rooms.announcements)

    async def publish(self, incident_id: int, say: Say | None) -> None:
        """Deliver the incident's queued messages and refresh its topic and headline."""
        await self.deliver(incident_id, say)
        await self.rooms.refresh(incident_id)

    async def deliver(self, incident_id: int, say: Say | None) -> None:
        """Deliver the incident's queued messages; say why when they must wait."""
        report = await self.outbox.deliver(incident_id)
        if report.held and say is not None:
            await say(
                f":hourglass: Saved. Slack is refusing Warroom's token ({report.held}); the "
                "messages are kept and go out as soon as Slack accepts it again."
            )
        elif report.room and say is not None:
            await say(
                f":hourglass: Saved. Warroom cannot post in the incident's channels right now "
                f"({report.room}); the commander was told what fixes it, and the messages "
                "follow in order once it is fixed."
            )
        elif report.failed and say is not None:
            await say(
                ":hourglass: Saved. Slack is not taking messages right now "
                f"({report.errors[0]}); Warroom will post them as soon as it does."
            )

    async def room_works_again(self, channel_id: str) -> list[int]:
        """Slack says `channel_id` takes posts again (unarchived, or Warroom added back): the
        open incidents whose war room or announcement channel it is send what they held, in
        order, and redo the topic, pin and headline Slack refused. Returns their ids."""
        async with self.services.db.session() as session:
            result = await session.exec(
                select(Incident)
                .where(
                    or_(
                        col(Incident.channel_id) == channel_id,
                        col(Incident.announcement_channel_id) == channel_id,
                    )
                )
                .where(col(Incident.status) != Status.CLOSED.value)
                .order_by(col(Incident.id))
            )
            found = [(i.id, i.channel_id == channel_id) for i in result.all() if i.id]
        for incident_id, war_room in found:
            await self.outbox.room_works_again(incident_id, "channel" if war_room else "thread")
            await self.rooms.refresh_now(incident_id)
        return [incident_id for incident_id, _ in found]

    async def declare(self, req: DeclareRequest) -> None:
        """Store the incident, then build its war room. A repeated request (same key) found the
        incident already stored: the request that stored it is building the room."""
        change = await self.incidents.declare(req)
        if not change.changed:
            return
        # A real incident's Slack calls go before reminders and housekeeping when Slack's
        # rate limits bite (one person's flood of declares is refused before this).
        with urgent():
            # The room first: it is what people wait for. The escalation plan, recorded as
            # pending with the incident, is made right after (and by recovery after a crash).
            await self.rooms.open_war_room(change.incident.id)
            await self.escalations.run_pending(change.incident.id)
            # Page the severity's audience and send the commander's brief now, not at the
            # next tick.
            await self.firing.fire_due(change.incident.id)
            await self.outbox.deliver(change.incident.id)

    async def acknowledge(self, incident_id: int, user: str, say: Say | None = None) -> None:
        change = await self.incidents.acknowledge(incident_id, user)
        await self.escalations.run_pending(incident_id)
        await self.publish(incident_id, say)
        await self.paging.deliver(incident_id)  # the pages go quiet
        # Whoever acknowledges is a responder, wherever they pressed the button (the
        # announcement, a page or an escalation DM): bring them into the war room, private or
        # not. Only people shown the incident can acknowledge it: the command checks sight,
        # and the buttons are on messages sent to its channel, announcement and pages.
        if change.incident.channel_id:
            await self._invite(incident_id, [user])

    async def assign_role(
        self, incident_id: int, role: Role, user: str, by: str, say: Say | None = None
    ) -> None:
        await self._require_person(user)
        change = await self.incidents.assign_role(incident_id, role, user, by)
        if not change.changed:
            return
        await self.publish(incident_id, say)
        if change.incident.channel_id:
            await self._invite(incident_id, [user])

    async def handover(
        self, incident_id: int, role: Role, user: str, by: str, say: Say | None = None
    ) -> None:
        """`/incident handover @person [role]`: the role moves as with `assign_role` (the same
        right, invitation and announcement), on the timeline as a handover; the new holder
        gets a handover brief and the previous holder is told, by DM."""
        await self._require_person(user)
        change = await self.incidents.assign_role(incident_id, role, user, by, handover=True)
        name = self.services.policy.role(role).name
        if not change.changed:
            if say is not None:
                await say(
                    f"<@{user}> already holds {escape(name)} of incident #{incident_id}; "
                    "nothing changed."
                )
            return
        await self.publish(incident_id, say)
        if change.incident.channel_id:
            await self._invite(incident_id, [user])

    async def catch_up_on_join(self, channel_id: str, user: str) -> None:
        """Someone joined `channel_id`: if it is an incident's war room, their catch-up (see
        `CatchUps.on_join`) is queued and sent."""
        incident_id = await self.catchups.on_join(channel_id, user)
        if incident_id is not None:
            await self.deliver(incident_id, None)

    async def _require_person(self, user: str) -> None:
        """Roles go to people: a user Slack does not know, a deactivated account or a bot is
        refused before anything is stored (the form offers only members; a typed ID or a
        crafted submission may name anyone)."""
        found = await self.services.slack.person(user)
        if found is None:
            raise InvalidInput(Mrkdwn(f"There is no Slack user `{escape(user)}` here."))
        if found.deleted:
            raise InvalidInput(f"{found.name}'s account is deactivated; pick someone else.")
        if found.is_bot:
            raise InvalidInput(f"{found.name} is a bot; roles are for people.")

    async def _invite(self, incident_id: int, users: list[str]) -> None:
        snap = await self.incidents.snapshot(incident_id)
        try:
            await self.rooms.invite(snap, users)
        except SlackError as exc:
            await self.rooms.problem(snap, f"Could not invite everyone yet ({exc.code}).")

    async def post_update(
        self,
        incident_id: int,
        req: UpdateRequest,
        by: str,
        key: str | None = None,
        say: Say | None = None,
    ) -> None:
        change, _ = await self.incidents.post_update(incident_id, req, by, key)
        if not change.changed:
            return  # the same request again: it was posted the first time
        # What people wait for first: the update in the channel and the thread. The reminder
        # plan follows (recorded as pending with the change, so a crash here loses nothing).
        await self.deliver(incident_id, say)
        await self.escalations.run_pending(incident_id)
        await self.rooms.refresh(incident_id)

    async def quick_update(
        self,
        incident_id: int,
        text: str,
        by: str,
        say: Say | None = None,
        key: str | None = None,
    ) -> None:
        """`/incident update <text>`: keep the status, report the text as investigation
        status. `key` (the request's identity) makes a replay post nothing twice."""
        req = UpdateRequest(status=None, investigation=text)
        await self.post_update(incident_id, req, by, key=key, say=say)

    async def snooze(self, incident_id: int, minutes: int, by: str) -> datetime:
        """Put the next update off (the promise moves; see `Escalations.snooze`), and show
        the new promise in the topic and the headline. Returns the promise."""
        until = await self.escalations.snooze(incident_id, minutes, by)
        await self.rooms.refresh(incident_id)
        return until

    async def change_severity(
        self, incident_id: int, severity: int, by: str, say: Say | None = None
    ) -> None:
        change = await self.incidents.change_severity(incident_id, severity, by)
        if not change.changed:
            return
        await self.escalations.run_pending(incident_id)
        await self.publish(incident_id, say)
        # A drill brings in nobody from the severity's real audience: its pages go to the
        # people in the drill.
        if change.incident.channel_id and not change.incident.is_drill:
            await self._invite(incident_id, await self.rooms.audience(severity))
        await self.firing.fire_due(incident_id)  # page the new audience now

    async def mitigate(self, incident_id: int, by: str, say: Say | None = None) -> None:
        await self.incidents.mitigate(incident_id, by)
        await self.escalations.run_pending(incident_id)
        await self.publish(incident_id, say)

    async def resolve(
        self, incident_id: int, req: ResolveRequest, by: str, say: Say | None = None
    ) -> None:
        await self.incidents.resolve(incident_id, req, by)
        await self.escalations.run_pending(incident_id)
        await self.publish(incident_id, say)
        await self.paging.deliver(incident_id)  # resolve the pages

    async def close(
        self, incident_id: int, by: str, force: bool = False, say: Say | None = None
    ) -> None:
        """Close, post the summary, and archive the channel now or after the configured delay
        (the archive is an escalation step, so it happens even if this process stops). Action
        item reminders outlive the incident; every other pending step is cancelled."""
        change = await self.incidents.close(incident_id, by, force)
        await self.escalations.cancel(
            incident_id, "closed", keep={Kind.ACTION_REMINDER, Kind.ARCHIVE}
        )
        assert change.incident.closed_at is not None
        await self.escalations.plan_archive(incident_id, change.incident.closed_at)
        await self.publish(incident_id, say)
        await self.firing.tick()  # archive now when there is no delay

    async def retro_held(self, incident_id: int, by: str, say: Say, key: str | None = None) -> None:
        held = await self.escalations.retro_held(incident_id, by, key)
        if held is Held.REPLAY:
            return  # the same request again: it was recorded and said the first time
        if held is Held.BEFORE:
            await say(f"The retrospective of incident #{incident_id} was already recorded.")
            return
        text = f":white_check_mark: Retrospective held (recorded by <@{by}>)."
        await self._queue(incident_id, [Outgoing("channel", blocks.simple(text))])
        await self.publish(incident_id, say)

    async def post_retro_agenda(
        self, incident_id: int, by: str, say: Say, key: str | None = None
    ) -> None:
        """Post the agenda, with a line on the timeline that carries the request's key: the
        same request again finds it and posts nothing."""
        if key:
            async with self.services.db.session() as session:
                if await repo.event_by_key(session, key) is not None:
                    return
        snap = await self.incidents.snapshot(incident_id)
        await self.services.access.check("retro", by, snap)
        event = repo.event(
            incident_id, self.services.clock.now(), "retro_agenda", "Retrospective agenda posted"
        )
        event.source_key = key
        try:
            await self._queue(incident_id, self.rooms.announcements.retro_agenda(snap), event)
        except IntegrityError:
            return  # the same request, at the same moment, posted it
        await self.publish(incident_id, say)

    async def _queue(
        self, incident_id: int, items: list[Outgoing], event: TimelineEvent | None = None
    ) -> None:
        async with self.services.db.session() as session:
            if event is not None:
                session.add(event)
            enqueue(session, incident_id, self.services.clock.now(), items)

    async def escalations_text(self, incident_id: int) -> str:
        snap = await self.incidents.snapshot(incident_id)
        rows = [
            {**row.model_dump(), "label": describe_key(row.key)}
            for row in await self.escalations.rows(incident_id)
        ]
        pages = [
            {
                "target": self.paging.describe(call.target),
                "action": call.action,
                "state": call.state,
                "at": call.sent_at or call.created_at,
                "reason": call.reason,
                "outcome": call.outcome,
                "attempts": call.attempts,
                "remote_state": call.remote_state,
                "remote_by": call.remote_by,
                "remote_at": call.remote_at,
            }
            for call in await self.paging.calls(incident_id)
        ]
        return self.rooms.render("escalations_status.md.j2", snap, rows=rows, pages=pages)

    # --- pagers ---------------------------------------------------------------------------

    async def page(
        self, incident_id: int, target: str, by: str, message: str, key: str, say: Say
    ) -> None:
        """`/incident page <target> [message]`: page one target by hand, now."""
        if not await self.paging.page_by_hand(incident_id, target, by, message, key):
            return  # the same request again: it paged the first time
        await self.deliver(incident_id, None)
        await self.paging.deliver(incident_id)
        name = escape(self.paging.describe(target))
        call = await self.paging.by_source(f"{key}:{target}")
        if call is None or call.state == "sent":
            await say(f":pager: Paged {name}.")
        elif call.state == "failed":
            await say(
                f":warning: {name} refused the page and it is not retried: "
                f"{escape(call.outcome)}. Page the people another way."
            )
        else:
            await say(
                f":hourglass: {name} did not take the page yet ({escape(call.outcome)}); "
                "Warroom keeps trying."
            )

    async def pager_event(
        self, provider: str, event_id: str, dedup: str, state: str, who: str, title: str = ""
    ) -> str:
        """What a provider's webhook says someone did with a page: "acknowledged" (the
        incident is acknowledged, as in Slack), "resolved", or anything else (said and put on
        the timeline). Returns what was done, for the webhook's answer and the log."""
        found = incident_of(self.services.policy.paging.dedup_prefix, dedup) if dedup else None
        if found is None and not dedup and title:
            # No incident key (PagerDuty leaves it out on some incidents opened through the
            # Events API): the title is the page's summary, which names the incident.
            found = await self.paging.paged_by_title(title, provider.lower())
        if found is None:
            return "ignored: not a page Warroom sent"
        incident_id, target = found
        marker = f"{provider.lower()}:{event_id}"
        if not await self._first_delivery(marker):
            return "ignored: delivered before"
        try:
            return await self._pager_event(provider, incident_id, target, state, who)
        except BaseException:
            # Not done: forget the delivery, so the provider's retry (it gets a 503) does it.
            async with self.services.db.session() as session:
                await session.exec(
                    delete(ProcessedEvent).where(col(ProcessedEvent.event_id) == marker)
                )
            raise

    async def _pager_event(
        self, provider: str, incident_id: int, target: str, state: str, who: str
    ) -> str:
        row = await self.paging.record_remote(incident_id, target, state, who)
        if row is None:
            return "ignored: Warroom never paged that target for that incident"
        name = escape(self.paging.describe(target))
        if state == "acknowledged":
            change = await self.incidents.acknowledge_on_pager(incident_id, who, provider)
            if change.changed:
                await self.escalations.run_pending(incident_id)
                await self.publish(incident_id, None)
                await self.paging.deliver(incident_id)
                return f"incident #{incident_id} acknowledged"
            text = f":pager: {escape(who)} acknowledged the page to {name}."
        elif state == "resolved":
            text = (
                f":pager: {escape(who)} resolved the page to {name} in {escape(provider)}. "
                "The incident stays open until it is resolved here."
            )
        else:
            text = (
                f":pager: {escape(provider)}: the page to {name} was {escape(state)} "
                f"by {escape(who)}."
            )
        event = repo.event(incident_id, self.services.clock.now(), "pager", text)
        await self._queue(incident_id, [Outgoing("channel", blocks.simple(text))], event)
        await self.deliver(incident_id, None)
        return f"incident #{incident_id}: {state} recorded"

    async def _first_delivery(self, key: str) -> bool:
        try:
            async with self.services.db.session() as session:
                session.add(ProcessedEvent(event_id=key, received_at=self.services.clock.now()))
        except IntegrityError:
            return False
        return True
