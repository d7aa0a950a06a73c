"""Playbooks (`[[playbooks]]` in the policy): what to do for each kind of incident.

A playbook says when it applies (an event — declared, severity changed, status changed — and
conditions on the incident: severity, type, service, status, custom field values, the labels of
its alerts, a delay after declaration) and what to do, as ordered steps from a small safe set:
invite people, post a message (a template), post a checklist, add a channel bookmark, page
pager targets. The engine runs each step once per incident (`run_key`), as a durable row.

Pure rules: the policy's shape and the matcher. Cross-checks against the rest of the policy
(directory functions, pager targets) are made by `Policy`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot

Event = Literal["declared", "severity_changed", "status_changed"]
EVENTS: tuple[str, ...] = get_args(Event)
STEP_KINDS = ("invite", "post", "checklist", "bookmark", "page")
NAME = r"^[a-z0-9][a-z0-9_-]{0,62}$"
MAX_TASKS = 20
WEEK_MINUTES = 7 * 24 * 60


class KeyProblem(ValueError):
    """A policy problem found by a check across sections, with the key it is about (the
    policy loader names it, as it names the key of a problem in one field)."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _as_list(value: Any) -> Any:
    """One value where a list is expected means a list of one (`type = "security"`)."""
    if isinstance(value, str | int) and not isinstance(value, bool):
        return [value]
    return value


def _as_table_of_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _as_list(v) for k, v in value.items()}
    return value


Texts = Annotated[list[str], BeforeValidator(_as_list)]
TextsByName = Annotated[dict[str, list[str]], BeforeValidator(_as_table_of_lists)]


