"""Alerts from monitoring systems: the sources that may send them, the routes that decide what
each one sets in motion, and the plain shapes a payload is read into.

Routing follows Alertmanager's own matcher semantics (`=`, `!=`, `=~`, `!~`, regular expressions
anchored at both ends, a missing label reads as empty), so a team can copy the matchers of its
Alertmanager routes. The first route that matches wins; a route with no matchers matches
everything, and when none matches the built-in default (a triage card) applies.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

SourceType = Literal["alertmanager", "grafana", "generic"]
Action = Literal["declare", "triage", "notify", "drop"]
OnClear = Literal["suggest", "mitigate", "off"]

_LABEL = r"[A-Za-z_][A-Za-z0-9_]*"
_MATCHER = re.compile(rf"^\s*({_LABEL})\s*(=~|!~|!=|=)\s*(.*?)\s*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SOURCE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LEVELS = (1, 2, 3, 4)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class Matcher:
    """One label condition, as Alertmanager writes it: `severity=~"critical|page"`."""

    label: str
    op: str
    value: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        found = labels.get(self.label, "")
        if self.op == "=":
            return found == self.value
        if self.op == "!=":
            return found != self.value
        hit = re.fullmatch(self.value, found) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f'{self.label}{self.op}"{self.value}"'


def parse_matcher(text: str) -> Matcher:
    """`label=value`, `label!=value`, `label=~regex`, `label!~regex`; the value may be quoted.
    Raises ValueError naming what is wrong."""
    found = _MATCHER.match(text)
    if not found:
        raise ValueError(
            f"{text!r} is not a matcher; write label=value, label!=value, label=~regex or "
            "label!~regex"
        )
    label, op, value = found.groups()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    if op in ("=~", "!~"):
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{text!r}: the regular expression does not compile ({exc})") from None
    return Matcher(label, op, value)


def _matchers(value: list[str]) -> list[str]:
    for text in value:
        parse_matcher(text)
    return value


# A severity level: severities are exactly 1, 2, 3 and 4.
Level = Annotated[int, Field(ge=min(LEVELS), le=max(LEVELS))]


def _fields(template: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ValueError(f"{template!r} is not a title template ({exc})") from None


class AlertSource(_Strict):
    """A monitoring system allowed to post to `/alerts/<name>`."""

    type: SourceType
    # The environment variable holding the Bearer token the sender must present.
    token_env: str
    # `generic` only: also (or instead) accept an HMAC-SHA256 of the raw body, hex, with the
    # secret in this environment variable, in `signature_header` ("sha256=<hex>" or "<hex>").
    hmac_env: str = ""
    signature_header: str = "X-Warroom-Signature"

    @field_validator("token_env", "hmac_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if value and not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @model_validator(mode="after")
    def _hmac_for_generic(self) -> AlertSource:
        if self.hmac_env and self.type != "generic":
            raise ValueError("hmac_env applies to generic sources only")
        if not self.token_env and not self.hmac_env:
            raise ValueError("token_env must name the variable holding the source's token")
        return self


class Route(_Strict):
    """What an alert group sets in motion. See docs/alerts.md for each key."""

    # Which sources the route applies to (empty: every source).
    sources: list[str] = Field(default_factory=list)
    match: Annotated[list[str], AfterValidator(_matchers)] = Field(default_factory=list)
    action: Action = "triage"
    # A fixed severity, or one read from `severity_label` through `severity_map`.
    severity: Level | None = None
    severity_label: str = "severity"
    severity_map: dict[str, Level] = Field(
        default_factory=lambda: {"critical": 1, "page": 1, "error": 2, "warning": 3, "info": 4}
    )
    default_severity: Level = 3
    service_label: str = "service"
    # Python format fields name labels and annotations: "{alertname} on {instance}".
    title: str = "{summary}"
    # The triage card's channel (empty: `[alerts].triage_channel`).
    channel: str = ""
    # The incident's commander when the bot declares (empty: nobody until someone takes it).
    commander: Annotated[str, Field(pattern=r"^$|^[UW][A-Z0-9]{2,}$")] = ""
    attach_window_minutes: int = Field(default=0, ge=0, le=7 * 24 * 60)
    correlate_on: list[str] = Field(default_factory=lambda: ["service"])
    on_clear: OnClear = "suggest"

    @field_validator("title")
    @classmethod
    def _title_fields(cls, value: str) -> str:
        for name in _fields(value):
            if not re.fullmatch(_LABEL, name):
                raise ValueError(f"title: {{{name}}} must name a label or annotation")
        return value

    @field_validator("channel")
    @classmethod
    def _bare(cls, value: str) -> str:
        return value.strip().lstrip("#")

    @property
    def matchers(self) -> list[Matcher]:
        return [parse_matcher(text) for text in self.match]

    def applies(self, source: str, labels: Mapping[str, str]) -> bool:
        if self.sources and source not in self.sources:
            return False
        return all(m.matches(labels) for m in self.matchers)

    def severity_for(self, labels: Mapping[str, str]) -> int:
        if self.severity is not None:
            return self.severity
        value = labels.get(self.severity_label, "").strip().lower()
        return self.severity_map.get(value, self.default_severity)

    def title_for(self, labels: Mapping[str, str], annotations: Mapping[str, str]) -> str:
        values = _Fill({**labels, **annotations})
        title = string.Formatter().vformat(self.title, (), values).strip()
        return title or labels.get("alertname", "") or "Alert"

    def service_for(self, labels: Mapping[str, str]) -> str:
        return labels.get(self.service_label, "")


class _Fill(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


class AlertsPolicy(_Strict):
    """`[alerts]` in the policy file."""

    sources: dict[str, AlertSource] = Field(default_factory=dict)
    routes: list[Route] = Field(default_factory=list)
    triage_channel: str = "alerts"
    # At most one summary of firing and clearing alerts per group in an incident's channel in
    # this many seconds.
    summary_every_seconds: int = Field(default=60, ge=1, le=3600)

    @field_validator("sources")
    @classmethod
    def _names(cls, value: dict[str, AlertSource]) -> dict[str, AlertSource]:
        for name in value:
            if not _SOURCE_NAME.match(name):
                raise ValueError(
                    f"source name {name!r}: use lower-case letters, digits, - and _ "
                    "(it becomes the URL /alerts/<name>)"
                )
        return value

    @field_validator("triage_channel")
    @classmethod
    def _bare(cls, value: str) -> str:
        return value.strip().lstrip("#")

    @model_validator(mode="after")
    def _routes_name_sources(self) -> AlertsPolicy:
        for number, route in enumerate(self.routes, start=1):
            for name in route.sources:
                if name not in self.sources:
                    raise ValueError(
                        f"route {number} names source {name!r}, which [alerts.sources] does "
                        f"not define (defined: {', '.join(self.sources) or 'none'})"
                    )
        return self

    def route(self, source: str, labels: Mapping[str, str]) -> tuple[int, Route]:
        """The first route that applies (numbered from 1), else 0 and the default route."""
        for number, route in enumerate(self.routes, start=1):
            if route.applies(source, labels):
                return number, route
        return 0, DEFAULT_ROUTE

    def channel_for(self, route: Route) -> str:
        return route.channel or self.triage_channel


DEFAULT_ROUTE = Route()


# --- what a payload says -------------------------------------------------------------------


class PayloadError(ValueError):
    """A payload that is not the source's shape; the message says what is wrong, in one line."""


