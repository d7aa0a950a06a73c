"""Incident states and the one table of allowed moves between them.

Every change of status, from any surface, goes through `check_transition` so that the rules
live in one place and can be tested exhaustively.
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    MITIGATED = "mitigated"
    RESOLVED = "resolved"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def is_open(self) -> bool:
        return self in OPEN_STATUSES


OPEN_STATUSES = frozenset(
    {Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING, Status.MITIGATED}
)

# Statuses a responder may pick in the update form: the working states of an open incident.
UPDATE_STATUSES: tuple[Status, ...] = (
    Status.INVESTIGATING,
    Status.IDENTIFIED,
    Status.MONITORING,
    Status.MITIGATED,
)

_ALLOWED: dict[Status, frozenset[Status]] = {
    # While open, responders move freely between working states: a mitigation can regress.
    **{s: (OPEN_STATUSES - {s}) | {Status.RESOLVED} for s in OPEN_STATUSES},
    # A resolved incident may be reopened (the fix did not hold) or closed after review.
    Status.RESOLVED: frozenset({Status.INVESTIGATING, Status.CLOSED}),
    Status.CLOSED: frozenset(),
}


class TransitionError(Exception):
    """A requested status change the lifecycle does not allow; the message is for people."""


def allowed_targets(current: Status) -> frozenset[Status]:
    return _ALLOWED[current]


def check_transition(current: Status, target: Status) -> None:
    """Raise `TransitionError` unless `current -> target` is allowed. Same status is a no-op."""
    if current == target:
        return
    if target not in _ALLOWED[current]:
        if current is Status.CLOSED:
            raise TransitionError("This incident is closed; nothing about it can change.")
        if current is Status.RESOLVED and target.is_open:
            raise TransitionError(
                "This incident is resolved. If the problem is back, declare a new incident."
            )
        if target is Status.CLOSED:
            raise TransitionError("Only a resolved incident can be closed.")
        raise TransitionError(f"An incident cannot go from {current.label} to {target.label}.")


def parse_status(text: str) -> Status:
    """Read a status typed by a person ("Identified", "mitigated")."""
    try:
        return Status(text.strip().lower())
    except ValueError:
        names = ", ".join(s.value for s in UPDATE_STATUSES)
        raise ValueError(f"Unknown status {text.strip()!r}; use one of: {names}.") from None
