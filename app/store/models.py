"""Tables. The incident row also records which Slack steps of its war room are done.

Keeping `channel_id`, `notification_ts`, `announcement_ts` and friends on the row is what lets a
declare or resolve that was interrupted be finished later instead of repeated.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, String, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from app.store.types import UTCDateTime


def _utc(**kwargs: Any) -> Any:
    return Field(sa_column=Column(UTCDateTime(), **kwargs))


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int | None = Field(default=None, primary_key=True)
    title: str
    severity: int
    status: str = Field(index=True)
    description: str = ""
    service: str = ""
    is_private: bool = False
    # A practice incident: its own room only, no real audience, no metrics. Never changes.
    is_drill: bool = False
    # Its type (a `[types]` key; "" when no types are defined) and its custom fields' values
    # by field name (`[fields]` keys), each checked against its field's kind when set.
    type: str = Field(default="", sa_column=Column(String, nullable=False, server_default=""))
    fields: dict[str, Any] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    # The status page components it affects: component id -> impact (docs/status-page.md).
    components: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    # Its incident on a hosted status page (Atlassian Statuspage), once created there.
    statuspage_id: str | None = None
    declared_by: str
    # Idempotency key of the request that declared it (view id, trigger id …).
    request_key: str | None = Field(default=None, unique=True)
    source_channel_id: str | None = None
    source_ts: str | None = None
    source_permalink: str | None = None
    # The declarer's response_url, to tell them the channel once it exists.
    reply_url: str | None = None

    channel_id: str | None = Field(default=None, index=True)
    channel_name: str | None = None
    notification_ts: str | None = None
    notification_pinned: bool = False
    announcement_channel_id: str | None = None
    announcement_ts: str | None = None
    war_room_ready: bool = False
    # Why Warroom cannot post where the incident's messages go ("channel:is_archived",
    # "thread:not_in_channel" …), once the commander and declarer were told; cleared when a
    # post gets through again. Messages wait meanwhile.
    room_problem: str | None = None

    detected_at: datetime = _utc(nullable=False)
    declared_at: datetime = _utc(nullable=False)
    acknowledged_at: datetime | None = _utc(nullable=True)
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = _utc(nullable=True)
    resolved_at: datetime | None = _utc(nullable=True)
    resolved_by: str | None = None
    closed_at: datetime | None = _utc(nullable=True)
    last_update_at: datetime | None = _utc(nullable=True)
    # When the next update is promised ("next update by 14:30"): set by each update (and the
    # declaration) while the incident is open, None once resolved or without a cadence.
    next_update_at: datetime | None = _utc(nullable=True)

    root_cause: str = ""
    impact_summary: str = ""
    users_affected: str = ""
    next_steps: str = ""
    # Bumped by every change people see in the topic, pinned summary and announcement;
    # `published_version` is the one those last showed. Different means "refresh them".
    version: int = 0
    published_version: int = 0
    # A digest of the topic, pinned notification and announcement as Slack last accepted
    # them: a refresh sends only what differs, and only what Slack took counts as shown.
    published_topic: str | None = None
    published_notification: str | None = None
    published_announcement: str | None = None
    retro_held_at: datetime | None = _utc(nullable=True)
    # When the postmortem document was last generated; closing waits for it.
    postmortem_at: datetime | None = _utc(nullable=True)
    # Which replica is building or repairing the war room, and until when (a lease).
    repair_owner: str | None = None
    repair_until: datetime | None = _utc(nullable=True)
    # Escalation planning a change still owes (`declared`, `acknowledged`, `progress`,
    # `severity`, `resolved`), written in the change's own transaction; cleared once planned.
    # A crash between the change and its planning leaves them here for the repair sweep.
    plans_pending: list[str] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False, server_default="[]")
    )
    plans_pending_since: datetime | None = _utc(nullable=True)


class RoleAssignment(SQLModel, table=True):
    """One holder of one role for a span of time; the open row (ended_at NULL) is current."""

    __tablename__ = "role_assignments"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    role: str
    user_id: str
    assigned_by: str
    assigned_at: datetime = _utc(nullable=False)
    ended_at: datetime | None = _utc(nullable=True)


class StatusUpdate(SQLModel, table=True):
    __tablename__ = "status_updates"
    __table_args__ = (UniqueConstraint("incident_id", "request_key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    status: str
    done_so_far: str = ""
    investigation: str = ""
    eta: str = ""
    posted_by: str
    posted_at: datetime = _utc(nullable=False)
    request_key: str | None = None


class TimelineEvent(SQLModel, table=True):
    __tablename__ = "timeline_events"
    __table_args__ = (Index("uq_timeline_source_key", "source_key", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    at: datetime = _utc(nullable=False)
    kind: str
    actor: str | None = None
    text: str = ""
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Set for entries taken from Slack messages ("channel:ts"): a message pinned and then
    # reacted to, or an event Slack delivers twice, becomes one entry only. Entries a command
    # made (a note, the retrospective agenda, "retrospective held") carry the request's key
    # ("command:<trigger_id>") here, so the same request again adds nothing.
    source_key: str | None = None


class ActionItem(SQLModel, table=True):
    """A follow-up agreed in the review: prevention, documentation or monitoring work.

    An owner and a due date make it somebody's job; the escalation engine reminds the owner
    each working day once it is due, until it is done.
    """

    __tablename__ = "action_items"
    __table_args__ = (UniqueConstraint("request_key", name="uq_action_items_request_key"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    text: str
    owner: str | None = Field(default=None, index=True)
    due_on: date | None = None
    created_by: str
    created_at: datetime = _utc(nullable=False)
    done_at: datetime | None = _utc(nullable=True)
    done_by: str | None = None
    # Idempotency key of the request that added it (`command:<trigger_id>`): the same request
    # again finds this item instead of adding another.
    request_key: str | None = None


class EscalationRow(SQLModel, table=True):
    """One planned step (page, ladder rung, reminder) and its fate.

    `state` moves pending -> firing (claimed by one replica until `lease_until`) -> fired, or to
    cancelled. `done` lists the parts already performed (each DM, the channel post) so a retry
    after a failure repeats none of them.
    """

    __tablename__ = "escalations"
    __table_args__ = (
        # At most one live row per step and incident, even if two replicas plan at once.
        Index(
            "uq_escalations_live_step",
            "incident_id",
            "key",
            unique=True,
            sqlite_where=text("state IN ('pending', 'firing')"),
            postgresql_where=text("state IN ('pending', 'firing')"),
        ),
        Index("ix_escalations_due", "state", "due_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    key: str
    kind: str
    step: int | None = None
    due_at: datetime = _utc(nullable=False)
    state: str = "pending"
    cancel_on: str
    targets: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    done: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    attempts: int = 0
    claimed_by: str | None = None
    lease_until: datetime | None = _utc(nullable=True)
    fired_at: datetime | None = _utc(nullable=True)
    cancelled_at: datetime | None = _utc(nullable=True)
    outcome: str = ""
    created_at: datetime = _utc(nullable=False)


class OutboxMessage(SQLModel, table=True):
    """A message to post, written in the same transaction as the change it announces.

    Delivery claims rows like the escalation engine does, posts them in order per incident and
    records the `ts`. A row whose outcome is unknown (the process died mid-call) is looked up in
    Slack by its metadata key before it is posted again, so it is never posted twice.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "state", "due_at"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    # "channel", "thread" (under the announcement) or "user:<id>" (a DM).
    destination: str
    broadcast: bool = False
    text: str
    blocks: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSON, nullable=False)
    )
    state: str = "pending"
    attempts: int = 0
    due_at: datetime = _utc(nullable=False)
    claimed_by: str | None = None
    lease_until: datetime | None = _utc(nullable=True)
    # Set when a post was sent but its answer never came back: look before posting again.
    uncertain: bool = False
    sent_ts: str | None = None
    sent_channel: str | None = None
    outcome: str = ""
    created_at: datetime = _utc(nullable=False)