@dataclass(frozen=True)
class Alert:
    """One alert as its source last described it."""

    fingerprint: str
    firing: bool
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    # Named links worth showing: generatorURL, runbook_url, dashboardURL, silenceURL, panelURL.
    links: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AlertBatch:
    """One webhook: a group of alerts (Alertmanager's grouping, or the sender's own key)."""

    group_key: str
    alerts: list[Alert]
    group_labels: dict[str, str] = field(default_factory=dict)
    common_labels: dict[str, str] = field(default_factory=dict)
    truncated: int = 0
    external_url: str = ""

    @property
    def labels(self) -> dict[str, str]:
        """The labels routing reads: the group's common labels, else the first alert's."""
        if self.common_labels:
            return dict(self.common_labels)
        return dict(self.alerts[0].labels) if self.alerts else dict(self.group_labels)


def correlates(
    correlate_on: list[str], labels: Mapping[str, str], incident_labels: Mapping[str, str]
) -> bool:
    """A new group belongs to an open incident when every `correlate_on` value is present and
    equal ("service" compares with the incident's service)."""
    if not correlate_on:
        return False
    for name in correlate_on:
        mine = labels.get(name, "")
        if not mine or mine != incident_labels.get(name, ""):
            return False
    return True


# --- checking and explaining ----------------------------------------------------------------


