"""What should happen when, for one incident: pages, the escalation ladder, update reminders
and the retrospective reminder. Pure functions of the policy and the incident's times.

The engine stores one row per planned step; these functions decide the rows and, at firing
time, whether a step still applies (an incident acknowledged or resolved meanwhile cancels it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from app.domain.playbooks import checklist_key, matches, run_key
from app.domain.policy import BusinessHours, Policy
from app.domain.snapshot import IncidentSnapshot


class Kind(StrEnum):
    PAGE = "page"
    LADDER = "ladder"
    UPDATE_REMINDER = "update_reminder"
    # The promised update did not come: the commander is told (DM) and the room.
    UPDATE_MISSED = "update_missed"
    RETRO_REMINDER = "retro_reminder"
    # Follow-up after the incident: an action item past its due date, the delayed archive.
    ACTION_REMINDER = "action_reminder"
    ARCHIVE = "archive"
    # One step of a playbook (`[[playbooks]]`), and a checklist task's overdue nudge.
    PLAYBOOK = "playbook"
    CHECKLIST_DUE = "checklist_due"


# Steps whose fate does not follow the incident's status: an action item stays due after the
# incident is closed (its own completion cancels the reminder), and the archive is the last
# thing that happens to a closed incident.
FOLLOW_UP_CANCEL = "action_done"
NEVER_CANCEL = "never"


@dataclass(frozen=True)
class PlannedStep:
    key: str
    kind: Kind
    due_at: datetime
    cancel_on: str
    targets: list[str] = field(default_factory=list)
    step: int | None = None
    # Fires at most once per incident and key (a ladder rung, a promise's reminders): a row
    # of that key that fired blocks planning it again.
    once: bool = False
    # Planned at most once per incident and key, whatever became of it (a playbook step:
    # one that failed or was cancelled is not planned again either).
    ever: bool = False


@dataclass(frozen=True)
class IncidentTimes:
    """The facts a step's fate depends on."""

    severity: int
    is_open: bool
    declared_at: datetime
    acknowledged_at: datetime | None
    last_update_at: datetime | None
    status_changed: bool
    resolved_at: datetime | None
    retro_held_at: datetime | None
    # When the next update is promised (see `plan_promise`); None: no promise.
    next_update_at: datetime | None = None

    @property
    def progressed(self) -> bool:
        return self.last_update_at is not None or self.status_changed