class ProcessedEvent(SQLModel, table=True):
    """Events API deliveries already handled; Slack retries them, Bolt does not de-duplicate."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True)
    received_at: datetime = _utc(nullable=False)


class InboxRequest(SQLModel, table=True):
    """A Slack request recorded before it was acknowledged, until it has been carried out.

    Slack was told "received" only after this row was committed; the row goes when the work is
    done. A row left behind by a process that died is taken over (its lease lapsed, or it is
    this very replica's from before a restart) and carried out again: the work is idempotent
    by the request's own key.
    """

    __tablename__ = "inbox"

    id: int | None = Field(default=None, primary_key=True)
    # "command:<trigger_id>": a retry or replay of the same request finds the same row.
    key: str = Field(unique=True)
    kind: str
    body: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = _utc(nullable=False)
    owner: str | None = None
    lease_until: datetime | None = _utc(nullable=True)
    attempts: int = 0


class AlertGroup(SQLModel, table=True):
    """A group of alerts as a monitoring source groups them (Alertmanager's `groupKey`).

    It is linked to at most one incident at a time and has at most one triage card. `episode`
    counts the times the group started firing after it had cleared: a dismissed group that
    fires again gets a new card, and a group whose incident is over a new incident.
    """

    __tablename__ = "alert_groups"
    __table_args__ = (UniqueConstraint("source", "key_hash", name="uq_alert_groups_key"),)

    id: int | None = Field(default=None, primary_key=True)
    source: str
    # sha256 of the group key: Alertmanager's keys can be longer than an index takes.
    key_hash: str
    group_key: str
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # The route that applied when the group was first seen in this episode (1-based; 0 the
    # built-in default) and what it said to do.
    route: int = 0
    action: str = "triage"
    episode: int = 1
    firing: bool = True
    # How many alerts the last webhook said it left out (Alertmanager's `truncatedAlerts`).
    truncated: int = 0
    incident_id: int | None = Field(default=None, foreign_key="incidents.id", index=True)
    # The triage card: where it is, and which version of the group it shows.
    card_channel: str | None = None
    card_ts: str | None = None
    version: int = 1
    card_version: int = 0
    # Alert summaries for the incident's channel: the version last summarised and when.
    summary_version: int = 0
    summary_at: datetime | None = _utc(nullable=True)
    cleared_said: bool = False
    dismissed_by: str | None = None
    dismissed_reason: str | None = None
    dismissed_at: datetime | None = _utc(nullable=True)
    # Which replica is posting its card or declaring its incident, and until when.
    owner: str | None = None
    lease_until: datetime | None = _utc(nullable=True)
    first_seen_at: datetime = _utc(nullable=False)
    updated_at: datetime = _utc(nullable=False)


class AlertRow(SQLModel, table=True):
    """One occurrence of one alert: from when it fired (`starts_at`) to when it cleared.

    At most one open row per source and fingerprint; an alert firing again after it cleared is
    a new row.
    """

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("source", "fingerprint", "starts_at", name="uq_alerts_occurrence"),
        Index(
            "uq_alerts_open_fingerprint",
            "source",
            "fingerprint",
            unique=True,
            sqlite_where=text("resolved_at IS NULL"),
            postgresql_where=text("resolved_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="alert_groups.id", index=True)
    source: str
    fingerprint: str
    # The group's episode the occurrence belongs to (see AlertGroup.episode).
    episode: int = 1
    labels: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    annotations: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False)
    )
    links: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    starts_at: datetime = _utc(nullable=False)
    ends_at: datetime | None = _utc(nullable=True)
    received_at: datetime = _utc(nullable=False)
    resolved_at: datetime | None = _utc(nullable=True)


class PagerCall(SQLModel, table=True):
    """One call to a pager provider (trigger, acknowledge or resolve an incident's page at a
    target), written in the same transaction as what asked for it, then delivered like the
    outbox delivers Slack messages: claimed with a lease, in order per incident and target,
    retried with backoff until the provider accepts it or refuses it for good.

    The provider de-duplicates by `dedup_key`, so a call sent again after a crash between the
    provider's answer and this row's bookkeeping is harmless."""

    __tablename__ = "pager_calls"
    __table_args__ = (
        Index("ix_pager_calls_due", "state", "due_at"),
        # What asked for a call (a ladder step's row and target, a command's request) asks once.
        UniqueConstraint("source_key", name="uq_pager_calls_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    target: str
    provider: str
    action: str  # trigger, acknowledge, resolve
    dedup_key: str = Field(index=True)
    summary: str
    # Why: "escalation step 1", "Sev1 declared", "paged by <@U…>" (shown in `escalations`).
    reason: str = ""
    requested_by: str | None = None
    message: str = ""
    source_key: str | None = None
    state: str = "pending"  # pending, sending, sent, failed
    attempts: int = 0
    due_at: datetime = _utc(nullable=False)
    claimed_by: str | None = None
    lease_until: datetime | None = _utc(nullable=True)
    outcome: str = ""
    # A problem with this call (a refused key, a provider down for long) was told in Slack.
    told: bool = False
    sent_at: datetime | None = _utc(nullable=True)
    created_at: datetime = _utc(nullable=False)
    # What the provider says people did with the page (its webhooks): acknowledged, resolved.
    remote_state: str | None = None
    remote_by: str | None = None
    remote_at: datetime | None = _utc(nullable=True)


class CatchUp(SQLModel, table=True):
    """When Warroom last sent one person the catch-up on one incident (a DM when they join its
    channel): at most one a person per `catchup.EVERY`. One row per person and incident, moved
    forward only by a conditional update, so two replicas handling the same join (or two joins
    at once) send one."""

    __tablename__ = "catchups"
    __table_args__ = (UniqueConstraint("incident_id", "user_id", name="uq_catchups_person"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    user_id: str
    sent_at: datetime = _utc(nullable=False)


class ChecklistTask(SQLModel, table=True):
    """One task of a playbook's checklist: posted in the war room with a Done button (one
    message per checklist, edited in place as tasks are done). `run_key` is the playbook
    step's run; one row per task of it, so running the step again adds none."""

    __tablename__ = "checklist_tasks"
    __table_args__ = (
        UniqueConstraint("incident_id", "run_key", "position", name="uq_checklist_tasks_task"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    playbook: str
    run_key: str
    position: int
    text: str
    role: str | None = None
    due_at: datetime | None = _utc(nullable=True)
    done_at: datetime | None = _utc(nullable=True)
    done_by: str | None = None
    # Where the checklist's message is (set once it is posted).
    channel_id: str | None = None
    message_ts: str | None = None
    created_at: datetime = _utc(nullable=False)


class PublicUpdate(SQLModel, table=True):
    """One public update of an incident: a draft offered to the Comms lead, then published
    (by a person, or by the policy's auto-publish), skipped, or superseded by a newer draft.

    Public surfaces read published rows only. A published row bound for a hosted status page
    is delivered like the outbox delivers Slack messages: claimed with a lease, in order per
    incident, retried with backoff; `remote_state` follows it."""

    __tablename__ = "public_updates"
    __table_args__ = (
        Index("ix_public_updates_remote", "remote_state", "remote_due_at"),
        # What asked for a draft (a change of the incident, a command) asks once.
        UniqueConstraint("source_key", name="uq_public_updates_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    # draft, published, skipped, superseded
    state: str = Field(default="draft", index=True)
    # What it follows: declared, update, resolved, manual
    reason: str
    status: str  # app.domain.statuspage.PublicStatus
    title: str
    body: str
    # Component id -> impact, as this update tells the public.
    components: dict[str, str] = Field(
        default_factory=dict, sa_column=Column(JSON, nullable=False, server_default="{}")
    )
    source_key: str | None = None
    # Who the draft was offered to.
    offered_to: str | None = None
    created_at: datetime = _utc(nullable=False)
    decided_by: str | None = None  # a user ID, or "auto" (the policy's auto-publish)
    decided_at: datetime | None = _utc(nullable=True)
    published_at: datetime | None = _utc(nullable=True, index=True)
    # Delivery to a hosted status page: None (none configured), pending, sending, sent, failed.
    remote_state: str | None = None
    remote_attempts: int = 0
    remote_due_at: datetime | None = _utc(nullable=True)
    remote_claimed_by: str | None = None
    remote_lease_until: datetime | None = _utc(nullable=True)
    remote_outcome: str = ""
    remote_told: bool = False
