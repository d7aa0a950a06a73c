"""Incident types (`[types.<name>]`) and custom fields (`[fields.<name>]`): their policy, and
reading a value people typed or picked into the value stored for a field.

A type says how an incident of its kind starts (its default severity, whether it is private,
its channel name, its role briefs) and which custom fields it has. A field has a kind that
decides which values it takes, and may be required when declaring or before resolving.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from app.domain.roles import Role

# What people type for a type or a field (`/incident declare security: …`, `set team …`).
NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

FieldKind = Literal["select", "multi_select", "text", "user", "link", "number"]
KINDS: tuple[str, ...] = ("select", "multi_select", "text", "user", "link", "number")
Required = Literal["declare", "resolve", False]

MAX_TEXT = 500
MAX_OPTIONS = 100  # what one Slack select offers
_USER = re.compile(r"^<?@?([UW][A-Z0-9]{2,})(?:\|[^>]*)?>?$")


def _known_level(level: int) -> int:
    if level not in (1, 2, 3, 4):
        raise ValueError("unknown severity level; severities are exactly levels 1, 2, 3 and 4")
    return level


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldPolicy(_Strict):
    """One custom field: what it is called, which values it takes, when it must be set."""

    label: str = ""
    kind: FieldKind = "text"
    # The values a select or multi-select offers, in order.
    options: list[Annotated[str, Field(min_length=1, max_length=75)]] = Field(
        default_factory=list, max_length=MAX_OPTIONS
    )
    # "declare": the declare form asks for it; "resolve": resolving waits for it.
    required: Required = False
    description: str = Field(default="", max_length=150)

    @model_validator(mode="after")
    def _options_fit_kind(self) -> FieldPolicy:
        selects = self.kind in ("select", "multi_select")
        if selects and not self.options:
            raise ValueError(f"a {self.kind} field needs options")
        if not selects and self.options:
            raise ValueError(f"only select and multi_select fields take options, not {self.kind}")
        if len({o.lower() for o in self.options}) != len(self.options):
            raise ValueError("options must differ from each other")
        return self


class TypePolicy(_Strict):
    """One incident type: how its incidents start and which custom fields they have."""

    # The label people read ("Security"); the key (`security`) is what they type.
    name: str = ""
    description: str = Field(default="", max_length=150)
    # The severity when none is given (`/incident declare security: …`); none: always asked.
    default_severity: Annotated[int, Field(ge=1, le=4), AfterValidator(_known_level)] | None = None
    # Its incidents are private (no announcement, a private channel).
    private: bool = False
    # Like `[workspace] channel_name_format`; empty: the workspace's.
    channel_name_format: str = ""
    # The custom fields (`[fields.<name>]` keys) its incidents have.
    fields: list[str] = Field(default_factory=list)
    # Role briefs for its incidents, instead of `[roles.<role>] brief`.
    briefs: dict[Role, str] = Field(default_factory=dict)


def label(name: str, spec: FieldPolicy | TypePolicy) -> str:
    """What people read for a field or type: its label, else its key made readable."""
    given = spec.label if isinstance(spec, FieldPolicy) else spec.name
    return given or name.replace("_", " ").replace("-", " ").capitalize()


class BadValue(ValueError):
    """A value a field does not take; the message says which it takes."""


def parse_value(name: str, spec: FieldPolicy, raw: Any) -> Any:
    """The value to store for `raw` (text typed, or what a form returned); None clears it.

    select: one of the options (any case); multi_select: options, as a list or separated by
    commas; text: up to 500 characters; user: a user ID or mention; link: an http(s) URL;
    number: a finite number (whole numbers stay whole)."""
    shown = label(name, spec)
    if raw is None or raw == "" or raw == []:
        return None
    if spec.kind == "multi_select":
        words = raw if isinstance(raw, list) else str(raw).split(",")
        picked = [_option(shown, spec, str(w)) for w in words if str(w).strip()]
        return list(dict.fromkeys(picked)) or None
    if isinstance(raw, list):
        raise BadValue(f"{shown} takes one value.")
    text = str(raw).strip()
    if not text:
        return None
    if spec.kind == "select":
        return _option(shown, spec, text)
    if spec.kind == "text":
        if len(text) > MAX_TEXT:
            raise BadValue(f"{shown} is {len(text):,} characters; at most {MAX_TEXT} fit.")
        return text
    if spec.kind == "user":
        match = _USER.match(text)
        if not match:
            raise BadValue(f"{shown} takes a person: mention them with @ (like @alex).")
        return match.group(1)
    if spec.kind == "link":
        url = text.strip("<>").split("|", 1)[0]
        parts = urlparse(url)
        if parts.scheme not in ("http", "https") or not parts.netloc or len(url) > 1000:
            raise BadValue(f"{shown} takes a link starting with https:// or http://.")
        return url
    try:
        number = float(text.replace(",", ""))
    except ValueError:
        raise BadValue(f"{shown} takes a number (like 42 or 3.5).") from None
    if not math.isfinite(number):
        raise BadValue(f"{shown} takes a number (like 42 or 3.5).")
    return int(number) if number.is_integer() and abs(number) < 2**53 else number


def _option(shown: str, spec: FieldPolicy, text: str) -> str:
    wanted = text.strip().lower()
    for option in spec.options:
        if option.lower() == wanted:
            return option
    raise BadValue(f"{shown} takes one of: {', '.join(spec.options)}.")


def display(spec: FieldPolicy, value: Any) -> str:
    """A stored value as plain text (a user stays an ID: templates mention them)."""
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


@dataclass(frozen=True)
class Shown:
    """One field of one incident, for messages: `text` is plain (escaped by the template);
    `user` is set for a person, who is mentioned instead."""

    name: str
    label: str
    kind: str
    text: str
    user: str | None = None


def shown(
    specs: Mapping[str, FieldPolicy], applies: Iterable[str], values: Mapping[str, Any]
) -> list[Shown]:
    """The fields set on an incident, in the policy's order (the ones that apply first)."""
    order = [*applies, *(n for n in specs if n not in set(applies))]
    out = []
    for name in order:
        if name not in specs or values.get(name) in (None, "", []):
            continue
        spec, value = specs[name], values[name]
        user = str(value) if spec.kind == "user" else None
        out.append(Shown(name, label(name, spec), spec.kind, display(spec, value), user))
    return out


def missing(
    specs: Mapping[str, FieldPolicy], applies: Iterable[str], values: Mapping[str, Any], when: str
) -> list[str]:
    """The fields that apply, are required `when` ("declare" or "resolve") and have no value.
    A field required at declare is also required before resolving."""
    stages = ("declare",) if when == "declare" else ("declare", "resolve")
    return [
        name
        for name in applies
        if name in specs and specs[name].required in stages and values.get(name) in (None, "", [])
    ]
