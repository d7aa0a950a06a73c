"""Who may do what to an incident. Anyone may declare; the actions listed in the policy's
`permissions.restricted` belong to the incident's role holders, its declarer and the admins.
An action item is completed or reassigned by its owner, or by those same people."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Literal, get_args

from app.domain.lifecycle import Status

Action = Literal[
    "severity",
    "roles",
    "resolve",
    "close",
    "mitigate",
    "update",
    "ack",
    "snooze",
    "retro",
    "note",
    "action",
    "postmortem",
    "page",
    "publish",
]
ACTIONS: tuple[str, ...] = get_args(Action)
DEFAULT_RESTRICTED: tuple[Action, ...] = (
    "severity",
    "roles",
    "resolve",
    "close",
    "page",
    "publish",
)

VERBS = {
    "severity": "change its severity",
    "roles": "reassign its roles",
    "resolve": "resolve it",
    "close": "close it",
    "mitigate": "mark it mitigated",
    "update": "post its updates",
    "ack": "acknowledge it",
    "snooze": "snooze its update reminders",
    "retro": "run its retrospective",
    "note": "add notes to its timeline",
    "action": "add its action items",
    "postmortem": "share its postmortem",
    "page": "page people's pagers for it",
    "publish": "publish its public updates",
}


# Status moves that have a command of their own need that command's right wherever they are
# made (the update form included), besides the right to post the update.
MOVES: dict[Status, Action] = {Status.MITIGATED: "mitigate", Status.RESOLVED: "resolve"}


def may(
    action: str,
    user: str,
    restricted: Collection[str],
    declared_by: str,
    role_holders: Iterable[str],
    admins: Collection[str],
) -> bool:
    if action not in restricted:
        return True
    return user == declared_by or user in set(role_holders) or user in admins


def may_change_item(
    user: str,
    owner: str | None,
    declared_by: str,
    role_holders: Iterable[str],
    admins: Collection[str],
) -> bool:
    """Complete or reassign an action item: its owner, the incident's role holders and
    declarer, and the admins."""
    return user == owner or user == declared_by or user in set(role_holders) or user in admins
