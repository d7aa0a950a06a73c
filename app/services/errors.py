"""Errors a person can act on. Their message is shown in Slack as it is."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from app.domain.snapshot import IncidentSnapshot
from app.store import repo


class ServiceError(Exception):
    """A request that cannot be done; the message says why and what to do instead."""


class NotFound(ServiceError):
    """A number never used, or one the person may not see: the words are the same."""


def no_incident(incident_id: int) -> NotFound:
    return NotFound(f"There is no incident #{incident_id}.")


def no_item(item_id: int) -> NotFound:
    return NotFound(f"There is no action item A{item_id}.")


async def incident_snapshot(session: AsyncSession, incident_id: int) -> IncidentSnapshot:
    """The incident as it is now, or the words a person gets for a number that does not exist."""
    snap = await repo.load_snapshot(session, incident_id)
    if snap is None:
        raise no_incident(incident_id)
    return snap


class InvalidInput(ServiceError):
    """Bad input. `field` names the form field when there is one, for in-modal errors."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