class When(_Strict):
    """When a playbook applies. Every condition given must hold; a list holds when any of its
    values does."""

    event: Annotated[list[Event], BeforeValidator(_as_list)] = Field(
        default_factory=lambda: list[Event](["declared"])
    )
    severity: Annotated[list[Annotated[int, Field(ge=1, le=4)]], BeforeValidator(_as_list)] = Field(
        default_factory=list
    )
    # Incident types (`[types.<name>]`); "default" or "" for an incident without a type.
    type: Texts = Field(default_factory=list)
    service: Texts = Field(default_factory=list)
    status: Texts = Field(default_factory=list)
    # Custom field values by field name (`[fields.<name>]`).
    fields: TextsByName = Field(default_factory=dict)
    # Labels of the incident's alerts (one alert carrying them all is enough).
    alert_labels: TextsByName = Field(default_factory=dict)
    # The steps are due this long after the declaration (at once when that has passed).
    after_minutes: int = Field(default=0, ge=0, le=WEEK_MINUTES)

    @field_validator("event")
    @classmethod
    def _some_event(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError(f"name at least one event: {', '.join(EVENTS)}")
        return value

    @field_validator("status")
    @classmethod
    def _known_status(cls, value: list[str]) -> list[str]:
        known = [s.value for s in Status]
        for status in value:
            if status not in known:
                raise ValueError(f"unknown status {status!r}; known: {', '.join(known)}")
        return value


SlackUser = Annotated[str, Field(pattern=r"^[UW][A-Z0-9]{2,}$")]
SlackGroup = Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$")]


class Invite(_Strict):
    users: list[SlackUser] = Field(default_factory=list)
    groups: list[SlackGroup] = Field(default_factory=list)
    # Directory functions (`[directory]`): the people (and groups) they name.
    functions: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _someone(self) -> Invite:
        if not (self.users or self.groups or self.functions):
            raise ValueError("name users, groups or functions to invite")
        return self


class Task(_Strict):
    text: str = Field(min_length=1, max_length=300)
    # The role that owns the task: its holder is nudged when the task is overdue.
    role: Role | None = None
    due_minutes: int | None = Field(default=None, ge=1, le=WEEK_MINUTES)

    @field_validator("role", mode="before")
    @classmethod
    def _role(cls, value: Any) -> Any:
        if isinstance(value, str) and value not in {r.value for r in Role}:
            known = ", ".join(r.value for r in Role)
            raise ValueError(f"unknown role {value!r}; known: {known}")
        return value


def check_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.netloc or " " in value:
        raise ValueError(f"{value!r} is not a web address (https://…)")
    return value


class Bookmark(_Strict):
    title: str = Field(min_length=1, max_length=100)
    url: str

    @field_validator("url")
    @classmethod
    def _web_address(cls, value: str) -> str:
        return check_url(value)


class Step(_Strict):
    """Exactly one of: invite, post (a template name), checklist, bookmark, page."""

    invite: Invite | None = None
    post: str | None = None
    checklist: list[Task] | None = None
    bookmark: Bookmark | None = None
    page: Texts | None = None

    @model_validator(mode="after")
    def _one_thing(self) -> Step:
        given = [kind for kind in STEP_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(
                f"a step does exactly one thing: one of {', '.join(STEP_KINDS)}"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.post is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+\.j2", self.post):
            raise ValueError(f"post names a template file (name.md.j2), got {self.post!r}")
        if self.checklist is not None and not 1 <= len(self.checklist) <= MAX_TASKS:
            raise ValueError(f"a checklist has 1 to {MAX_TASKS} tasks")
        if self.page is not None and not self.page:
            raise ValueError("page names at least one pager target")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in STEP_KINDS if getattr(self, kind) is not None)

    def describe(self) -> str:
        """What the step does, in a few words (the timeline, the dry run)."""
        if self.invite is not None:
            who = [*self.invite.users, *self.invite.groups, *self.invite.functions]
            return f"invite {', '.join(who)}"
        if self.post is not None:
            return f"post {self.post}"
        if self.checklist is not None:
            n = len(self.checklist)
            return f"checklist of {n} task{'s' if n != 1 else ''}"
        if self.bookmark is not None:
            return f"bookmark {self.bookmark.title}"
        return f"page {', '.join(self.page or [])}"


class Playbook(_Strict):
    name: str = Field(pattern=NAME)
    description: str = ""
    when: When = Field(default_factory=When)
    # Once per incident (the default), or once per occurrence of the event.
    once: bool = True
    steps: list[Step] = Field(min_length=1, max_length=30)


# --- matching -----------------------------------------------------------------------------


def _one_of(value: Any, wanted: Iterable[str]) -> bool:
    """Whether a value (or any value of a list: a multi-select field) is one of `wanted`,
    compared as text, case-insensitively."""
    allowed = {str(w).strip().lower() for w in wanted}
    values = value if isinstance(value, list | tuple | set) else [value]
    return any(str(v).strip().lower() in allowed for v in values if v is not None and v != "")


def _labels_match(wanted: Mapping[str, list[str]], alerts: Iterable[Mapping[str, str]]) -> bool:
    return any(
        all(name in labels and _one_of(labels[name], values) for name, values in wanted.items())
        for labels in alerts
    )


def matches(
    playbook: Playbook,
    incident: IncidentSnapshot,
    event: str,
    alert_labels: Iterable[Mapping[str, str]] = (),
) -> bool:
    """Whether `playbook` applies to `incident` on `event`. `alert_labels`: the labels of
    each alert of the incident (each alert's own labels with its group's)."""
    when = playbook.when
    if event not in when.event:
        return False
    if when.severity and incident.severity not in when.severity:
        return False
    # "" and "default" both mean the default type.
    types = [t or "default" for t in when.type]
    if types and not _one_of(incident.type or "default", types):
        return False
    if when.service and not _one_of(incident.service, when.service):
        return False
    if when.status and not _one_of(incident.status.value, when.status):
        return False
    for name, values in when.fields.items():
        if not _one_of(incident.fields.get(name), values):
            return False
    return not when.alert_labels or _labels_match(when.alert_labels, list(alert_labels))


def run_key(playbook: str, index: int, occurrence: str | None = None) -> str:
    """The unique key of one step's run on one incident: the playbook, the step's position
    (from 1) and, for a playbook that runs on every occurrence of its event, the occurrence."""
    key = f"playbook:{playbook}:{index + 1}"
    return f"{key}:{occurrence}" if occurrence else key


@dataclass(frozen=True)
class StepRef:
    playbook: str
    index: int  # from 0


def parse_run_key(key: str) -> StepRef | None:
    parts = key.split(":")
    if len(parts) < 3 or parts[0] != "playbook" or not parts[2].isdigit():
        return None
    return StepRef(parts[1], int(parts[2]) - 1)


def checklist_key(task_id: int) -> str:
    """The key of a checklist task's overdue nudge."""
    return f"checklist:{task_id}"
