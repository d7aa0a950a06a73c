"""Status pages: the components a team shows the public, the impact an incident has on them,
and what a visitor of the page is shown.

Internal updates are for responders; the public sees only what a person approved (a *published*
update). Everything a public surface shows (the built-in page, its JSON and Atom feed, an
Atlassian Statuspage) is built from published updates alone, by `build_page`, so a draft, a
skipped draft or a private incident cannot reach it. See docs/status-page.md.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

COMPONENT_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")

# What one public update may hold (Atlassian Statuspage takes 25,000 characters of body and 255
# of name; a public page should say much less).
TITLE_MAX = 200
BODY_MAX = 5000


class Impact(StrEnum):
    """How a component is doing, as status pages say it (Atlassian Statuspage's own values)."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL = "partial_outage"
    MAJOR = "major_outage"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def label(self) -> str:
        return _LABEL[self]

    @classmethod
    def read(cls, text: str) -> Impact | None:
        """What people type (`degraded`, `partial`, `major`, `operational`, or the full value)."""
        word = text.strip().lower().replace("-", "_").replace(" ", "_")
        return _WORDS.get(word)


_RANK = {Impact.OPERATIONAL: 0, Impact.DEGRADED: 1, Impact.PARTIAL: 2, Impact.MAJOR: 3}
_LABEL = {
    Impact.OPERATIONAL: "Operational",
    Impact.DEGRADED: "Degraded performance",
    Impact.PARTIAL: "Partial outage",
    Impact.MAJOR: "Major outage",
}
_WORDS = {
    **{i.value: i for i in Impact},
    "ok": Impact.OPERATIONAL,
    "degraded": Impact.DEGRADED,
    "partial": Impact.PARTIAL,
    "major": Impact.MAJOR,
    "outage": Impact.MAJOR,
}


def worst(impacts: Iterable[Impact]) -> Impact:
    return max(impacts, key=lambda i: i.rank, default=Impact.OPERATIONAL)


class PublicStatus(StrEnum):
    """Where a public incident stands (Atlassian Statuspage's incident statuses)."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.capitalize()


def public_status(internal_status: str) -> PublicStatus:
    """The public status that follows from an incident's internal status."""
    return {
        "declared": PublicStatus.INVESTIGATING,
        "acknowledged": PublicStatus.INVESTIGATING,
        "mitigated": PublicStatus.MONITORING,
        "resolved": PublicStatus.RESOLVED,
        "closed": PublicStatus.RESOLVED,
    }.get(internal_status, PublicStatus.INVESTIGATING)


# A severity level, as the status page's settings name one.
Severity = Annotated[int, Field(ge=1, le=4)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Component(_Strict):
    """Something the public knows by name: "Checkout", "API", "Dashboard"."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    # Components with the same group are shown together under its name.
    group: str = Field(default="", max_length=100)


def _default_impacts() -> dict[int, Impact]:
    return {1: Impact.MAJOR, 2: Impact.PARTIAL, 3: Impact.DEGRADED, 4: Impact.DEGRADED}


class AtlassianPolicy(_Strict):
    """An Atlassian Statuspage page Warroom publishes to (its REST API, v1)."""

    page_id: str = Field(min_length=1, max_length=64)
    # The environment variable holding the API key (sent as `Authorization: OAuth <key>`).
    api_key_env: str = "STATUSPAGE_API_KEY"
    base_url: str = "https://api.statuspage.io/v1"
    # Warroom's component id -> the Statuspage component's id. Components left out are shown on
    # no Atlassian page.
    component_ids: dict[str, str] = Field(default_factory=dict)

    @field_validator("api_key_env")
    @classmethod
    def _env(cls, value: str) -> str:
        if not _ENV_NAME.match(value):
            raise ValueError(f"{value!r} is not an environment variable name")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if not _URL.match(value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value


class StatusPagePolicy(_Strict):
    """`[statuspage]` in warroom.toml."""

    enabled: bool = False
    # "builtin": Warroom serves the page itself (/status); "atlassian": updates go to an
    # Atlassian Statuspage page (the built-in page is served too).
    provider: Literal["builtin", "atlassian"] = "builtin"
    # Where the public reads the page (the link in Slack messages and in the feed).
    url: str = ""
    title: str = Field(default="Status", min_length=1, max_length=100)
    logo_url: str = ""
    accent_colour: str = "#1f6feb"
    components: dict[str, Component] = Field(default_factory=dict)
    # The impact an incident of each severity has on the components it names, unless set.
    impact_by_severity: dict[Severity, Impact] = Field(default_factory=_default_impacts)
    # Severities whose drafts are published without a person's approval. Empty: every public
    # update is approved by a person.
    auto_publish: list[Severity] = Field(default_factory=list)
    # How many days of history the page shows.
    history_days: int = Field(default=90, ge=7, le=365)
    atlassian: AtlassianPolicy | None = None

    @field_validator("components")
    @classmethod
    def _ids(cls, value: dict[str, Component]) -> dict[str, Component]:
        for key in value:
            if not COMPONENT_ID.match(key):
                raise ValueError(
                    f"component id {key!r}: lowercase letters, digits, '-' and '_' only"
                )
        return value

    @field_validator("accent_colour")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _COLOUR.match(value):
            raise ValueError(f"{value!r} is not a colour like #1f6feb")
        return value

    @field_validator("url", "logo_url")
    @classmethod
    def _address(cls, value: str) -> str:
        value = value.strip()
        if value and not _URL.match(value):
            raise ValueError(f"{value!r} is not an http(s) URL")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> StatusPagePolicy:
        missing = sorted({1, 2, 3, 4} - set(self.impact_by_severity))
        if missing:
            raise ValueError(f"impact_by_severity must name severities {missing}")
        if self.provider == "atlassian" and self.atlassian is None:
            raise ValueError('provider = "atlassian" needs a [statuspage.atlassian] section')
        if self.atlassian is not None:
            unknown = sorted(set(self.atlassian.component_ids) - set(self.components))
            if unknown:
                raise ValueError(
                    f"atlassian.component_ids names {', '.join(unknown)}, which "
                    "[statuspage.components] does not define"
                )
        return self

    @property
    def publishes_to_atlassian(self) -> bool:
        return self.enabled and self.provider == "atlassian" and self.atlassian is not None

    def default_impact(self, severity: int) -> Impact:
        return self.impact_by_severity.get(severity, Impact.DEGRADED)

    def read_components(
        self, words: Iterable[str], severity: int
    ) -> tuple[dict[str, Impact], list[str]]:
        """`api checkout:major` -> ({"api": <the severity's impact>, "checkout": MAJOR}, []);
        words naming no component (or no impact) come back in the second list."""
        chosen: dict[str, Impact] = {}
        unknown: list[str] = []
        for word in words:
            key, _, impact_word = word.partition(":")
            key = key.strip().lower()
            impact = Impact.read(impact_word) if impact_word else self.default_impact(severity)
            if key not in self.components or impact is None:
                unknown.append(word)
                continue
            chosen[key] = impact
        return chosen, unknown


# --- What a visitor sees ---------------------------------------------------------------


@dataclass(frozen=True)
class PublishedUpdate:
    """One update a person approved for the public (or the policy auto-published)."""

    status: PublicStatus
    body: str
    published_at: datetime


@dataclass(frozen=True)
class PublicIncident:
    """An incident as the public knows it: only what was published, nothing else."""

    # Its public number (1, 2, …, in the order incidents first went public), not Warroom's.
    id: int
    title: str
    status: PublicStatus
    # Component id -> impact, as the latest published update said.
    components: Mapping[str, Impact]
    started_at: datetime  # its first publication
    resolved_at: datetime | None  # when its resolution was published
    updates: tuple[PublishedUpdate, ...]  # newest first

    @property
    def impact(self) -> Impact:
        if self.status is PublicStatus.RESOLVED:
            return Impact.OPERATIONAL
        return worst(self.components.values())

    @property
    def peak_impact(self) -> Impact:
        return worst(self.components.values())


@dataclass(frozen=True)
class DayBar:
    """One day of one component's history: the worst impact any public incident had on it."""

    day: date
    impact: Impact
    incidents: tuple[int, ...]


@dataclass(frozen=True)
class ComponentView:
    id: str
    name: str
    description: str
    group: str
    impact: Impact  # now
    days: tuple[DayBar, ...]  # oldest first, `history_days` of them, today last

    @property
    def days_operational(self) -> int:
        return sum(1 for d in self.days if d.impact is Impact.OPERATIONAL)


@dataclass(frozen=True)
class PublicPage:
    """Everything a public surface shows, built from published updates only."""

    title: str
    url: str
    logo_url: str
    accent_colour: str
    generated_at: datetime
    overall: Impact
    components: tuple[ComponentView, ...]  # in the policy's order
    ongoing: tuple[PublicIncident, ...]  # newest first
    history: tuple[PublicIncident, ...]  # resolved within history_days, newest first
    history_days: int

    @property
    def overall_sentence(self) -> str:
        return {
            Impact.OPERATIONAL: "All systems operational",
            Impact.DEGRADED: "Some systems are degraded",
            Impact.PARTIAL: "Partial outage",
            Impact.MAJOR: "Major outage",
        }[self.overall]

    def groups(self) -> list[tuple[str, list[ComponentView]]]:
        """Components by group, in the order each group first appears ('' = no group)."""
        out: dict[str, list[ComponentView]] = {}
        for component in self.components:
            out.setdefault(component.group, []).append(component)
        return list(out.items())


def build_page(
    policy: StatusPagePolicy, incidents: Iterable[PublicIncident], now: datetime
) -> PublicPage:
    """The page a visitor sees at `now`, from the public incidents (published updates only)."""
    incidents = list(incidents)
    ongoing = sorted(
        (i for i in incidents if i.status is not PublicStatus.RESOLVED),
        key=lambda i: i.started_at,
        reverse=True,
    )
    oldest = (now - timedelta(days=policy.history_days - 1)).date()
    history = sorted(
        (
            i
            for i in incidents
            if i.status is PublicStatus.RESOLVED
            and i.resolved_at is not None
            and i.resolved_at.date() >= oldest
        ),
        key=lambda i: i.resolved_at or i.started_at,
        reverse=True,
    )
    days = [oldest + timedelta(days=n) for n in range(policy.history_days)]
    views = []
    for cid, component in policy.components.items():
        current = worst(i.components.get(cid, Impact.OPERATIONAL) for i in ongoing)
        bars = []
        for day in days:
            touching = [i for i in incidents if cid in i.components and _overlaps(i, day, now)]
            bars.append(
                DayBar(
                    day=day,
                    impact=worst(i.components[cid] for i in touching),
                    incidents=tuple(sorted(i.id for i in touching)),
                )
            )
        views.append(
            ComponentView(
                id=cid,
                name=component.name,
                description=component.description,
                group=component.group,
                impact=current,
                days=tuple(bars),
            )
        )
    overall = worst(v.impact for v in views)
    if ongoing and overall is Impact.OPERATIONAL:
        # An ongoing incident that names no component still means something is wrong.
        overall = Impact.DEGRADED
    return PublicPage(
        title=policy.title,
        url=policy.url,
        logo_url=policy.logo_url,
        accent_colour=policy.accent_colour,
        generated_at=now,
        overall=overall,
        components=tuple(views),
        ongoing=tuple(ongoing),
        history=tuple(history),
        history_days=policy.history_days,
    )


def _overlaps(incident: PublicIncident, day: date, now: datetime) -> bool:
    end = incident.resolved_at or now
    return incident.started_at.date() <= day <= end.date()
