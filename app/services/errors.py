"""Errors a person can act on. Their message is shown in Slack as it is."""

from __future__ import annotations


class ServiceError(Exception):
    """A request that cannot be done; the message says why and what to do instead."""


class NotFound(ServiceError):
    pass


class InvalidInput(ServiceError):
    """Bad input. `field` names the form field when there is one, for in-modal errors."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
