"""The Slack side of each use case: the channel, its topic, the pinned notification, the
announcement and its thread.

Declaring is written as a list of steps that each record their result on the incident row and
are skipped when already done, so running `open_war_room` again finishes an interrupted declare
instead of repeating it. Independent Slack calls run concurrently.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from zoneinfo import ZoneInfo

from app.domain.naming import channel_name
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks
from app.messages.blocks import Message
from app.messages.mrkdwn import escape
from app.services.context import Services
from app.slack.gateway import SlackError
from app.store import repo
from app.store.models import Incident, StatusUpdate

log = logging.getLogger(__name__)


class WarRoom:
    def __init__(self, services: Services) -> None:
        self.s = services
        self._announce_id: str | None = None
        self._building: dict[int, asyncio.Lock] = {}

    # --- rendering ------------------------------------------------------------------------

    def _ctx(self, i: IncidentSnapshot, **extra: Any) -> dict[str, Any]:
        return {
            "i": i,
            "sev": self.s.policy.severity(i.severity),
            "links": self.s.policy.links,
            **extra,
        }

    def render(self, template: str, i: IncidentSnapshot, **extra: Any) -> str:
        return self.s.renderer.render(template, **self._ctx(i, **extra))

    def notification(self, i: IncidentSnapshot) -> Message:
        return blocks.initial_notification(i, self.render("initial_notification.md.j2", i))

    def announcement(self, i: IncidentSnapshot) -> Message:
        return blocks.announcement(
            i,
            self.render("announcement_headline.md.j2", i),
            self.render("initial_notification.md.j2", i),
        )

    async def topic(self, i: IncidentSnapshot) -> str:
        async def name(role: Role) -> str:
            holder = i.roles.get(role)
            return await self.s.slack.user_name(holder) if holder else "-"

        names = dict(
            zip(
                ("commander", "tech_lead", "comms"),
                await asyncio.gather(*(name(r) for r in Role)),
                strict=True,
            )
        )
        return self.render("topic.txt.j2", i, names=names)

    # --- declaring ------------------------------------------------------------------------

    async def open_war_room(self, incident_id: int, claimed: bool = False) -> None:
        """Create whatever the incident's war room still lacks; safe to run again.

        Holds the incident's repair lease meanwhile (unless the caller already does), so no
        other replica builds the same room; a lease held elsewhere means it is being built.
        """
        from app.services.recovery import claim, release

        lock = self._building.setdefault(incident_id, asyncio.Lock())
        try:
            async with lock:
                if not claimed and not await claim(self.s, incident_id):
                    return
                try:
                    await self._open_war_room(incident_id)
                finally:
                    if not claimed:
                        await release(self.s, incident_id)
        finally:
            if not lock.locked():
                self._building.pop(incident_id, None)

    async def _open_war_room(self, incident_id: int) -> None:
        async with self.s.db.session() as session:
            incident = await repo.get(session, incident_id)
        if incident is None:
            raise LookupError(incident_id)
        if not incident.channel_id:
            try:
                await self._create_channel(incident)
            except SlackError as exc:
                await self._tell_declarer(
                    incident,
                    blocks.simple(
                        f":warning: Incident #{incident_id} is declared and saved, but its "
                        f"channel could not be created yet ({escape(exc.code)}). Warroom keeps "
                        "retrying; if it persists, ask a Slack admin to check the bot's "
                        "`channels:manage` / `groups:write` scopes."
                    ),
                )
                raise
        snap = await self.snapshot(incident_id)
        first_run = not incident.notification_ts
        await asyncio.gather(
            self._brief_commander(snap) if first_run else asyncio.sleep(0),
            self._invite_people(snap),
            self._post_notification(incident, snap),
            self._announce(incident, snap),
            self._set_topic(snap),
            self._tell_declarer(
                incident,
                blocks.simple(
                    f"Incident #{snap.id} declared: {blocks.severity_emoji(snap.severity)} "
                    f"Sev{snap.severity} - {escape(snap.title)}. "
                    f"Join the war room: <#{snap.channel_id}>"
                ),
            ),
        )
        async with self.s.db.session() as session:
            await repo.set_fields(session, incident_id, war_room_ready=True)

    async def _brief_commander(self, i: IncidentSnapshot) -> None:
        if not i.commander:
            return
        policy = self.s.policy.role(Role.COMMANDER)
        brief = self.render("role_brief.md.j2", i, role=policy)
        try:
            await self.s.slack.dm(i.commander, blocks.simple(brief))
        except SlackError as exc:
            log.warning("incident %s: commander brief not sent: %s", i.id, exc.code)

    async def snapshot(self, incident_id: int) -> IncidentSnapshot:
        async with self.s.db.session() as session:
            snap = await repo.load_snapshot(session, incident_id)
        assert snap is not None
        return snap

    async def _create_channel(self, incident: Incident) -> None:
        assert incident.id is not None
        fmt = self.s.policy.workspace.channel_name_format
        day = incident.declared_at.astimezone(ZoneInfo(self.s.policy.workspace.timezone)).date()
        channel = await self.s.slack.create_channel(
            lambda attempt: channel_name(fmt, incident.id or 0, incident.title, day, attempt),
            private=incident.is_private,
        )
        incident.channel_id, incident.channel_name = channel["id"], channel["name"]
        async with self.s.db.session() as session:
            await repo.set_fields(
                session, incident.id, channel_id=channel["id"], channel_name=channel["name"]
            )
            session.add(
                repo.event(
                    incident.id,
                    self.s.clock.now(),
                    "channel_created",
                    f"Channel #{channel['name']} created",
                    channel=channel["id"],
                )
            )

    async def audience(self, severity: int) -> list[str]:
        return await self.s.slack.expand(self.s.policy.audience(severity))

    async def _invite_people(self, i: IncidentSnapshot) -> None:
        wanted = [i.declared_by, *i.roles.values()]
        try:
            wanted += await self.audience(i.severity)
        except SlackError as exc:
            await self.problem(i, f"Could not read the on-call user groups ({exc.code}).")
        await self.invite(i, wanted)

    async def invite(self, i: IncidentSnapshot, users: list[str]) -> None:
        assert i.channel_id
        users = [u for u in dict.fromkeys(users) if u and u != self.s.bot_user_id]
        refused = await self.s.slack.invite(i.channel_id, users)
        if refused:
            mentions = ", ".join(f"<@{u}>" for u in refused)
            await self.problem(i, f"Could not invite {mentions}. Add them by hand with `/invite`.")

    async def _post_notification(self, incident: Incident, i: IncidentSnapshot) -> None:
        assert i.channel_id
        ts = incident.notification_ts
        if not ts:
            ts = await self.s.slack.post(i.channel_id, self.notification(i))
            async with self.s.db.session() as session:
                await repo.set_fields(session, i.id, notification_ts=ts)
        if not incident.notification_pinned:
            try:
                await self.s.slack.pin(i.channel_id, ts)
            except SlackError as exc:
                await self.problem(i, f"Could not pin the incident summary ({exc.code}).")
                return
            async with self.s.db.session() as session:
                await repo.set_fields(session, i.id, notification_pinned=True)

    async def announce_channel_id(self) -> str | None:
        if self._announce_id is None:
            self._announce_id = await self.s.slack.find_channel(self.s.announce_channel)
        return self._announce_id

    async def _announce(self, incident: Incident, i: IncidentSnapshot) -> None:
        if i.is_private or incident.announcement_ts:
            return
        try:
            channel = await self.announce_channel_id()
            if channel is None:
                await self.problem(
                    i,
                    f"The announcement channel #{escape(self.s.announce_channel)} was not found: "
                    "create it or set WARROOM_ANNOUNCE_CHANNEL.",
                )
                return
            ts = await self._post_joining(channel, self.announcement(i))
        except SlackError as exc:
            await self.problem(i, f"Could not post the announcement ({exc.code}).")
            return
        async with self.s.db.session() as session:
            await repo.set_fields(
                session, i.id, announcement_channel_id=channel, announcement_ts=ts
            )

    async def _post_joining(self, channel: str, message: Message) -> str:
        try:
            return await self.s.slack.post(channel, message)
        except SlackError as exc:
            if exc.code != "not_in_channel":
                raise
        await self.s.slack.join(channel)
        return await self.s.slack.post(channel, message)

    async def _set_topic(self, i: IncidentSnapshot) -> None:
        if not i.channel_id:
            return
        try:
            await self.s.slack.set_topic(i.channel_id, await self.topic(i))
        except SlackError as exc:
            log.warning("topic of incident %s not set: %s", i.id, exc.code)

    async def _tell_declarer(self, incident: Incident, message: Message) -> None:
        try:
            if incident.reply_url:
                await self.s.slack.respond(incident.reply_url, message)
            else:
                await self.s.slack.dm(incident.declared_by, message)
        except SlackError as exc:
            log.warning("could not tell the declarer of incident %s: %s", incident.id, exc.code)

    # --- keeping messages current ---------------------------------------------------------

    async def refresh(self, incident_id: int) -> IncidentSnapshot:
        """Bring the topic, pinned notification and announcement headline up to date."""
        async with self.s.db.session() as session:
            incident = await repo.get(session, incident_id)
            assert incident is not None
            i = repo.snapshot(incident, await repo.current_roles(session, incident_id))
        calls = [self._set_topic(i)]
        if i.channel_id and incident.notification_ts:
            calls.append(self._edit(i.channel_id, incident.notification_ts, self.notification(i)))
        if incident.announcement_channel_id and incident.announcement_ts:
            calls.append(
                self._edit(
                    incident.announcement_channel_id,
                    incident.announcement_ts,
                    self.announcement(i),
                )
            )
        await asyncio.gather(*calls)
        return i

    async def _edit(self, channel: str, ts: str, message: Message) -> None:
        try:
            await self.s.slack.update(channel, ts, message)
        except SlackError as exc:
            log.warning("could not edit %s/%s: %s", channel, ts, exc.code)

    async def to_channel_and_thread(
        self, incident_id: int, message: Message, broadcast: bool = False
    ) -> tuple[str | None, str | None]:
        """Post in the incident channel and under the announcement; returns both ts."""
        async with self.s.db.session() as session:
            incident = await repo.get(session, incident_id)
        assert incident is not None

        async def in_channel() -> str | None:
            if not incident.channel_id:
                return None
            return await self.s.slack.post(incident.channel_id, message)

        async def in_thread() -> str | None:
            if not (incident.announcement_channel_id and incident.announcement_ts):
                return None
            return await self.s.slack.post(
                incident.announcement_channel_id,
                message,
                thread_ts=incident.announcement_ts,
                broadcast=broadcast,
            )

        results = await asyncio.gather(in_channel(), in_thread(), return_exceptions=True)
        out: list[str | None] = []
        for result in results:
            if isinstance(result, BaseException):
                log.warning("incident %s: post failed: %s", incident_id, result)
                out.append(None)
            else:
                out.append(result)
        return out[0], out[1]

    async def problem(self, i: IncidentSnapshot, text: str) -> None:
        """Say in the war room what did not work, and keep it on the timeline."""
        async with self.s.db.session() as session:
            session.add(repo.event(i.id, self.s.clock.now(), "problem", text))
        if i.channel_id:
            try:
                await self.s.slack.post(i.channel_id, blocks.simple(f":warning: {text}"))
            except SlackError as exc:
                log.warning("incident %s: could not report %r: %s", i.id, text, exc.code)

    # --- announcing changes ---------------------------------------------------------------

    async def acknowledged(self, i: IncidentSnapshot, by: str) -> None:
        sev = self.s.policy.severity(i.severity)
        target = sev.response_target_minutes
        within = (
            target is not None
            and i.time_to_acknowledge is not None
            and i.time_to_acknowledge.total_seconds() <= max(target, 1) * 60
        )
        text = self.render("acknowledged.md.j2", i, by=by, within_target=within)
        await asyncio.gather(
            self.to_channel_and_thread(i.id, blocks.simple(text)), self.refresh(i.id)
        )

    async def role_assigned(self, i: IncidentSnapshot, role: Role, user: str, by: str) -> None:
        policy = self.s.policy.role(role)
        said = self.render("role_assigned.md.j2", i, user=user, role=policy, by=by)
        brief = self.render("role_brief.md.j2", i, role=policy)

        async def dm() -> None:
            try:
                await self.s.slack.dm(user, blocks.simple(brief))
            except SlackError as exc:
                await self.problem(i, f"Could not send <@{user}> the role brief ({exc.code}).")

        async def announce() -> None:
            if i.channel_id:
                await self.s.slack.post(i.channel_id, blocks.simple(said))

        await asyncio.gather(announce(), dm(), self.invite(i, [user]), self.refresh(i.id))

    async def update_posted(self, i: IncidentSnapshot, update: StatusUpdate) -> None:
        text = self.render("update.md.j2", i, u=_UpdateView(update))
        channel_ts, thread_ts = await self.to_channel_and_thread(i.id, blocks.simple(text))
        async with self.s.db.session() as session:
            row = await session.get(StatusUpdate, update.id)
            if row is not None:
                row.channel_ts, row.thread_ts = channel_ts, thread_ts
                session.add(row)
        await self.refresh(i.id)

    async def severity_changed(self, i: IncidentSnapshot, old: int, by: str) -> None:
        text = self.render("severity_changed.md.j2", i, old=old, by=by)
        await asyncio.gather(
            self.to_channel_and_thread(i.id, blocks.simple(text), broadcast=True),
            self.refresh(i.id),
            self._invite_people(i),
        )

    async def mitigated(self, i: IncidentSnapshot, by: str) -> None:
        text = self.render("mitigated.md.j2", i, by=by)
        await asyncio.gather(
            self.to_channel_and_thread(i.id, blocks.simple(text)), self.refresh(i.id)
        )

    async def resolved(self, i: IncidentSnapshot) -> None:
        text = self.render("resolution.md.j2", i)
        message = blocks.message(
            text, [blocks.header(f"Incident #{i.id} resolved"), *blocks.sections(text)]
        )
        channel_ts, _ = await self.to_channel_and_thread(i.id, message, broadcast=True)
        async with self.s.db.session() as session:
            await repo.set_fields(session, i.id, resolution_ts=channel_ts)
        await self.refresh(i.id)


class _UpdateView:
    """The fields the update template reads."""

    def __init__(self, update: StatusUpdate) -> None:
        self.posted_at = update.posted_at
        self.posted_by = update.posted_by
        self.status_label = update.status.capitalize()
        self.done_so_far = update.done_so_far
        self.investigation = update.investigation
        self.eta = update.eta
