"""Answers to "may this person see…" and "may this person…", with the Slack look-ups they need:
admin user groups (cached for a minute) and the members of a private incident's channel (asked
afresh every time, so someone removed from the channel stops seeing the incident at once).

Sight comes first: every rights check establishes sight before it says who may act, so a
refusal never names the people running an incident to someone who may not know it exists."""

from __future__ import annotations

import time

from app.domain.permissions import VERBS, may, may_change_item
from app.domain.snapshot import IncidentSnapshot
from app.messages import mrkdwn
from app.messages.mrkdwn import Mrkdwn
from app.services.errors import NotFound, ServiceError, no_incident, no_item
from app.services.ports import SlackError, SlackPort

CACHE_SECONDS = 60.0


class Forbidden(ServiceError):
    """The person may not do this; the message says who may."""


class Access:
    """Sight (who may know an incident exists) and rights (who may change it), in one place."""

    def __init__(self, slack: SlackPort, admins: list[str], restricted: list[str]) -> None:
        self.slack = slack
        self.admin_ids = admins
        self.restricted = restricted
        self._admins: tuple[float, set[str]] | None = None

    async def admins(self) -> set[str]:
        """Admin users, with user groups expanded (cached)."""
        if not self.admin_ids:
            return set()
        if self._admins and time.monotonic() - self._admins[0] < CACHE_SECONDS:
            return self._admins[1]
        users = set(await self.slack.expand(self.admin_ids))
        self._admins = (time.monotonic(), users)
        return users

    async def may(self, action: str, user: str, incident: IncidentSnapshot) -> bool:
        """Whether `user` may take `action` (sight is the caller's to establish)."""
        holders = incident.roles.values()
        return may(
            action, user, self.restricted, incident.declared_by, holders, await self.admins()
        )

    async def check(self, action: str, user: str, incident: IncidentSnapshot) -> None:
        """Refuse unless `user` sees the incident and may take `action` on it."""
        await self.require_sight(incident, user)
        if action not in self.restricted:
            return
        holders = list(incident.roles.values())
        if may(action, user, self.restricted, incident.declared_by, holders, await self.admins()):
            return
        who = [mrkdwn.user(u) for u in dict.fromkeys([*holders, incident.declared_by])]
        admins = " or an admin" if self.admin_ids else ""
        raise Forbidden(
            Mrkdwn(
                f"Only the people running incident #{incident.id} ({', '.join(who)}){admins} "
                f"may {VERBS.get(action, action)}."
            )
        )

    async def check_item(
        self, user: str, item_id: int, owner: str | None, incident: IncidentSnapshot
    ) -> None:
        """Refuse unless `user` sees the item's incident and may complete or reassign the item
        (its owner, the incident's role holders and declarer, an admin)."""
        await self.require_sight(incident, user, no_item(item_id))
        holders = list(incident.roles.values())
        if may_change_item(user, owner, incident.declared_by, holders, await self.admins()):
            return
        who = [mrkdwn.user(u) for u in dict.fromkeys([*holders, incident.declared_by])]
        owned = f"its owner ({mrkdwn.user(owner)}), " if owner else ""
        raise Forbidden(
            Mrkdwn(
                f"Only {owned}the people running incident #{incident.id} ({', '.join(who)}) "
                f"or an admin may complete or reassign action item A{item_id}."
            )
        )

    async def members(self, channel: str, *, strict: bool = False) -> set[str]:
        """The channel's members now. Not cached: Warroom is not told when someone leaves
        (and each replica would hold its own copy), so a cached list would go on showing a
        private incident to a person just removed from it. When Slack does not answer, nobody
        but the declarer and role holders sees it. `strict` raises Slack's passing errors
        instead, for work that can be retried (a reminder) rather than be answered now."""
        try:
            return set(await self.slack.members(channel))
        except SlackError as exc:
            if strict and exc.retryable:
                raise
            return set()

    async def can_see(self, incident: IncidentSnapshot, user: str, *, strict: bool = False) -> bool:
        """Public incidents are for everyone; a private one for the members of its channel.
        `strict`: see `members`."""
        if not incident.is_private:
            return True
        if user == incident.declared_by or user in incident.roles.values():
            return True
        if not incident.channel_id:
            return False
        return user in await self.members(incident.channel_id, strict=strict)

    async def visible(self, incidents: list[IncidentSnapshot], user: str) -> list[IncidentSnapshot]:
        return [i for i in incidents if await self.can_see(i, user)]

    async def in_drill(self, incident: IncidentSnapshot, user: str) -> bool:
        """Whether `user` takes part in a drill: its declarer, a role holder or a member of
        its channel."""
        if user == incident.declared_by or user in incident.roles.values():
            return True
        if not incident.channel_id:
            return False
        return user in await self.members(incident.channel_id)

    async def listed(self, incidents: list[IncidentSnapshot], user: str) -> list[IncidentSnapshot]:
        """The incidents a list shows `user` (`/incident list`, App Home): those they may see,
        drills only to the people in them (a drill is practice, not news for everyone)."""
        return [
            i
            for i in await self.visible(incidents, user)
            if not i.is_drill or await self.in_drill(i, user)
        ]

    async def require_sight(
        self, incident: IncidentSnapshot, user: str, missing: NotFound | None = None
    ) -> None:
        """Refuse someone who may not see the incident with the error a number never used
        gets (`missing`: the one for the thing asked about, e.g. an action item of it)."""
        if not await self.can_see(incident, user):
            raise missing or no_incident(incident.id)
