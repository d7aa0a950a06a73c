"""Incident types and custom fields as the use cases apply them: which type a declare gets,
checking the values given for fields, what is missing before declaring or resolving, and the
fields as messages show them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from app.domain.fields import BadValue, Shown, label, missing, parse_value, shown
from app.domain.policy import Policy
from app.domain.snapshot import IncidentSnapshot
from app.services.errors import InvalidInput

# The block of a field in the declare and resolve forms.
BLOCK_PREFIX = "field_"


def block_id(name: str) -> str:
    return BLOCK_PREFIX + name


class MissingFields(InvalidInput):
    """Fields required before the step have no value; `names` says which."""

    def __init__(self, message: str, names: list[str]) -> None:
        super().__init__(message, block_id(names[0]))
        self.names = names


def type_label(policy: Policy, type_name: str) -> str:
    spec = policy.incident_type(type_name)
    return label(type_name, spec) if spec is not None else ""


def pick_type(policy: Policy, type_name: str) -> str:
    """The type of a new incident: the one given (it must be defined), else the default."""
    name = (type_name or "").strip().lower()
    if not name:
        return policy.default_type
    if name not in policy.types:
        known = ", ".join(policy.types) or "none are defined"
        raise InvalidInput(f"There is no incident type {name!r} (types: {known}).", "type")
    return name


def check_values(
    policy: Policy, type_name: str, values: Mapping[str, Any], *, only_applying: bool = False
) -> dict[str, Any]:
    """The values to store for fields of an incident of `type_name`, each checked against its
    field. A field the type does not have is refused, or left out with `only_applying` (a form
    showing every field, some of them for other types)."""
    applies = policy.fields_for(type_name)
    out: dict[str, Any] = {}
    for name, raw in values.items():
        spec = policy.fields.get(name)
        if spec is None or name not in applies:
            if only_applying:
                continue
            raise InvalidInput(not_applying(policy, type_name, name), block_id(name))
        try:
            value = parse_value(name, spec, raw)
        except BadValue as exc:
            raise InvalidInput(str(exc), block_id(name)) from None
        if value is not None:
            out[name] = value
    return out


def not_applying(policy: Policy, type_name: str, name: str) -> str:
    applies = policy.fields_for(type_name)
    listed = ", ".join(f"`{n}`" for n in applies) or "none"
    if name in policy.fields:
        kind = type_label(policy, type_name) or "this"
        return f"{kind} incidents have no field `{name}` (their fields: {listed})."
    return f"There is no field `{name}` (fields: {listed})."


def missing_at_declare(policy: Policy, type_name: str, values: Mapping[str, Any]) -> list[str]:
    return missing(policy.fields, policy.fields_for(type_name), values, "declare")


def require_for_declare(policy: Policy, type_name: str, values: Mapping[str, Any]) -> None:
    names = missing_at_declare(policy, type_name, values)
    if names:
        labels = ", ".join(label(n, policy.fields[n]) for n in names)
        raise MissingFields(f"Required when declaring: {labels}.", names)


def require_for_resolve(policy: Policy, type_name: str, values: Mapping[str, Any]) -> None:
    """Refuse to resolve while a field required at resolve has no value, saying how to set
    each one."""
    names = missing(policy.fields, policy.fields_for(type_name), values, "resolve")
    if names:
        listed = ", ".join(f"{label(n, policy.fields[n])} (`/incident set {n} …`)" for n in names)
        raise MissingFields(f"Set these before resolving: {listed}.", names)


def fields_shown(policy: Policy, incident: IncidentSnapshot) -> list[Shown]:
    return shown(policy.fields, policy.fields_for(incident.type), incident.fields)


def described(policy: Policy, incidents: list[IncidentSnapshot]) -> dict[int, dict[str, Any]]:
    """Each incident's type label and fields, by incident number, for lists of incidents."""
    return {
        i.id: {"kind": type_label(policy, i.type), "fields": fields_shown(policy, i)}
        for i in incidents
    }