def route_problems(policy: AlertsPolicy) -> list[str]:
    """Routes that can never apply: each comes after a route that matches everything (no
    matchers) for every source it could see."""
    problems: list[str] = []
    for number, route in enumerate(policy.routes, start=1):
        for earlier, before in enumerate(policy.routes[: number - 1], start=1):
            covers = not before.match and (
                not before.sources or (route.sources and set(route.sources) <= set(before.sources))
            )
            if covers:
                problems.append(
                    f"route {number} is never reached: route {earlier} before it matches every "
                    "alert it could see"
                )
                break
    return problems


def explain(policy: AlertsPolicy, source: str, sender: str, batch: AlertBatch) -> list[str]:
    """What Warroom would do with this payload from `source`, in sentences: the route it
    takes and its outcome, then each alert (`warroom alerts test`)."""
    number, route = policy.route(source, batch.labels)
    where = f"route {number}" if number else "the default route (no route matched)"
    if route.match:
        where += f" ({', '.join(route.match)})"
    # Routing reads the group's common labels; the incident is described by its first
    # firing alert, as when it is declared.
    lead = next((a for a in batch.alerts if a.firing), batch.alerts[0] if batch.alerts else None)
    labels = lead.labels if lead else batch.labels
    annotations = lead.annotations if lead else {}
    firing = sum(1 for a in batch.alerts if a.firing)
    lines = [
        f"Group {batch.group_key!r} from source {source!r}: {len(batch.alerts)} alert(s), "
        f"{firing} firing.",
        f"Takes {where}.",
    ]
    title = route.title_for(labels, annotations)
    severity = route.severity_for(labels)
    service = route.service_for(labels)
    if route.action == "drop":
        lines.append("Dropped: nothing is stored or posted.")
    elif route.action == "declare":
        lines.append(
            f"Declares an incident (once for the group): Sev{severity} {title!r}"
            + (f", service {service!r}" if service else "")
            + f", declared by {sender} ({source})"
            + (f", commander {route.commander}" if route.commander else "")
            + "."
        )
    else:
        buttons = " with Declare, Attach and Dismiss buttons" if route.action == "triage" else ""
        lines.append(
            f"Posts a card in #{policy.channel_for(route)}{buttons}: {title!r} "
            f"(would be Sev{severity})."
        )
    if route.action != "drop" and route.attach_window_minutes:
        lines.append(
            f"Attaches instead to an open incident declared in the last "
            f"{route.attach_window_minutes} minutes with the same {', '.join(route.correlate_on)}."
        )
    if route.action != "drop":
        lines.append(f"When every alert has cleared: on_clear = {route.on_clear}.")
    if batch.truncated:
        lines.append(f"{batch.truncated} alert(s) were left out by the sender (truncatedAlerts).")
    for alert in batch.alerts:
        state = "firing" if alert.firing else "resolved"
        lines.append(
            f"  - {alert.fingerprint}: {state}, {route.title_for(alert.labels, alert.annotations)}"
        )
    return lines
