"""Pager targets: where a page goes besides Slack (PagerDuty, Opsgenie, a signed webhook), and
the pure rules of what each is sent: the dedup key, the mapping of a severity to the provider's
urgency, the text of a page.

A DM does not wake anyone at 3 a.m.; a pager does. The policy names targets
(`[paging.targets.<name>]`), and a directory function names them next to Slack people
(`on_call_backup = ["pager:payments-primary", "U0123BACKUP"]`). See docs/paging.md.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

TARGET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
PAGER_PREFIX = "pager:"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")

# What each provider takes (their API references; see docs/paging.md).
PAGERDUTY_SUMMARY_MAX = 1024
PAGERDUTY_DEDUP_MAX = 255
OPSGENIE_MESSAGE_MAX = 130
OPSGENIE_ALIAS_MAX = 512
OPSGENIE_DESCRIPTION_MAX = 15000


class PageAction(StrEnum):
    """What one call to a provider does to the page of an incident at a target."""

    TRIGGER = "trigger"
    ACKNOWLEDGE = "acknowledge"
    RESOLVE = "resolve"


def _env_name(value: str) -> str:
    if value and not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name")
    return value


def _url(value: str) -> str:
    value = value.strip().rstrip("/")
    if not _URL.match(value):
        raise ValueError(f"{value!r} is not an http(s) URL")
    return value


EnvName = Annotated[str, Field(min_length=1)]


class _Target(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # What people read in Slack ("Payments primary"); the target's key when empty.
    label: str = ""
    # Acknowledging the incident in Warroom acknowledges this target's page too; resolving it
    # always resolves the page (a page left open keeps someone's phone ringing).
    acknowledge_with_incident: bool = True

    @field_validator("label")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    # Each provider names its secret's variable and its address differently; one rule each.
    @field_validator("routing_key_env", "api_key_env", "secret_env", check_fields=False)
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value)

    @field_validator("base_url", "url", check_fields=False)
    @classmethod
    def _address(cls, value: str) -> str:
        return _url(value)


class PagerDutyTarget(_Target):
    """A PagerDuty service, through its Events API v2 integration."""

    provider: Literal["pagerduty"]
    # The environment variable holding the service's integration ("routing") key.
    routing_key_env: EnvName
    base_url: str = "https://events.pagerduty.com"

    @property
    def secret_env(self) -> str:
        return self.routing_key_env


class Responder(BaseModel):
    """Who Opsgenie notifies: a team, user, escalation or schedule, by name or id."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["team", "user", "escalation", "schedule"]
    name: str = ""
    id: str = ""
    username: str = ""

    @model_validator(mode="after")
    def _named(self) -> Responder:
        given = [k for k in ("name", "id", "username") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a responder needs exactly one of name, id or username")
        if self.username and self.type != "user":
            raise ValueError("username applies to responders of type user only")
        return self


class OpsgenieTarget(_Target):
    """An Opsgenie (or Jira Service Management) API integration, through the Alert API v2."""

    provider: Literal["opsgenie"]
    # The environment variable holding the integration's API key (sent as `GenieKey <key>`).
    api_key_env: EnvName
    # https://api.eu.opsgenie.com for the EU instance; Jira Service Management's own URL.
    base_url: str = "https://api.opsgenie.com"
    responders: list[Responder] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)

    @property
    def secret_env(self) -> str:
        return self.api_key_env


class WebhookTarget(_Target):
    """Anything else: a signed JSON POST (schema and signature in docs/paging.md)."""

    provider: Literal["webhook"]
    url: str
    # The environment variable holding the shared secret the body is signed with.
    secret_env: EnvName


PagerTarget = Annotated[
    PagerDutyTarget | OpsgenieTarget | WebhookTarget, Field(discriminator="provider")
]

PROVIDER_NAMES = {"pagerduty": "PagerDuty", "opsgenie": "Opsgenie", "webhook": "webhook"}


class PagingPolicy(BaseModel):
    """`[paging]` in the policy file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    targets: dict[str, PagerTarget] = Field(default_factory=dict)
    # The environment variable holding the PagerDuty webhook subscription's secret (several,
    # comma-separated, for several subscriptions); `/webhooks/pagerduty` is closed without it.
    pagerduty_webhook_secret_env: str = "PAGERDUTY_WEBHOOK_SECRET"
    # Starts every dedup key: two Warroom installations sharing a pager service keep their
    # pages apart with different prefixes.
    dedup_prefix: str = Field(default="warroom", pattern=r"^[A-Za-z0-9_.-]{1,40}$")

    @field_validator("targets")
    @classmethod
    def _names(cls, value: dict[str, PagerTarget]) -> dict[str, PagerTarget]:
        for name in value:
            if not TARGET_NAME.match(name):
                raise ValueError(
                    f"target name {name!r}: use lower-case letters, digits, - and _ "
                    "(people type it: /incident page <name>)"
                )
        return value

    @field_validator("pagerduty_webhook_secret_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return _env_name(value)

    def label(self, name: str) -> str:
        target = self.targets.get(name)
        return (target.label or name) if target else name

    def provider_name(self, name: str) -> str:
        target = self.targets.get(name)
        return PROVIDER_NAMES[target.provider] if target else "?"

    def secret_names(self) -> list[str]:
        """Every environment variable the targets and the webhook read."""
        names = {t.secret_env for t in self.targets.values()}
        if self.pagerduty_webhook_secret_env:
            names.add(self.pagerduty_webhook_secret_env)
        return sorted(names)


def pager_name(entry: str) -> str | None:
    """The target a directory entry names (`pager:payments-primary`), else None."""
    return entry[len(PAGER_PREFIX) :] if entry.startswith(PAGER_PREFIX) else None


def dedup_key(prefix: str, incident_id: int, target: str) -> str:
    """Stable per incident and target: a trigger sent twice (a retry, a crash after the
    provider's answer) is one page, and the acknowledge and resolve find it."""
    key = f"{prefix}-incident-{incident_id}-{target}"
    assert len(key) <= PAGERDUTY_DEDUP_MAX
    return key


def incident_of(prefix: str, key: str) -> tuple[int, str] | None:
    """(incident id, target) from a dedup key this installation made, else None."""
    match = re.fullmatch(rf"{re.escape(prefix)}-incident-(\d+)-([a-z0-9][a-z0-9_-]*)", key)
    return (int(match.group(1)), match.group(2)) if match else None


# Severity 1 is the worst; each provider's scale, worst first.
PAGERDUTY_SEVERITY = {1: "critical", 2: "error", 3: "warning", 4: "info"}
OPSGENIE_PRIORITY = {1: "P1", 2: "P2", 3: "P3", 4: "P4"}


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, with an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
