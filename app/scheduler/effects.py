"""What firing a step does in Slack. Each part (one DM, the invite, the channel post) is done
at most once per row: `mark_done` records it before the next part starts. A part Slack refuses
for good is ended with a note instead of being retried."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from app.domain.escalation import RECURRING_REMINDER, Kind
from app.domain.playbooks import Invite, Step, parse_run_key
from app.domain.policy import EscalationStep
from app.domain.roles import Role
from app.messages import blocks
from app.messages.blocks import Message
from app.messages.mrkdwn import Mrkdwn, clock, escape, is_user_id, user
from app.services.checklists import DONE_BUTTON, Checklists
from app.services.context import Services
from app.services.escalations import describe_key
from app.services.outbox import Outbox
from app.services.paging import Paging
from app.services.ports import SlackError
from app.services.rooms import Rooms
from app.store import repo
from app.store.models import ActionItem, EscalationRow, Incident

MarkDone = Callable[[EscalationRow, str], Awaitable[None]]

log = logging.getLogger(__name__)


class NotYet(Exception):
    """The step must wait (e.g. the archive waits for the closing summary to go out)."""


class Effects:
    def __init__(
        self, services: Services, rooms: Rooms, paging: Paging, checklists: Checklists
    ) -> None:
        self.services = services
        self.rooms = rooms
        self.paging = paging
        self.checklists = checklists

    async def perform(self, row: EscalationRow, incident: Incident, mark_done: MarkDone) -> None:
        assert incident.id is not None
        async with self.services.db.session() as session:
            snap = repo.snapshot(incident, await repo.current_roles(session, incident.id))
        kind = Kind(row.kind)
        if kind is Kind.PAGE:
            await self._page(row, snap, mark_done)
        elif kind is Kind.LADDER:
            await self._escalate(row, snap, mark_done)
        elif kind is Kind.UPDATE_REMINDER:
            remind = self._update_reminder if row.key == RECURRING_REMINDER else self._update_due
            await self._once(row, snap, "channel", mark_done, lambda: remind(snap))
        elif kind is Kind.UPDATE_MISSED:
            await self._update_missed(row, snap, mark_done)
        elif kind is Kind.RETRO_REMINDER:
            await self._once(row, snap, "channel", mark_done, lambda: self._retro_reminder(snap))
        elif kind is Kind.ACTION_REMINDER:
            await self._action_reminder(row, snap, mark_done)
        elif kind is Kind.ARCHIVE:
            await self._once(row, snap, "archive", mark_done, lambda: self._archive(snap))
        elif kind is Kind.PLAYBOOK:
            await self._playbook_step(row, snap, mark_done)
        elif kind is Kind.CHECKLIST_DUE:
            await self._checklist_nudge(row, snap, mark_done)

    async def _once(
        self,
        row: EscalationRow,
        snap: Any,
        part: str,
        mark_done: MarkDone,
        action: Callable[[], Awaitable[Any]],
    ) -> bool:
        """Do one part unless it is done. A part Slack refuses for good (a user who cannot be
        messaged, a room that takes no posts, an invalid message) is ended with a note, not
        retried; outages and a refused token raise, and the step is retried. Returns False
        when the part was refused."""
        if part in row.done:
            return True
        refused = False
        try:
            await action()
        except SlackError as exc:
            if exc.retryable:
                raise
            refused = True
            what = self._describe_part(part)
            await self.tell(
                snap,
                f"{describe_key(row.key)}: could not {what} ({escape(exc.code)}); not retried.",
            )
        await mark_done(row, part)
        return not refused

    @staticmethod
    def _describe_part(part: str) -> str:
        kind, _, rest = part.partition(":")
        return {
            # The ID comes from a user group or the policy: a mention only when it is one.
            "dm": f"send the direct message to {user(rest)}",
            "channel": "post in the war room",
            "invite": "invite everyone to the war room",
            "archive": "archive the war room",
            "unreachable": "report the user groups it could not read",
            "bookmark": "add the bookmark",
            "checklist": "post the checklist",
        }.get(kind, part)

    async def tell(self, snap: Any, text: str) -> None:
        """Make a problem visible: on the timeline, and in the war room, or by DM to the
        commander when the room cannot take it."""
        async with self.services.db.session() as session:
            session.add(repo.event(snap.id, self.services.clock.now(), "problem", text))
        if snap.channel_id:
            try:
                await self.services.slack.post(snap.channel_id, blocks.simple(f":warning: {text}"))
                return
            except SlackError as exc:
                log.warning("incident %s: could not post %r: %s", snap.id, text, exc.code)
        if snap.commander and snap.commander != self.services.bot_user_id:
            try:
                await self.services.slack.dm(
                    snap.commander, blocks.simple(f":warning: Incident #{snap.id}: {text}")
                )
            except SlackError as exc:
                log.warning("incident %s: could not tell the commander: %s", snap.id, exc.code)

    def _people(self, functions: list[str]) -> list[str]:
        return self.services.policy.directory.members(functions)

    async def _targets(self, row: EscalationRow, snap: Any) -> list[str]:
        """Who a page or escalation step reaches: the people its functions name, or, in a
        drill, the people in the drill and nobody else (never the severity's real audience)."""
        if snap.is_drill:
            return await self.rooms.in_drill(snap)
        return self._people(row.targets)

    async def _dm(self, user: str, message: Message) -> None:
        await self.services.slack.dm(user, message)

    async def _reachable(
        self, row: EscalationRow, snap: Any, ids: list[str], mark_done: MarkDone
    ) -> list[str]:
        """Everyone the targets name; a user group Slack does not know is reported in the
        war room (once) and the others are still reached."""
        people, unreachable = await self.rooms.reachable(ids)
        if unreachable and snap.channel_id:  # without a room yet, on the step's retry
            await self._once(
                row,
                snap,
                "unreachable",
                mark_done,
                lambda: self.rooms.report_unreachable(snap, unreachable),
            )
        return people

    async def _dm_each(
        self,
        row: EscalationRow,
        snap: Any,
        ids: list[str],
        message: Message,
        mark_done: MarkDone,
    ) -> None:
        """DM everyone at once; each DM is recorded as done on its own, so a failure of one
        leaves the others sent and not repeated."""
        # A drill's people are users already: no user group is read for a drill.
        reached = ids if snap.is_drill else await self._reachable(row, snap, ids, mark_done)
        people = [p for p in reached if p != self.services.bot_user_id]
        results = await asyncio.gather(
            *(
                self._once(row, snap, f"dm:{p}", mark_done, functools.partial(self._dm, p, message))
                for p in people
            ),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def _ack_message(self, template: str, snap: Any, **extra: Any) -> Message:
        text = self.rooms.render(template, snap, **extra)
        parts: list[dict[str, Any]] = blocks.sections(text)
        if snap.acknowledged_at is None:
            parts.append(
                {
                    "type": "actions",
                    "elements": [
                        blocks.button("Acknowledge", "incident_ack", str(snap.id), "primary")
                    ],
                }
            )
        return blocks.message(text, parts)

    async def _post(self, snap: Any, message: Message) -> None:
        if not snap.channel_id:
            # Not done, only not possible yet: the repair sweep creates the channel, and the
            # step's retry posts it then.
            raise NotYet("the war room has no channel yet")
        await self.services.slack.post(snap.channel_id, message)

    def _pagers(self, row: EscalationRow, snap: Any) -> list[str]:
        """The pager targets the step's functions name; none for a drill (its people are in
        the room, and a drill never wakes anyone)."""
        if snap.is_drill:
            return []
        return self.services.policy.directory.pagers(row.targets)

    async def _page_pagers(
        self, row: EscalationRow, snap: Any, reason: str, mark_done: MarkDone
    ) -> list[str]:
        """Ask for the step's pages first: they are stored at once and go out whatever Slack
        does with the DMs and posts after them."""
        pagers = self._pagers(row, snap)
        if pagers and "pagers" not in row.done:
            await self.paging.trigger(snap.id, pagers, reason=reason, source_key=f"step:{row.id}")
            await mark_done(row, "pagers")
        return pagers

    def _pager_names(self, pagers: list[str]) -> str:
        return ", ".join(self.paging.describe(p) for p in pagers)

    async def _page(self, row: EscalationRow, snap: Any, mark_done: MarkDone) -> None:
        pagers = await self._page_pagers(row, snap, f"Sev{snap.severity} declared", mark_done)
        ids = await self._targets(row, snap)
        await self._dm_each(row, snap, ids, self._ack_message("page_dm.md.j2", snap), mark_done)
        mentions = Mrkdwn(" ".join(user(i) for i in ids))
        text = self.rooms.render(
            "page_channel.md.j2", snap, mentions=mentions, pagers=self._pager_names(pagers)
        )
        await self._once(
            row, snap, "channel", mark_done, lambda: self._post(snap, blocks.simple(text))
        )

    def _rung(self, row: EscalationRow, severity: int) -> EscalationStep | None:
        ladder = self.services.policy.ladder(severity)
        if row.step is not None and 0 <= row.step < len(ladder):
            return ladder[row.step]
        return None

    async def _escalate(self, row: EscalationRow, snap: Any, mark_done: MarkDone) -> None:
        rung = self._rung(row, snap.severity)
        say = rung.say if rung else "Escalating."
        pagers = await self._page_pagers(
            row, snap, f"escalation step {(row.step or 0) + 1}: {say}", mark_done
        )
        ids = await self._targets(row, snap)
        # A drill brings nobody new in: its people are in the room already.
        invite = (rung is None or rung.invite) and not snap.is_drill
        if invite and snap.channel_id:  # else on the retry (NotYet)
            people = await self._reachable(row, snap, ids, mark_done)
            await self._once(
                row, snap, "invite", mark_done, lambda: self.rooms.invite(snap, people)
            )
        if rung is None or rung.dm:
            message = self._ack_message("escalation_dm.md.j2", snap, say=say)
            await self._dm_each(row, snap, ids, message, mark_done)
        text = self.rooms.render(
            "escalation_channel.md.j2",
            snap,
            say=say,
            number=(row.step or 0) + 1,
            mentions=Mrkdwn(" ".join(user(i) for i in ids)),
            pagers=self._pager_names(pagers),
            unconfigured=(
                ""
                if snap.is_drill
                else ", ".join(
                    f
                    for f in row.targets
                    if not self._people([f]) and not self.services.policy.directory.pagers([f])
                )
            ),
            suggest=Mrkdwn(
                " ".join(
                    user(i)
                    for i in self._people(rung.suggest if rung and not snap.is_drill else [])
                )
            ),
            checklist=rung.checklist if rung else [],
        )
        await self._once(
            row, snap, "channel", mark_done, lambda: self._post(snap, blocks.simple(text))
        )

    def _with_update_buttons(self, snap: Any, text: str, snooze: bool = True) -> Message:
        buttons = [blocks.button("Post update", "incident_update", str(snap.id), "primary")]
        if snooze:
            buttons += [
                blocks.button(f"Snooze {m} min", f"reminder_snooze_{m}", f"{snap.id}:{m}")
                for m in self.services.policy.escalation.snooze_minutes
            ]
        return blocks.message(
            text, [*blocks.sections(text), {"type": "actions", "elements": buttons}]
        )

    async def _public_ago(self, incident_id: int) -> timedelta | None:
        """How long since the incident's last public update; None when it has no public
        presence (the reminders then say nothing of the status page)."""
        async with self.services.db.session() as session:
            at = await repo.last_published_at(session, incident_id)
        return None if at is None else self.services.clock.now() - at

    async def _update_reminder(self, snap: Any) -> None:
        """The room's reminder every cadence once a promise was missed."""
        sev = self.services.policy.severity(snap.severity)
        text = self.rooms.render(
            "update_reminder.md.j2",
            snap,
            cadence=sev.update_every_minutes,
            public_ago=await self._public_ago(snap.id),
        )
        await self._post(snap, self._with_update_buttons(snap, text))

    async def _update_due(self, snap: Any) -> None:
        """Shortly before the promised update."""
        left = snap.next_update_at - self.services.clock.now()
        text = self.rooms.render(
            "update_due.md.j2", snap, left=left, public_ago=await self._public_ago(snap.id)
        )
        await self._post(snap, self._with_update_buttons(snap, text))

    async def _update_missed(self, row: EscalationRow, snap: Any, mark_done: MarkDone) -> None:
        """The promised update did not come: on the timeline, a DM to the commander, and a
        line in the war room. Each part once."""
        if "timeline" not in row.done:
            due = clock(snap.next_update_at, self.services.policy.workspace.timezone)
            async with self.services.db.session() as session:
                session.add(
                    repo.event(
                        snap.id,
                        self.services.clock.now(),
                        "update_missed",
                        f"Update promised by {due} not posted; the commander was reminded",
                    )
                )
            await mark_done(row, "timeline")
        commander = snap.commander
        if commander and is_user_id(commander) and commander != self.services.bot_user_id:
            text = self.rooms.render("update_missed_dm.md.j2", snap)
            # Snoozing belongs in the room (the buttons there); the DM offers the form.
            message = self._with_update_buttons(snap, text, snooze=False)
            await self._once(
                row,
                snap,
                f"dm:{commander}",
                mark_done,
                functools.partial(self._dm, commander, message),
            )
        text = self.rooms.render("update_missed.md.j2", snap)
        await self._once(
            row,
            snap,
            "channel",
            mark_done,
            lambda: self._post(snap, self._with_update_buttons(snap, text)),
        )

    async def _retro_reminder(self, snap: Any) -> None:
        hours = self.services.policy.escalation.retro_within_hours
        text = self.rooms.render("retro_reminder.md.j2", snap, hours=hours)
        button = blocks.button("Retrospective held", "retro_held", str(snap.id), "primary")
        message = blocks.message(
            text, [*blocks.sections(text), {"type": "actions", "elements": [button]}]
        )
        await self._post(snap, message)

    async def _action_reminder(self, row: EscalationRow, snap: Any, mark_done: MarkDone) -> None:
        """The owner's daily DM about an open item. It quotes the incident's title and the
        item's text, so an owner who may no longer see the incident (taken out of a private
        incident's channel since the item was given) gets none: the reminders go on being
        planned and reach them again if they are let back in."""
        async with self.services.db.session() as session:
            item = await session.get(ActionItem, row.step or 0)
        if item is None or not item.owner or item.done_at is not None:
            return
        if not await self.services.access.can_see(snap, item.owner, strict=True):
            log.info("Reminder for action item A%s not sent: its owner may not see it", item.id)
            return
        text = self.services.renderer.render("action_reminder.md.j2", incident=snap, a=item)
        button = blocks.button("Done", "action_item_done", str(item.id), "primary")
        message = blocks.message(
            text, [*blocks.sections(text), {"type": "actions", "elements": [button]}]
        )
        owner = item.owner
        await self._once(
            row, snap, f"dm:{owner}", mark_done, lambda: self.services.slack.dm(owner, message)
        )

    # --- playbooks --------------------------------------------------------------------------

    async def _playbook_step(self, row: EscalationRow, snap: Any, mark_done: MarkDone) -> None:
        """One step of a playbook; each of its parts once. On the timeline when it is done
        ("Playbook <name>: <what>"); a part Slack refuses is said instead (see `_once`)."""
        ref = parse_run_key(row.key)
        book = self.services.policy.playbook(ref.playbook) if ref else None
        if ref is None or book is None or not 0 <= ref.index < len(book.steps):
            await self._timeline(
                row, snap, mark_done, f"{describe_key(row.key)}: no longer in the policy; skipped"
            )
            return
        step = book.steps[ref.index]
        worked = True
        if step.invite is not None:
            worked = await self._playbook_invite(row, snap, step.invite, mark_done)
        elif step.post is not None:
            text = self.rooms.render(step.post, snap)
            worked = await self._once(
                row, snap, "channel", mark_done, lambda: self._post(snap, blocks.simple(text))
            )
        elif step.checklist is not None:
            worked = await self._playbook_checklist(row, snap, book.name, step, mark_done)
        elif step.bookmark is not None:
            mark = step.bookmark
            worked = await self._once(
                row, snap, "bookmark", mark_done, lambda: self._bookmark(snap, mark.title, mark.url)
            )
        elif step.page is not None:
            # A drill pages no pager (`Paging.trigger` asks nobody for it).
            if "pagers" not in row.done:
                await self.paging.trigger(
                    snap.id,
                    list(step.page),
                    reason=f"Playbook {book.name}",
                    source_key=f"step:{row.id}",
                )
                await mark_done(row, "pagers")
        if worked:
            await self._timeline(row, snap, mark_done, f"Playbook {book.name}: {step.describe()}")

    async def _timeline(
        self, row: EscalationRow, snap: Any, mark_done: MarkDone, text: str
    ) -> None:
        if "timeline" in row.done:
            return
        async with self.services.db.session() as session:
            session.add(
                repo.event(snap.id, self.services.clock.now(), "playbook_step", text, key=row.key)
            )
        await mark_done(row, "timeline")

    async def _bookmark(self, snap: Any, title: str, url: str) -> None:
        if not snap.channel_id:
            raise NotYet("the war room has no channel yet")
        await self.services.slack.add_bookmark(snap.channel_id, title, url)

    async def _playbook_invite(
        self, row: EscalationRow, snap: Any, invite: Invite, mark_done: MarkDone
    ) -> bool:
        if not snap.channel_id:
            raise NotYet("the war room has no channel yet")
        if snap.is_drill:
            return True  # a drill brings nobody new in: its people are in the room already
        ids = [*invite.users, *invite.groups, *self._people(invite.functions)]
        people = await self._reachable(row, snap, ids, mark_done)
        return await self._once(
            row, snap, "invite", mark_done, lambda: self.rooms.invite(snap, people)
        )

    async def _playbook_checklist(
        self, row: EscalationRow, snap: Any, playbook: str, step: Step, mark_done: MarkDone
    ) -> bool:
        """Store the tasks, post the checklist's message, record where it is. A firing that
        finds the tasks stored already (a crash or a lost answer since) looks for its message
        in the room before posting it."""
        if not snap.channel_id:
            raise NotYet("the war room has no channel yet")
        again = bool(await self.checklists.of_run(snap.id, row.key))
        tasks = await self.checklists.create(snap.id, playbook, row.key, list(step.checklist or []))
        if "checklist" in row.done or any(t.message_ts for t in tasks):
            return True
        key = f"playbook-checklist:{row.id}"

        async def post() -> None:
            channel = snap.channel_id
            ts = await self.services.slack.find_posted(channel, key) if again else None
            if ts is None:
                ts = await self.services.slack.post(
                    channel, self.checklists.message(snap, tasks), key=key
                )
            await self.checklists.posted(tasks, channel, ts)

        return await self._once(row, snap, "checklist", mark_done, post)

    async def _checklist_nudge(self, row: EscalationRow, snap: Any, mark_done: MarkDone) -> None:
        """An overdue task: its role's holder is told once, by DM (the room when nobody holds
        the role)."""
        task = await self.checklists.get(row.step or 0)
        if task is None or task.done_at is not None:
            return
        holder = snap.roles.get(Role(task.role)) if task.role else None
        role = self.services.policy.role(Role(task.role)).name if task.role else ""
        text = self.rooms.render(
            "checklist_nudge.md.j2",
            snap,
            t=task,
            holder=holder,
            role=role,
        )
        button = blocks.button("Done", DONE_BUTTON, f"{snap.id}:{task.id}", "primary")
        message = blocks.message(
            text, [*blocks.sections(text), {"type": "actions", "elements": [button]}]
        )
        if holder and is_user_id(holder) and holder != self.services.bot_user_id:
            await self._once(
                row, snap, f"dm:{holder}", mark_done, functools.partial(self._dm, holder, message)
            )
        else:
            await self._once(row, snap, "channel", mark_done, lambda: self._post(snap, message))

    async def _archive(self, snap: Any) -> None:
        """Archive the war room once the closing summary (and anything queued before it) is
        posted: an archived channel takes no more messages."""
        if not snap.channel_id:
            return
        if await Outbox(self.services).pending_count(snap.id):
            raise NotYet("messages still queued for the channel")
        try:
            await self.services.slack.archive(snap.channel_id)
        except SlackError as exc:
            if exc.code != "already_archived":
                raise
        async with self.services.db.session() as session:
            session.add(
                repo.event(snap.id, self.services.clock.now(), "archived", "Channel archived")
            )
