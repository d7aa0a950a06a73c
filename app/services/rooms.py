"""Building and keeping current the war room in Slack: the channel, its members and topic, the
pinned notification and the announcement.

Building is a list of steps that each record their result on the incident row and are skipped
when already done, so `open_war_room` run again finishes an interrupted declare instead of
repeating it. A step that Slack refuses for now (rate limit, outage) leaves the room not ready,
and the repair sweep runs it again; a step refused for good is said in the channel.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlmodel import col, select

from app.domain.escalation import retry_delay
from app.domain.lifecycle import Status
from app.domain.naming import channel_name
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks, mrkdwn
from app.messages.blocks import Message
from app.messages.mrkdwn import escape
from app.messages.render import DRILL_MARK
from app.services.announcements import Announcements
from app.services.context import Services
from app.services.errors import incident_snapshot
from app.services.outbox import enqueue
from app.services.ports import ErrorKind, SlackError
from app.store import repo
from app.store.leases import release_repair_lease, renewing, take_repair_lease
from app.store.models import Incident, TimelineEvent

log = logging.getLogger(__name__)

NOTIFICATION_KEY = "notification:{id}"
ANNOUNCEMENT_KEY = "announcement:{id}"


def digest(shown: str | Message) -> str:
    """A short fingerprint of a topic or message, to tell whether Slack already shows it."""
    if isinstance(shown, Message):
        shown = json.dumps([shown.text, shown.blocks], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(shown.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class _Shown:
    """One thing a refresh keeps current: its column, what it should show, what Slack last
    accepted, and how to send it."""

    column: str
    digest: str
    published: str | None
    send: Callable[[], Awaitable[None]]


class Rooms:
    """The war rooms in Slack: built step by step, kept current, repaired."""

    def __init__(self, services: Services, announcements: Announcements) -> None:
        self.services = services
        self.announcements = announcements
        self._announce_id: str | None = None
        self._building: dict[int, asyncio.Lock] = {}
        self._refreshing: dict[int, asyncio.Lock] = {}
        # Incidents whose refresh needs a person first (archived room …): when to try again.
        self._refresh_later: dict[int, tuple[datetime, int]] = {}

    def render(self, template: str, incident: IncidentSnapshot, **extra: Any) -> str:
        return self.announcements.render(template, incident, **extra)

    async def snapshot(self, incident_id: int) -> IncidentSnapshot:
        async with self.services.db.session() as session:
            return await incident_snapshot(session, incident_id)

    async def take_lease(self, incident_id: int) -> bool:
        """This replica's lease on building the incident's room; False when another has it."""
        return await take_repair_lease(
            self.services.db,
            incident_id,
            self.services.replica,
            self.services.clock.now(),
            self.services.policy.escalation.lease_seconds,
        )

    async def release_lease(self, incident_id: int) -> None:
        await release_repair_lease(self.services.db, incident_id, self.services.replica)

    async def topic(self, incident: IncidentSnapshot) -> str:
        async def name(role: Role) -> str:
            holder = incident.roles.get(role)
            return await self.services.slack.user_name(holder) if holder else "-"

        names = await asyncio.gather(*(name(r) for r in Role))
        return self.render(
            "topic.txt.j2",
            incident,
            names=dict(zip(("commander", "tech_lead", "comms"), names, strict=True)),
        )

    # --- building ---------------------------------------------------------------------------

    async def open_war_room(
        self, incident_id: int, claimed: bool = False, repair: bool = False
    ) -> bool:
        """Create whatever the incident's war room still lacks; True when it is complete.

        Holds the incident's repair lease meanwhile (unless the caller already does), so no
        other replica builds the same room; a lease held elsewhere means it is being built.
        A `repair` first looks in Slack for what an earlier attempt did without recording it.
        """
        lock = self._building.setdefault(incident_id, asyncio.Lock())
        try:
            async with lock:
                if not claimed and not await self.take_lease(incident_id):
                    return False
                try:
                    every = self.services.policy.escalation.lease_seconds / 3
                    async with renewing(lambda: self.take_lease(incident_id), every):
                        return await self._build(incident_id, repair)
                finally:
                    if not claimed:
                        await self.release_lease(incident_id)
        finally:
            if not lock.locked():
                self._building.pop(incident_id, None)

    async def _build(self, incident_id: int, repair: bool) -> bool:
        async with self.services.db.session() as session:
            incident = await repo.get(session, incident_id)
        if incident is None:
            raise LookupError(incident_id)
        if incident.war_room_ready:
            return True
        first_attempt = not repair
        if not incident.channel_id:
            try:
                await self._create_channel(incident, reuse=repair)
            except SlackError as exc:
                if first_attempt:
                    await self._tell_declarer(incident, self._channel_failed(incident, exc))
                log.warning("incident %s: channel not created yet: %s", incident_id, exc)
                return False
        snap = await self.snapshot(incident_id)
        steps = [
            self._invite_people(snap),
            self._post_notification(incident, snap, repair),
            self._announce(incident, snap, repair),
            self._set_topic(snap),
        ]
        if first_attempt:
            steps.append(self._tell_declarer(incident, self._ready(snap)))
        results = await asyncio.gather(*steps, return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        for failure in failures:
            if not isinstance(failure, SlackError):
                raise failure
        if failures:
            log.warning("incident %s: war room not complete yet: %s", incident_id, failures[0])
            return False
        async with self.services.db.session() as session:
            await repo.set_fields(
                session, incident_id, war_room_ready=True, published_version=incident.version
            )
        return True

    @staticmethod
    def _channel_failed(incident: Incident, exc: SlackError) -> Message:
        return blocks.simple(
            f":warning: Incident #{incident.id} is declared and saved, but its channel could not "
            f"be created yet ({escape(exc.code)}). Warroom keeps retrying; if it persists, ask a "
            "Slack admin to check the bot's `channels:manage` / `groups:write` scopes."
        )

    @staticmethod
    def _ready(incident: IncidentSnapshot) -> Message:
        drill = f"{DRILL_MARK} " if incident.is_drill else ""
        return blocks.simple(
            f"{drill}Incident #{incident.id} declared: {blocks.severity_emoji(incident.severity)} "
            f"Sev{incident.severity} - {escape(incident.title)}. "
            f"Join the war room: <#{incident.channel_id}>"
        )

    async def _create_channel(self, incident: Incident, reuse: bool) -> None:
        """Create the channel. On a repair, first adopt a channel the bot already created for
        this incident (the process may have died before it could record it)."""
        assert incident.id is not None
        policy = self.services.policy
        fmt = (
            policy.drills.channel_name_format
            if incident.is_drill
            else policy.channel_name_format(incident.type)
        )
        day = incident.declared_at.astimezone(
            ZoneInfo(self.services.policy.workspace.timezone)
        ).date()

        def name_for(attempt: int) -> str:
            return channel_name(fmt, incident.id or 0, incident.title, day, attempt)

        channel = await self._adoptable(name_for(1)) if reuse else None
        if channel is None:
            channel = await self.services.slack.create_channel(
                name_for, private=incident.is_private
            )
        incident.channel_id, incident.channel_name = channel["id"], channel["name"]
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            # The row lock (Postgres) orders this with a role given meanwhile: that change
            # either sees the channel and sends its own brief, or its holder is briefed here.
            await repo.get_for_update(session, incident.id)
            await repo.set_fields(
                session, incident.id, channel_id=channel["id"], channel_name=channel["name"]
            )
            session.add(
                repo.event(
                    incident.id,
                    now,
                    "channel_created",
                    f"Channel #{channel['name']} created",
                    channel=channel["id"],
                )
            )
            # The role briefs link the channel, so they are queued with it: once, in the
            # transaction that records it (a repair that adopts the channel lands here too).
            roles = await repo.current_roles(session, incident.id)
            enqueue(
                session, incident.id, now, self.announcements.briefs(repo.snapshot(incident, roles))
            )

    async def _adoptable(self, name: str) -> dict[str, Any] | None:
        channel_id = await self.services.slack.find_channel(name)
        if channel_id is None:
            return None
        info = await self.services.slack.channel_info(channel_id)
        if info.get("creator") != self.services.bot_user_id or info.get("is_archived"):
            return None
        async with self.services.db.session() as session:
            if await repo.by_channel(session, channel_id) is not None:
                return None
        return info

    async def audience(self, severity: int) -> list[str]:
        people, _ = await self.reachable(self.services.policy.audience(severity))
        return people

    async def in_drill(self, incident: IncidentSnapshot) -> list[str]:
        """The people in a drill: its declarer, its role holders and the members of its
        channel (whoever was invited by hand). A drill's pages and escalations reach them and
        nobody else."""
        members: list[str] = []
        if incident.channel_id:
            try:
                members = await self.services.slack.members(incident.channel_id)
            except SlackError as exc:
                if exc.retryable:
                    raise
        people = [incident.declared_by, *incident.roles.values(), *members]
        return [p for p in dict.fromkeys(people) if p and p != self.services.bot_user_id]

    async def reachable(self, ids: Iterable[str]) -> tuple[list[str], dict[str, str]]:
        """User IDs for a mix of users and user groups, each group read on its own, so one
        Slack does not know does not keep everyone else out. Returns the people and, for each
        group that could not be read, Slack's error; outages raise."""
        targets = list(dict.fromkeys(ids))
        results = await asyncio.gather(
            *(self.services.slack.expand([t]) for t in targets), return_exceptions=True
        )
        people: list[str] = []
        unreachable: dict[str, str] = {}
        for target, result in zip(targets, results, strict=True):
            if isinstance(result, SlackError) and not result.retryable:
                unreachable[target] = result.code
            elif isinstance(result, BaseException):
                raise result
            else:
                people.extend(result)
        return list(dict.fromkeys(people)), unreachable

    async def report_unreachable(
        self, incident: IncidentSnapshot, unreachable: dict[str, str]
    ) -> None:
        """Say in the war room, once per incident, which user groups could not be read."""
        for group, code in unreachable.items():
            text = (
                f"Could not read the user group <!subteam^{group}> ({code}), so its members "
                "were not paged or invited; everyone else was. Fix `[directory]` in the policy "
                "file."
            )
            async with self.services.db.session() as session:
                said = await session.exec(
                    select(TimelineEvent.id)
                    .where(col(TimelineEvent.incident_id) == incident.id)
                    .where(col(TimelineEvent.kind) == "problem")
                    .where(col(TimelineEvent.text) == text)
                )
                if said.first() is not None:
                    continue
            await self.problem(incident, text)

    async def _invite_people(self, incident: IncidentSnapshot) -> None:
        if incident.is_drill:  # the severity's real audience is never brought into a drill
            await self.invite(incident, [incident.declared_by, *incident.roles.values()])
            return
        people, unreachable = await self.reachable(self.services.policy.audience(incident.severity))
        if unreachable:
            await self.report_unreachable(incident, unreachable)
        await self.invite(incident, [incident.declared_by, *incident.roles.values(), *people])

    async def invite(self, incident: IncidentSnapshot, users: list[str]) -> None:
        """Invite people; Slack's lasting refusals are said in the channel, outages raised."""
        assert incident.channel_id
        # A declarer that is not a person (an alert source: "Alertmanager (prod)") is left out.
        users = [
            u
            for u in dict.fromkeys(users)
            if u and u != self.services.bot_user_id and mrkdwn.is_user_id(u)
        ]
        refused = await self.services.slack.invite(incident.channel_id, users)
        if refused:
            # The IDs are Slack's answer, not ours to trust: a real ID becomes a mention,
            # anything else escaped text that pings nobody.
            mentions = ", ".join(mrkdwn.user(u) for u in refused)
            await self.problem(
                incident, f"Could not invite {mentions}. Add them by hand with `/invite`."
            )

    async def _post_notification(
        self, incident: Incident, snap: IncidentSnapshot, repair: bool
    ) -> None:
        assert snap.channel_id
        ts = incident.notification_ts
        key = NOTIFICATION_KEY.format(id=snap.id)
        if not ts and repair:
            ts = await self.services.slack.find_posted(snap.channel_id, key)
        shown: dict[str, str] = {}
        if not ts:
            notification = self.announcements.notification(snap)
            ts = await self.services.slack.post(snap.channel_id, notification, key=key)
            # What it shows, so a refresh does not send the same again.
            shown["published_notification"] = digest(notification)
        if ts != incident.notification_ts:
            async with self.services.db.session() as session:
                await repo.set_fields(session, snap.id, notification_ts=ts, **shown)
        if not incident.notification_pinned:
            try:
                await self.services.slack.pin(snap.channel_id, ts)
            except SlackError as exc:
                if exc.retryable:
                    raise
                await self.problem(snap, f"Could not pin the incident summary ({exc.code}).")
            async with self.services.db.session() as session:
                await repo.set_fields(session, snap.id, notification_pinned=True)

    async def announce_channel_id(self) -> str | None:
        if self._announce_id is None:
            self._announce_id = await self.services.slack.find_channel(
                self.services.announce_channel
            )
        return self._announce_id

    def announce_channel_for(self, incident: IncidentSnapshot) -> str:
        """Where the incident is announced: a drill only where `[drills] announce_channel`
        says ("" for nowhere)."""
        if incident.is_drill:
            return self.services.policy.drills.announce_channel
        return self.services.announce_channel

    async def _announce(self, incident: Incident, snap: IncidentSnapshot, repair: bool) -> None:
        name = self.announce_channel_for(snap)
        if snap.is_private or incident.announcement_ts or not name:
            return
        try:
            if snap.is_drill:
                channel = await self.services.slack.find_channel(name)
            else:
                channel = await self.announce_channel_id()
            if channel is None:
                hint = "[drills] announce_channel" if snap.is_drill else "WARROOM_ANNOUNCE_CHANNEL"
                await self.problem(
                    snap,
                    f"The announcement channel #{escape(name)} was not found: create it or set "
                    f"{hint}.",
                )
                return
            key = ANNOUNCEMENT_KEY.format(id=snap.id)
            ts = None
            shown: dict[str, str] = {}
            if repair:
                oldest = f"{incident.declared_at.timestamp() - 1:.6f}"
                ts = await self.services.slack.find_posted(channel, key, oldest)
            if not ts:
                announcement = self.announcements.announcement(snap)
                ts = await self._post_joining(channel, announcement, key)
                shown["published_announcement"] = digest(announcement)
        except SlackError as exc:
            if exc.retryable:
                raise
            await self.problem(snap, f"Could not post the announcement ({exc.code}).")
            return
        async with self.services.db.session() as session:
            await repo.set_fields(
                session, snap.id, announcement_channel_id=channel, announcement_ts=ts, **shown
            )

    async def reannounce(self, incident_id: int, gone_ts: str) -> str | None:
        """Post the announcement again after someone deleted it (`gone_ts`); the thread
        continues under the new one. Returns the new ts; None when there is nothing to post
        or another replica is at it."""
        lock = self._building.setdefault(incident_id, asyncio.Lock())
        try:
            async with lock:
                async with self.services.db.session() as session:
                    incident = await repo.get(session, incident_id)
                if incident is None or incident.is_private:
                    return None
                channel = incident.announcement_channel_id
                if incident.announcement_ts and incident.announcement_ts != gone_ts:
                    return incident.announcement_ts  # already posted again
                if not channel or not await self.take_lease(incident_id):
                    return None
                try:
                    snap = await self.snapshot(incident_id)
                    key = ANNOUNCEMENT_KEY.format(id=incident_id)
                    announcement = self.announcements.announcement(snap)
                    ts = await self._post_joining(channel, announcement, key)
                    async with self.services.db.session() as session:
                        await repo.set_fields(
                            session,
                            incident_id,
                            announcement_ts=ts,
                            published_announcement=digest(announcement),
                        )
                        session.add(
                            repo.event(
                                incident_id,
                                self.services.clock.now(),
                                "announcement_reposted",
                                "The announcement was deleted; posted again",
                                previous=gone_ts,
                            )
                        )
                finally:
                    await self.release_lease(incident_id)
                log.warning(
                    "incident %s: announcement %s was deleted; posted again as %s",
                    incident_id,
                    gone_ts,
                    ts,
                )
                return ts
        finally:
            if not lock.locked():
                self._building.pop(incident_id, None)

    async def _post_joining(self, channel: str, message: Message, key: str) -> str:
        try:
            return await self.services.slack.post(channel, message, key=key)
        except SlackError as exc:
            if exc.code != "not_in_channel":
                raise
        await self.services.slack.join(channel)
        return await self.services.slack.post(channel, message, key=key)

    async def _set_topic(self, incident: IncidentSnapshot) -> None:
        if incident.channel_id:
            topic = await self.topic(incident)
            await self.services.slack.set_topic(incident.channel_id, topic)
            async with self.services.db.session() as session:
                await repo.set_fields(session, incident.id, published_topic=digest(topic))

    async def _tell_declarer(self, incident: Incident, message: Message) -> None:
        try:
            if incident.reply_url:
                await self.services.slack.respond(incident.reply_url, message)
            elif mrkdwn.is_user_id(incident.declared_by):  # not an alert source
                await self.services.slack.dm(incident.declared_by, message)
        except SlackError as exc:
            log.warning("could not tell the declarer of incident %s: %s", incident.id, exc.code)

    # --- keeping it current -----------------------------------------------------------------

    async def refresh(self, incident_id: int, sweep: bool = False) -> bool:
        """Bring the topic, pinned notification and announcement headline up to date.

        Each is sent only if it differs from what Slack last accepted, and recorded only once
        Slack accepts it; the version is marked shown when all three are. What Slack refused
        (an outage, a refused token, an archived room, a removed bot) is redone by the repair
        sweep (`sweep`), with a backoff when a person has to fix something first.
        """
        if sweep and not self._refresh_due(incident_id):
            return False
        lock = self._refreshing.setdefault(incident_id, asyncio.Lock())
        async with lock:
            return await self._refresh(incident_id)

    async def refresh_now(self, incident_id: int) -> bool:
        """Refresh at once, its backoff forgotten: Slack says the room takes posts again."""
        self._refresh_later.pop(incident_id, None)
        return await self.refresh(incident_id)

    def _refresh_due(self, incident_id: int) -> bool:
        later = self._refresh_later.get(incident_id)
        return later is None or self.services.clock.now() >= later[0]

    async def _refresh(self, incident_id: int) -> bool:
        async with self.services.db.session() as session:
            incident = await repo.get(session, incident_id)
            assert incident is not None
            snap = repo.snapshot(incident, await repo.current_roles(session, incident_id))
        if not incident.war_room_ready:
            return False
        if incident.published_version >= incident.version:
            return True  # nothing they show has changed: spare Slack's rate limits
        parts = [p for p in await self._shown(incident, snap) if p.digest != p.published]
        results = await asyncio.gather(*(p.send() for p in parts), return_exceptions=True)
        accepted: dict[str, str] = {}
        refused: list[SlackError] = []
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, SlackError):
                closed = incident.status == Status.CLOSED.value
                if not (closed and result.kind is ErrorKind.ROOM):  # archived on purpose
                    refused.append(result)
            elif isinstance(result, BaseException):
                raise result
            else:
                accepted[part.column] = part.digest
        async with self.services.db.session() as session:
            if accepted:
                await repo.set_fields(session, incident_id, **accepted)
            if not refused:
                await session.exec(
                    update(Incident)
                    .where(col(Incident.id) == incident_id)
                    .where(col(Incident.published_version) < incident.version)
                    .values(published_version=incident.version)
                )
        if not refused:
            self._refresh_later.pop(incident_id, None)
            return True
        first = refused[0]
        if first.kind is not ErrorKind.CREDENTIAL:  # that one is logged once, elsewhere
            log.warning("incident %s: refresh incomplete: %s", incident_id, first)
        if not any(r.retryable for r in refused):
            # A person has to fix the room first: try again later, not on every tick.
            tries = self._refresh_later.get(incident_id, (None, 0))[1] + 1
            self._refresh_later[incident_id] = (
                self.services.clock.now() + retry_delay(tries),
                tries,
            )
        return False

    async def _shown(self, incident: Incident, snap: IncidentSnapshot) -> list[_Shown]:
        """What the topic, pinned notification and announcement should show now."""
        shown: list[_Shown] = []
        channel = snap.channel_id
        if channel:
            topic = await self.topic(snap)
            shown.append(
                _Shown(
                    "published_topic",
                    digest(topic),
                    incident.published_topic,
                    lambda: self._publish_topic(channel, topic),
                )
            )
        ts = incident.notification_ts
        if channel and ts:
            notification = self.announcements.notification(snap)
            shown.append(
                _Shown(
                    "published_notification",
                    digest(notification),
                    incident.published_notification,
                    lambda: self._publish_notification(snap, ts, notification),
                )
            )
        where, at = incident.announcement_channel_id, incident.announcement_ts
        if where and at:
            announcement = self.announcements.announcement(snap)
            shown.append(
                _Shown(
                    "published_announcement",
                    digest(announcement),
                    incident.published_announcement,
                    lambda: self._publish_announcement(snap.id, where, at, announcement),
                )
            )
        return shown

    async def _publish_topic(self, channel: str, topic: str) -> None:
        try:
            await self.services.slack.set_topic(channel, topic)
        except SlackError as exc:
            if exc.code != "not_in_channel":
                raise
            try:
                await self.services.slack.join(channel)  # public rooms only
            except SlackError as join_error:
                if join_error.retryable:
                    raise
                raise exc from None  # a private room: a person must add the bot back
            await self.services.slack.set_topic(channel, topic)

    async def _publish_notification(
        self, incident: IncidentSnapshot, ts: str, message: Message
    ) -> None:
        assert incident.channel_id
        try:
            await self.services.slack.update(incident.channel_id, ts, message)
        except SlackError as exc:
            if exc.kind is not ErrorKind.GONE_THREAD:
                raise
            # Someone deleted the pinned notification: post and pin it again.
            fresh = await self.services.slack.post(
                incident.channel_id, message, key=NOTIFICATION_KEY.format(id=incident.id)
            )
            await self.services.slack.pin(incident.channel_id, fresh)
            async with self.services.db.session() as session:
                await repo.set_fields(session, incident.id, notification_ts=fresh)
            log.warning("incident %s: pinned notification was deleted; posted again", incident.id)

    async def _publish_announcement(
        self, incident_id: int, channel: str, ts: str, message: Message
    ) -> None:
        try:
            await self.services.slack.update(channel, ts, message)
        except SlackError as exc:
            if exc.kind is not ErrorKind.GONE_THREAD:
                raise
            if await self.reannounce(incident_id, ts) is None:
                raise

    async def problem(self, incident: IncidentSnapshot, text: str) -> None:
        """Say in the war room what did not work, and keep it on the timeline."""
        async with self.services.db.session() as session:
            session.add(repo.event(incident.id, self.services.clock.now(), "problem", text))
        if incident.channel_id:
            try:
                await self.services.slack.post(
                    incident.channel_id, blocks.simple(f":warning: {text}")
                )
            except SlackError as exc:
                log.warning("incident %s: could not report %r: %s", incident.id, text, exc.code)