def next_business_time(moment: datetime, hours: BusinessHours, zone: str) -> datetime:
    """`moment` if it falls in business hours, else the start of the next business period."""
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    start = time.fromisoformat(hours.start)
    end = time.fromisoformat(hours.end)
    for _ in range(8):
        if local.isoweekday() in hours.days:
            opens = local.replace(hour=start.hour, minute=start.minute, second=0, microsecond=0)
            closes = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
            if local < opens:
                return opens.astimezone(moment.tzinfo)
            if local < closes:
                return moment
        local = (local + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    raise ValueError("business hours name no day of the week")


def _when(policy: Policy, severity: int, moment: datetime) -> datetime:
    if policy.severity(severity).business_hours_only:
        return next_business_time(
            moment, policy.escalation.business_hours, policy.workspace.timezone
        )
    return moment


def plan_declared(policy: Policy, times: IncidentTimes) -> list[PlannedStep]:
    """Everything to plan when an incident is declared (or its severity changes)."""
    steps: list[PlannedStep] = []
    level = times.severity
    # A business-hours severity declared at night starts its clock when business opens.
    start = _when(policy, level, times.declared_at)
    audience = policy.severity(level).notify
    # Nobody to page when the directory names no one (neither people nor pagers).
    if policy.audience(level) or policy.directory.pagers(list(audience)):
        steps.append(
            PlannedStep(
                key=f"page:sev{level}",
                kind=Kind.PAGE,
                due_at=start,
                # Pages go out even after an acknowledgment: a raised severity brings in
                # people who must hear of it.
                cancel_on="resolved",
                targets=list(audience),
            )
        )
    for index, rung in enumerate(policy.ladder(level)):
        steps.append(
            PlannedStep(
                key=f"ladder:{index + 1}",
                kind=Kind.LADDER,
                due_at=_when(policy, level, start + timedelta(minutes=rung.after_minutes)),
                cancel_on=rung.cancel_on,
                targets=list(rung.targets),
                step=index,
                once=True,
            )
        )
    steps += plan_promise(policy, times)
    return steps


# --- the "next update by" promise ---------------------------------------------------------

# The reminder comes this long before the promised time, or a third of the promise's interval
# when that is shorter (a 10-minute promise is reminded 3 min 20 s before).
PROMISE_LEAD = timedelta(minutes=5)
# The update form offers these intervals (plus the severity's cadence).
PROMISE_CHOICES = (15, 30, 60, 120, 240)
MAX_PROMISE_MINUTES = 7 * 24 * 60
# The recurring reminder planned after a missed promise (no promise key).
RECURRING_REMINDER = "update_reminder"


def default_promise_minutes(policy: Policy, severity: int) -> int | None:
    """What an update promises unless it says otherwise: the severity's update cadence
    (None for a severity without one: no promise)."""
    return policy.severity(severity).update_every_minutes


def promise_after(policy: Policy, severity: int, base: datetime) -> datetime | None:
    """The default promise for an update (or declaration) at `base`."""
    minutes = default_promise_minutes(policy, severity)
    return base + timedelta(minutes=minutes) if minutes else None


def promise_lead(interval: timedelta) -> timedelta:
    return min(PROMISE_LEAD, max(interval, timedelta(0)) / 3)


def _promise_tag(promise: datetime) -> str:
    return str(int(promise.timestamp()))


def promise_cancel_on(promise: datetime) -> str:
    """A promise's steps no longer apply once the promise is replaced (or gone)."""
    return f"promise:{_promise_tag(promise)}"


def plan_promise(
    policy: Policy, times: IncidentTimes, made_at: datetime | None = None
) -> list[PlannedStep]:
    """The steps of the incident's promise: a reminder `promise_lead` before it, and the
    nudge to the commander when it passes without an update. Keyed by the promise, each
    fires at most once per promise. `made_at`: when the promise was made (the last update,
    or the declaration), for the lead."""
    promise = times.next_update_at
    if promise is None or not times.is_open:
        return []
    made = made_at or times.last_update_at or times.declared_at
    tag, cancel_on = _promise_tag(promise), promise_cancel_on(promise)
    missed = PlannedStep(
        key=f"update_missed:{tag}",
        kind=Kind.UPDATE_MISSED,
        due_at=_when(policy, times.severity, promise),
        cancel_on=cancel_on,
        once=True,
    )
    reminder_at = _when(policy, times.severity, promise - promise_lead(promise - made))
    if reminder_at >= missed.due_at:
        # Business hours moved both to the same opening: the nudge says it all.
        return [missed]
    reminder = PlannedStep(
        key=f"update_reminder:{tag}",
        kind=Kind.UPDATE_REMINDER,
        due_at=reminder_at,
        cancel_on=cancel_on,
        once=True,
    )
    return [reminder, missed]


def plan_update_reminder(
    policy: Policy, times: IncidentTimes, due_at: datetime
) -> PlannedStep | None:
    """The recurring 'post an update' nudge in the room, after a missed promise: one cadence
    after the last one (business hours respected)."""
    cadence = policy.severity(times.severity).update_every_minutes
    if not cadence or not times.is_open:
        return None
    return PlannedStep(
        key=RECURRING_REMINDER,
        kind=Kind.UPDATE_REMINDER,
        due_at=_when(policy, times.severity, due_at),
        cancel_on="resolved",
    )


def plan_retro_reminder(
    policy: Policy, resolved_at: datetime, last_sent: datetime | None = None
) -> PlannedStep:
    """First reminder a while after resolution, then one every `retro_repeat_minutes` after
    the last one sent (so a bot that was down sends one catch-up reminder, not a burst)."""
    esc = policy.escalation
    if last_sent is None:
        due = resolved_at + timedelta(minutes=esc.retro_first_reminder_minutes)
    else:
        due = last_sent + timedelta(minutes=esc.retro_repeat_minutes)
    return PlannedStep(
        key="retro_reminder",
        kind=Kind.RETRO_REMINDER,
        due_at=due,
        cancel_on="retro_held",
    )


def action_key(item_id: int) -> str:
    return f"action:{item_id}"


def plan_action_reminder(
    policy: Policy, item_id: int, due_on: date, after: datetime | None = None
) -> PlannedStep:
    """The next reminder for an action item: business opening on its due date, then once per
    working day after the last one (`after`), in the policy's business hours and time zone."""
    hours, zone = policy.escalation.business_hours, policy.workspace.timezone
    tz = ZoneInfo(zone)
    start = datetime.combine(due_on, time(0), tzinfo=tz)
    if after is not None:
        next_day = after.astimezone(tz).date() + timedelta(days=1)
        start = max(start, datetime.combine(next_day, time(0), tzinfo=tz))
    return PlannedStep(
        key=action_key(item_id),
        kind=Kind.ACTION_REMINDER,
        due_at=next_business_time(start, hours, zone).astimezone(ZoneInfo("UTC")),
        cancel_on=FOLLOW_UP_CANCEL,
        step=item_id,
    )


def plan_archive(closed_at: datetime, delay_minutes: int) -> PlannedStep:
    return PlannedStep(
        key="archive",
        kind=Kind.ARCHIVE,
        due_at=closed_at + timedelta(minutes=delay_minutes),
        cancel_on=NEVER_CANCEL,
    )


# --- playbooks ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Occasion:
    """One occurrence of a playbook event: `declared`, or a severity or status change (its
    timeline event's id), and when it happened."""

    event: str
    occurrence: str
    at: datetime


def plan_playbooks(
    policy: Policy,
    incident: IncidentSnapshot,
    occasion: Occasion,
    alert_labels: list[dict[str, str]] | None = None,
) -> list[PlannedStep]:
    """The steps of every playbook that applies to the incident on this occasion, each keyed
    to run once per incident (or once per occurrence, for `once = false`), due
    `after_minutes` after the declaration (at once when that has passed)."""
    steps: list[PlannedStep] = []
    for book in policy.playbooks:
        if not matches(book, incident, occasion.event, alert_labels or []):
            continue
        due = max(incident.declared_at + timedelta(minutes=book.when.after_minutes), occasion.at)
        occurrence = None if book.once else occasion.occurrence
        for index, _step in enumerate(book.steps):
            steps.append(
                PlannedStep(
                    key=run_key(book.name, index, occurrence),
                    kind=Kind.PLAYBOOK,
                    due_at=due,
                    # A step for a change of status (to resolved, say) runs whatever the
                    # status; the others no longer apply once the incident is resolved.
                    cancel_on=NEVER_CANCEL if occasion.event == "status_changed" else "resolved",
                    targets=[book.name],
                    step=index,
                    ever=True,
                )
            )
    return steps


def plan_checklist_nudge(task_id: int, due_at: datetime) -> PlannedStep:
    """A checklist task's nudge to its role holder when it is not done by its due time."""
    return PlannedStep(
        key=checklist_key(task_id),
        kind=Kind.CHECKLIST_DUE,
        due_at=due_at,
        cancel_on="resolved",
        step=task_id,
        ever=True,
    )


def cancelled_by(cancel_on: str, times: IncidentTimes) -> str | None:
    """Why a step no longer applies, or None when it should still fire."""
    if cancel_on in {FOLLOW_UP_CANCEL, NEVER_CANCEL}:
        return None
    if cancel_on == "retro_held":
        return "retrospective held" if times.retro_held_at else None
    if not times.is_open:
        return "resolved"
    if cancel_on.startswith("promise:"):
        current = times.next_update_at
        if current is None or promise_cancel_on(current) != cancel_on:
            return "promise replaced"
        return None
    if cancel_on == "acknowledged" and times.acknowledged_at is not None:
        return "acknowledged"
    if cancel_on == "progress" and times.progressed:
        return "progress posted"
    return None


# A step Slack keeps failing (outages, rate limits) is given up after this many attempts:
# 15 s, 30 s, 1, 2, 4, 8 min, then every 10 min, about an hour in all.
MAX_ATTEMPTS = 10


def retry_delay(attempts: int) -> timedelta:
    """Back off after a failed firing: 15 s, 30 s, 1 min … at most 10 min."""
    return timedelta(seconds=min(15 * 2 ** max(attempts - 1, 0), 600))


def gives_up(attempts: int) -> bool:
    """Whether a step that failed `attempts` times in a row stops being retried."""
    return attempts >= MAX_ATTEMPTS


@dataclass(frozen=True)
class PagerStep:
    """When a severity's plan pages pager targets: at declaration (`after_minutes` None) or
    at a ladder step, unless `cancel_on` happened first."""

    after_minutes: int | None
    cancel_on: str
    targets: list[str]


def pager_plan(policy: Policy, level: int) -> list[PagerStep]:
    """Who the severity's plan pages on their pagers, and when (for the commander's brief)."""
    steps: list[PagerStep] = []
    first = policy.directory.pagers(list(policy.severity(level).notify))
    if first:
        steps.append(PagerStep(None, "resolved", first))
    for rung in policy.ladder(level):
        pagers = policy.directory.pagers(list(rung.targets))
        if pagers:
            steps.append(PagerStep(rung.after_minutes, rung.cancel_on, pagers))
    return steps
