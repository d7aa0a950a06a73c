"""The messages each change sends, as queue entries (`Outgoing`). Pure rendering: queued by
the use case in the transaction that makes the change, delivered by the outbox."""

from __future__ import annotations

from typing import Any

from app.domain.escalation import pager_plan
from app.domain.policy import Policy, RolePolicy
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks, mrkdwn
from app.messages.blocks import Message
from app.messages.render import Renderer
from app.services import custom_fields
from app.services.briefing import Briefing
from app.services.outbox import Outgoing
from app.store.models import StatusUpdate


class Announcements:
    def __init__(self, policy: Policy, renderer: Renderer) -> None:
        self.policy = policy
        self.renderer = renderer

    def render(self, template: str, incident: IncidentSnapshot, **extra: Any) -> str:
        context = {
            "incident": incident,
            "sev": self.policy.severity(incident.severity),
            "links": self.policy.links,
            # The workspace's time zone, for times in plain text (the topic).
            "zone": self.policy.workspace.timezone,
            # The incident's type as people read it ("" without one) and its custom fields.
            "kind": custom_fields.type_label(self.policy, incident.type),
            "fields": custom_fields.fields_shown(self.policy, incident),
            **extra,
        }
        return self.renderer.render(template, **context)

    @staticmethod
    def _both(message: Message, broadcast: bool = False) -> list[Outgoing]:
        """The incident channel and the announcement's thread (skipped when private)."""
        return [Outgoing("channel", message), Outgoing("thread", message, broadcast=broadcast)]

    def notification(self, incident: IncidentSnapshot) -> Message:
        return blocks.initial_notification(
            incident, self.render("initial_notification.md.j2", incident)
        )

    def announcement(self, incident: IncidentSnapshot) -> Message:
        return blocks.announcement(
            incident,
            self.render("announcement_headline.md.j2", incident),
            self.render("initial_notification.md.j2", incident),
        )

    def role_brief(self, incident: IncidentSnapshot, role: Role) -> Message:
        # The commander hears who the plan pages on their pagers, and when (never in a drill).
        pagers = []
        if role is Role.COMMANDER and not incident.is_drill:
            paging = self.policy.paging
            pagers = [
                {
                    "after": step.after_minutes,
                    "unless": step.cancel_on,
                    "targets": ", ".join(
                        f"{paging.label(t)} ({paging.provider_name(t)})" for t in step.targets
                    ),
                }
                for step in pager_plan(self.policy, incident.severity)
            ]
        return blocks.simple(
            self.render(
                "role_brief.md.j2", incident, role=self._briefed(incident, role), pagers=pagers
            )
        )

    def _briefed(self, incident: IncidentSnapshot, role: Role) -> RolePolicy:
        """The role as the incident's type briefs it (`[types.<name>.briefs]`)."""
        spec = self.policy.role(role)
        brief = self.policy.brief(role, incident.type)
        return spec if brief == spec.brief else spec.model_copy(update={"brief": brief})

    def briefs(self, incident: IncidentSnapshot) -> list[Outgoing]:
        """Every role holder's brief, once the war room exists (the brief links it). A holder
        that is not a person (an alert source that declared it) gets none."""
        return [
            Outgoing(f"user:{holder}", self.role_brief(incident, role))
            for role in Role
            if (holder := incident.roles.get(role)) and mrkdwn.is_user_id(holder)
        ]

    def acknowledged(self, incident: IncidentSnapshot, by: str) -> list[Outgoing]:
        sev = self.policy.severity(incident.severity)
        target = sev.response_target_minutes
        within = (
            target is not None
            and incident.time_to_acknowledge is not None
            and incident.time_to_acknowledge.total_seconds() <= max(target, 1) * 60
        )
        text = self.render("acknowledged.md.j2", incident, by=by, within_target=within)
        return self._both(blocks.simple(text))

    def acknowledged_on_pager(
        self, incident: IncidentSnapshot, who: str, where: str
    ) -> list[Outgoing]:
        text = self.render("acknowledged_on_pager.md.j2", incident, who=who, where=where)
        return self._both(blocks.simple(text))

    def role_assigned(
        self, incident: IncidentSnapshot, role: Role, user: str, by: str
    ) -> list[Outgoing]:
        said = self.render(
            "role_assigned.md.j2", incident, user=user, role=self.policy.role(role), by=by
        )
        said_in_channel = Outgoing("channel", blocks.simple(said))
        if not incident.channel_id:
            # No war room yet: the brief goes out when its channel is created (`briefs`).
            return [said_in_channel]
        return [said_in_channel, Outgoing(f"user:{user}", self.role_brief(incident, role))]

    def handed_over(
        self,
        incident: IncidentSnapshot,
        role: Role,
        user: str,
        previous: str | None,
        by: str,
        briefing: Briefing,
    ) -> list[Outgoing]:
        """A role handed over: said in the war room as an assignment is, the handover brief
        to the new holder (once the war room exists, like a role brief), and the previous holder
        told (when a person held it)."""
        spec = self._briefed(incident, role)
        said = self.render("role_assigned.md.j2", incident, user=user, role=spec, by=by)
        out = [Outgoing("channel", blocks.simple(said))]
        if incident.channel_id:
            brief = self.render(
                "handover_brief.md.j2",
                incident,
                role=spec,
                previous=previous,
                by=by,
                **briefing.context(),
            )
            out.append(Outgoing(f"user:{user}", blocks.simple(brief)))
        if previous and previous != user and mrkdwn.is_user_id(previous):
            told = self.render(
                "handover_told.md.j2", incident, role=spec, user=user, previous=previous, by=by
            )
            out.append(Outgoing(f"user:{previous}", blocks.simple(told)))
        return out

    def catchup(self, incident: IncidentSnapshot, briefing: Briefing) -> Message:
        """Where an incident stands, for someone joining it (`catchup.md.j2`)."""
        return blocks.simple(self.render("catchup.md.j2", incident, **briefing.context()))

    def update_posted(self, incident: IncidentSnapshot, update: StatusUpdate) -> list[Outgoing]:
        text = self.render("update.md.j2", incident, u=_UpdateView(update))
        return self._both(blocks.simple(text))

    def severity_changed(self, incident: IncidentSnapshot, old: int, by: str) -> list[Outgoing]:
        text = self.render("severity_changed.md.j2", incident, old=old, by=by)
        return self._both(blocks.simple(text), broadcast=True)

    def mitigated(self, incident: IncidentSnapshot, by: str) -> list[Outgoing]:
        return self._both(blocks.simple(self.render("mitigated.md.j2", incident, by=by)))

    def resolved(self, incident: IncidentSnapshot) -> list[Outgoing]:
        text = self.render("resolution.md.j2", incident)
        header = blocks.header(
            f"{'DRILL · ' if incident.is_drill else ''}Incident #{incident.id} resolved"
        )
        return self._both(blocks.message(text, [header, *blocks.sections(text)]), broadcast=True)

    def closed(
        self, incident: IncidentSnapshot, by: str, open_items: int, skipped_postmortem: bool
    ) -> list[Outgoing]:
        delay = self.policy.escalation.archive_after_minutes
        text = self.render(
            "closing_summary.md.j2",
            incident,
            by=by,
            open_items=open_items,
            skipped_postmortem=skipped_postmortem,
            archive_after=delay,
        )
        return self._both(blocks.simple(text))

    def retro_agenda(self, incident: IncidentSnapshot) -> list[Outgoing]:
        hours = self.policy.escalation.retro_within_hours
        return self._both(blocks.simple(self.render("retro_agenda.md.j2", incident, hours=hours)))


class _UpdateView:
    """The fields the update template reads."""

    def __init__(self, update: StatusUpdate) -> None:
        self.posted_at = update.posted_at
        self.posted_by = update.posted_by
        self.status_label = update.status.capitalize()
        self.done_so_far = update.done_so_far
        self.investigation = update.investigation
        self.eta = update.eta
