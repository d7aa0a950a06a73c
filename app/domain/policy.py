"""The organisation's response policy: severities, roles, people, names and links.

The defaults reproduce the seed process document, so a team that writes no config file still
runs the documented process. A `warroom.toml` overrides any part of it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from app.domain.alerts import AlertsPolicy
from app.domain.fields import NAME, FieldPolicy, TypePolicy
from app.domain.paging import PagingPolicy, pager_name
from app.domain.permissions import ACTIONS, DEFAULT_RESTRICTED
from app.domain.playbooks import KeyProblem, Playbook
from app.domain.roles import Role
from app.domain.statuspage import StatusPagePolicy

SLACK_ID = re.compile(r"^[US][A-Z0-9]{2,}$|^W[A-Z0-9]{2,}$")

FUNCTIONS = (
    "on_call",
    "on_call_backup",
    "tech_lead",
    "engineering_manager",
    "engineering_lead",
    "vp_engineering",
    "vp_ops",
    "ceo",
    "specialists",
)


# Upper bounds on the policy's numbers: far beyond any sensible value, so a typo (an extra zero,
# minutes written as seconds) stops start-up instead of silencing a reminder for years.
DAY_MINUTES = 24 * 60
WEEK_MINUTES = 7 * DAY_MINUTES
LEVELS = (1, 2, 3, 4)


def _known_level(level: int) -> int:
    if level not in LEVELS:
        raise ValueError("unknown severity level; severities are exactly levels 1, 2, 3 and 4")
    return level


Level = Annotated[int, AfterValidator(_known_level)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_functions(value: list[str]) -> list[str]:
    for function in value:
        if function not in FUNCTIONS:
            raise ValueError(f"unknown function {function!r}; known: {', '.join(FUNCTIONS)}")
    return value


Functions = Annotated[list[str], AfterValidator(_check_functions)]


class SeverityPolicy(_Strict):
    name: str
    impact: str
    examples: list[str] = Field(default_factory=list)
    response_time: str
    # Minutes to acknowledge; None means "during business hours".
    response_target_minutes: int | None = Field(ge=0, le=WEEK_MINUTES)
    notify: Functions = Field(default_factory=list)
    # Which escalation ladder applies ("" = none), and how often an update is expected.
    ladder: str = "standard"
    update_every_minutes: int | None = Field(default=None, ge=1, le=WEEK_MINUTES)
    # Pages, escalations and reminders wait for business hours.
    business_hours_only: bool = False


CancelOn = Literal["acknowledged", "progress", "resolved"]


class EscalationStep(_Strict):
    """One rung of a ladder: after `after_minutes` since declaration, unless `cancel_on`."""

    after_minutes: int = Field(ge=0, le=WEEK_MINUTES)
    cancel_on: CancelOn
    targets: Functions = Field(default_factory=list)
    # Functions only mentioned as a suggestion ("consider bringing in specialists").
    suggest: Functions = Field(default_factory=list)
    say: str
    checklist: list[str] = Field(default_factory=list)
    dm: bool = True
    invite: bool = True


class BusinessHours(_Strict):
    start: str = "09:00"
    end: str = "17:00"
    # ISO weekdays: 1 = Monday … 7 = Sunday.
    days: list[Annotated[int, Field(ge=1, le=7)]] = Field(default_factory=lambda: [1, 2, 3, 4, 5])

    @field_validator("start", "end")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"{value!r} is not a time like 09:00")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.start >= self.end:
            raise ValueError("start must be before end")
        if not self.days:
            raise ValueError("days must name at least one weekday")
        return self


def _standard_ladder() -> list[EscalationStep]:
    return [
        EscalationStep(
            after_minutes=5,
            cancel_on="acknowledged",
            targets=["on_call_backup", "tech_lead"],
            say=(
                "No acknowledgment after 5 minutes. Paging the on-call backup and alerting the "
                "tech lead. Check whether communication channels are down."
            ),
        ),
        EscalationStep(
            after_minutes=15,
            cancel_on="progress",
            targets=["engineering_manager"],
            suggest=["specialists"],
            say=(
                "No progress after 15 minutes. Escalating to the engineering manager. "
                "Consider bringing in specialists."
            ),
        ),
        EscalationStep(
            after_minutes=30,
            cancel_on="resolved",
            targets=["vp_engineering"],
            say="Not resolved after 30 minutes. Escalating to VP Engineering.",
            checklist=[
                "Prepare public communication",
                "Consider fallback procedures (feature flags, circuit breakers)",
            ],
        ),
    ]


class EscalationPolicy(_Strict):
    ladders: dict[str, list[EscalationStep]] = Field(
        default_factory=lambda: {"standard": _standard_ladder()}
    )
    business_hours: BusinessHours = Field(default_factory=BusinessHours)
    tick_seconds: int = Field(default=15, ge=1, le=300)
    snooze_minutes: list[Annotated[int, Field(ge=1, le=DAY_MINUTES)]] = Field(
        default_factory=lambda: [15, 30, 60]
    )
    # The seed: retrospective within 24 hours. First reminder after resolution, then repeats.
    retro_within_hours: int = Field(default=24, ge=1, le=30 * 24)
    retro_first_reminder_minutes: int = Field(default=60, ge=0, le=WEEK_MINUTES)
    retro_repeat_minutes: int = Field(default=240, ge=15, le=WEEK_MINUTES)
    # `/incident close` archives the channel this long after closing (0: at once), so late
    # readers still find the closing summary in place for a while.
    archive_after_minutes: int = Field(default=0, ge=0, le=30 * DAY_MINUTES)
    # How long a replica may hold a step, a message or a war room it is working on before
    # another replica takes it over (after a crash; a live replica renews its leases every
    # third of this while it works), and how old an unfinished declare must be before the
    # repair sweep finishes it.
    lease_seconds: int = Field(default=30, ge=1, le=3600)
    repair_after_seconds: int = Field(default=30, ge=0, le=3600)


class RolePolicy(_Strict):
    name: str
    brief: str


SlackIds = list[Annotated[str, Field(pattern=SLACK_ID.pattern)]]
# A directory entry: a Slack user or user group, or a pager target (`pager:<name>`).
Entries = list[
    Annotated[str, Field(pattern=f"{SLACK_ID.pattern}|^pager:[a-z0-9][a-z0-9_-]{{0,62}}$")]
]


class Directory(_Strict):
    """Who holds each function: Slack user IDs (U…/W…), user-group IDs (S…), and pager
    targets (`pager:<name>`, a `[paging.targets]` key) paged wherever the function is."""

    on_call: Entries = Field(default_factory=list)
    on_call_backup: Entries = Field(default_factory=list)
    tech_lead: Entries = Field(default_factory=list)
    engineering_manager: Entries = Field(default_factory=list)
    engineering_lead: Entries = Field(default_factory=list)
    vp_engineering: Entries = Field(default_factory=list)
    vp_ops: Entries = Field(default_factory=list)
    ceo: Entries = Field(default_factory=list)
    specialists: Entries = Field(default_factory=list)

    def _entries(self, functions: list[str]) -> list[str]:
        seen: dict[str, None] = {}
        for function in functions:
            for entry in getattr(self, function):
                seen.setdefault(entry, None)
        return list(seen)

    def members(self, functions: list[str]) -> list[str]:
        """Slack IDs for the given functions, in order, without repeats (no pager targets)."""
        return [e for e in self._entries(functions) if pager_name(e) is None]

    def pagers(self, functions: list[str]) -> list[str]:
        """The pager targets the given functions name, in order, without repeats."""
        return [name for e in self._entries(functions) if (name := pager_name(e)) is not None]

    def all_pagers(self) -> dict[str, list[str]]:
        """Each pager target named in the directory, with the functions naming it."""
        named: dict[str, list[str]] = {}
        for function in FUNCTIONS:
            for name in self.pagers([function]):
                named.setdefault(name, []).append(function)
        return named


class Links(_Strict):
    """Links shown in messages; each is left out of them until configured."""

    status_page: str = ""
    runbook: str = ""
    oncall_schedule: str = ""
    escalation_contacts: str = ""


def _channel_format(value: str) -> str:
    if "{id}" not in value:
        raise ValueError("must contain {id} so every incident gets its own channel")
    try:
        value.format(id=1, slug="x", date="20250101")
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(f"only {{id}}, {{slug}} and {{date}} may appear ({exc})") from None
    return value


class Workspace(_Strict):
    announce_channel: str = "incidents"
    channel_name_format: str = "incident-{id}"
    timezone: str = "UTC"
    templates_dir: str = ""
    # The incident type (a `[types]` key) of incidents declared without one; empty: the
    # first type defined.
    default_type: str = ""

    @field_validator("channel_name_format")
    @classmethod
    def _format_has_id(cls, value: str) -> str:
        return _channel_format(value)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value


def _default_severities() -> dict[int, SeverityPolicy]:
    return {
        1: SeverityPolicy(
            name="Critical",
            impact="Complete service outage or data loss",
            examples=[
                "All users unable to login",
                "database corruption",
                "payment processing down",
            ],
            response_time="Immediate",
            response_target_minutes=0,
            notify=["ceo", "vp_ops", "on_call", "on_call_backup"],
            update_every_minutes=30,
        ),
        2: SeverityPolicy(
            name="High",
            impact="Significant service degradation, major features unavailable",
            examples=["50% of users experiencing errors", "API latency > 5 seconds"],
            response_time="< 15 minutes",
            response_target_minutes=15,
            notify=["engineering_lead", "on_call"],
            update_every_minutes=60,
        ),
        3: SeverityPolicy(
            name="Medium",
            impact="Partial service degradation, minor features affected",
            examples=["10% of users experiencing issues", "non-critical feature down"],
            response_time="< 1 hour",
            response_target_minutes=60,
            notify=["on_call"],
            update_every_minutes=240,
        ),
        4: SeverityPolicy(
            name="Low",
            impact="Minor issues, workarounds available",
            examples=["Cosmetic bugs", "non-critical features slow"],
            response_time="During business hours",
            response_target_minutes=None,
            notify=[],
            ladder="",
            business_hours_only=True,
        ),
    }


def _default_roles() -> dict[Role, RolePolicy]:
    return {
        Role.COMMANDER: RolePolicy(
            name="Incident Commander",
            brief=(
                "You coordinate the response. Keep the channel focused, decide the severity, "
                "make sure the Technical Lead and Communications Lead roles are filled, agree "
                "when the next update is due and call the incident mitigated and resolved. You "
                "do not debug: you keep everyone else unblocked."
            ),
        ),
        Role.TECH_LEAD: RolePolicy(
            name="Technical Lead",
            brief=(
                "You direct troubleshooting. Collect logs and metrics, check recent deployments, "
                "query observability data and test suspected components. Propose the mitigation "
                "(rollback, config change, manual intervention), then watch its effect and tell "
                "the Commander what you see."
            ),
        ),
        Role.COMMS: RolePolicy(
            # Read in sentences: "<@U…> is now the Communications Lead".
            name="Communications Lead",
            brief=(
                "You update stakeholders. Post status updates on the agreed cadence, keep the "
                "status page current and answer questions outside the war room so responders "
                "can work. At resolution, notify everyone affected and start the "
                "post-incident communication plan."
            ),
        ),
    }


class Permissions(_Strict):
    # Actions only the incident's role holders, its declarer and `admins` may take.
    restricted: list[str] = Field(default_factory=lambda: [str(a) for a in DEFAULT_RESTRICTED])

    @field_validator("restricted")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for action in value:
            if action not in ACTIONS:
                raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
        return value


class Drills(_Strict):
    """Practice incidents (`/incident drill`, the declare form's Drill option). A drill runs
    like an incident inside its own channel: its pages and escalations reach only the people in
    the drill, it is announced only in `announce_channel` (empty: nowhere), and it counts in no
    metrics. A drill stays a drill."""

    channel_name_format: str = "drill-{id}"
    announce_channel: str = ""

    @field_validator("channel_name_format")
    @classmethod
    def _format_has_id(cls, value: str) -> str:
        return _channel_format(value)

    @field_validator("announce_channel")
    @classmethod
    def _bare_name(cls, value: str) -> str:
        return value.strip().lstrip("#")


class Limits(_Strict):
    """What one person may set in motion. Each declare opens a channel, posts an announcement
    and pages the severity's people: at most `declares_per_person` declares by one person in
    any `declare_window_minutes`, counted from the incidents stored (so across replicas and
    restarts). The first declare is never refused."""

    declares_per_person: int = Field(default=5, ge=1, le=1000)
    declare_window_minutes: int = Field(default=10, ge=1, le=1440)

    @property
    def declare_window(self) -> timedelta:
        return timedelta(minutes=self.declare_window_minutes)

    def declare_wait(self, declared: Iterable[datetime], now: datetime) -> timedelta | None:
        """How long until a person who declared at `declared` may declare again; None when
        they may now."""
        inside = sorted(t for t in declared if t > now - self.declare_window)
        excess = len(inside) - self.declares_per_person
        if excess < 0:
            return None
        return inside[excess] + self.declare_window - now


class Policy(_Strict):
    """Everything the organisation decides about how incidents run."""

    workspace: Workspace = Field(default_factory=Workspace)
    links: Links = Field(default_factory=Links)
    directory: Directory = Field(default_factory=Directory)
    severities: dict[Level, SeverityPolicy] = Field(default_factory=_default_severities)
    roles: dict[Role, RolePolicy] = Field(default_factory=_default_roles)
    escalation: EscalationPolicy = Field(default_factory=EscalationPolicy)
    permissions: Permissions = Field(default_factory=Permissions)
    limits: Limits = Field(default_factory=Limits)
    drills: Drills = Field(default_factory=Drills)
    # Monitoring alerts: their sources, routes and triage channel (docs/alerts.md).
    alerts: AlertsPolicy = Field(default_factory=AlertsPolicy)
    # Pager targets: PagerDuty, Opsgenie, signed webhooks (docs/paging.md).
    paging: PagingPolicy = Field(default_factory=PagingPolicy)
    # The public status page and its components (docs/status-page.md).
    statuspage: StatusPagePolicy = Field(default_factory=StatusPagePolicy)
    # Users (U…) or user groups (S…) who may take every restricted action on any incident.
    admins: SlackIds = Field(default_factory=list)
    # Incident types and custom fields (docs/types-fields-playbooks.md). None defined: every
    # incident has the type "" and no fields.
    types: dict[str, TypePolicy] = Field(default_factory=dict)
    fields: dict[str, FieldPolicy] = Field(default_factory=dict)
    # What to do for each kind of incident (docs/types-fields-playbooks.md).
    playbooks: list[Playbook] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _status_page_link(cls, data: object) -> object:
        """The built-in status page's address is the Initial Notification's status page link
        unless `[links] status_page` names another."""
        if not isinstance(data, dict):
            return data
        page = data.get("statuspage")
        links = data.get("links")
        if isinstance(page, dict) and page.get("enabled") and page.get("url"):
            if links is None:
                return {**data, "links": {"status_page": page["url"]}}
            if isinstance(links, dict) and not links.get("status_page"):
                return {**data, "links": {**links, "status_page": page["url"]}}
        return data

    @model_validator(mode="after")
    def _all_levels_present(self) -> Policy:
        missing = sorted(set(LEVELS) - set(self.severities))
        extra = sorted(set(self.severities) - set(LEVELS))
        if missing or extra:
            raise ValueError(
                "severities must define exactly levels 1, 2, 3 and 4"
                + (f" (missing {missing})" if missing else "")
                + (f" (unexpected {extra})" if extra else "")
            )
        for level, sev in self.severities.items():
            if sev.ladder and sev.ladder not in self.escalation.ladders:
                raise ValueError(
                    f"severity {level} uses ladder {sev.ladder!r}, which escalation.ladders "
                    f"does not define (defined: {', '.join(self.escalation.ladders) or 'none'})"
                )
        for name, functions in self.directory.all_pagers().items():
            if name not in self.paging.targets:
                raise ValueError(
                    f"directory.{functions[0]} names pager:{name}, which [paging.targets] does "
                    f"not define (defined: {', '.join(self.paging.targets) or 'none'})"
                )
        missing_roles = [r.value for r in Role if r not in self.roles]
        if missing_roles:
            raise ValueError(f"roles must define {', '.join(missing_roles)}")
        self._check_types_and_fields()
        problems = self.playbook_problems()
        if problems:
            key, message = problems[0]
            raise KeyProblem(key, message)
        return self

    def _check_types_and_fields(self) -> None:
        for kind, names in (("types", self.types), ("fields", self.fields)):
            for name in names:
                if not NAME.match(name):
                    raise ValueError(
                        f"{kind}.{name}: the name must be lowercase letters, digits, - or _, "
                        "starting with a letter (people type it)"
                    )
        defined = ", ".join(self.fields) or "none"
        for name, spec in self.types.items():
            for used in spec.fields:
                if used not in self.fields:
                    raise ValueError(
                        f"types.{name}.fields names field {used!r}, which [fields] does not "
                        f"define (defined: {defined})"
                    )
            if spec.channel_name_format:
                try:
                    _channel_format(spec.channel_name_format)
                except ValueError as exc:
                    raise ValueError(f"types.{name}.channel_name_format {exc}") from None
        default = self.workspace.default_type
        if default and default not in self.types:
            raise ValueError(
                f"workspace.default_type names type {default!r}, which [types] does not define "
                f"(defined: {', '.join(self.types) or 'none'})"
            )

    @property
    def default_type(self) -> str:
        """The type of an incident declared without one ("" when no types are defined)."""
        return self.workspace.default_type or next(iter(self.types), "")

    def incident_type(self, name: str) -> TypePolicy | None:
        return self.types.get(name)

    def fields_for(self, type_name: str) -> list[str]:
        """The custom fields an incident of this type has: the type's, or every field when
        no types are defined or the type is not (an incident declared before types were)."""
        spec = self.types.get(type_name)
        return list(spec.fields) if spec is not None else list(self.fields)

    def brief(self, role: Role, type_name: str = "") -> str:
        """The role's brief for an incident of this type."""
        spec = self.types.get(type_name)
        return (spec.briefs.get(role) if spec else None) or self.roles[role].brief

    def channel_name_format(self, type_name: str = "") -> str:
        spec = self.types.get(type_name)
        return (spec.channel_name_format if spec else "") or self.workspace.channel_name_format

    def playbook_problems(self) -> list[tuple[str, str]]:
        """What the playbooks name that the rest of the policy does not define (a directory
        function, a pager target) and names used twice, as (key, problem)."""
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for n, book in enumerate(self.playbooks):
            if book.name in seen:
                problems.append((f"playbooks.{n}.name", f"{book.name!r} names two playbooks"))
            seen.add(book.name)
            for i, step in enumerate(book.steps):
                key = f"playbooks.{n}.steps.{i}"
                if step.invite is not None:
                    for function in step.invite.functions:
                        if function not in FUNCTIONS:
                            problems.append(
                                (
                                    f"{key}.invite.functions",
                                    f"unknown directory function {function!r}; known: "
                                    f"{', '.join(FUNCTIONS)}",
                                )
                            )
                for target in step.page or []:
                    if target not in self.paging.targets:
                        defined = ", ".join(self.paging.targets) or "none"
                        problems.append(
                            (
                                f"{key}.page",
                                f"unknown pager target {target!r}, which [paging.targets] "
                                f"does not define (defined: {defined})",
                            )
                        )
        return problems

    def playbook(self, name: str) -> Playbook | None:
        return next((book for book in self.playbooks if book.name == name), None)

    def severity(self, level: int) -> SeverityPolicy:
        return self.severities[level]

    def role(self, role: Role) -> RolePolicy:
        return self.roles[role]

    def ladder(self, level: int) -> list[EscalationStep]:
        name = self.severities[level].ladder
        return list(self.escalation.ladders.get(name, [])) if name else []

    def audience(self, level: int) -> list[str]:
        """User and user-group IDs to bring in for a severity."""
        return self.directory.members(self.severities[level].notify)
