"""A read-only picture of one incident at one moment, with the durations the process reports.

Messages, the topic and metrics are all rendered from this one shape, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app.domain import durations
from app.domain.lifecycle import Status
from app.domain.roles import Role


@dataclass(frozen=True)
class IncidentSnapshot:
    id: int
    title: str
    severity: int
    status: Status
    description: str
    service: str
    is_private: bool
    declared_by: str
    detected_at: datetime
    declared_at: datetime
    channel_id: str | None = None
    channel_name: str | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = None
    resolved_at: datetime | None = None
    resolved_by: str | None = None
    closed_at: datetime | None = None
    last_update_at: datetime | None = None
    next_update_at: datetime | None = None
    root_cause: str = ""
    impact_summary: str = ""
    users_affected: str = ""
    next_steps: str = ""
    source_permalink: str | None = None
    is_drill: bool = False
    roles: dict[Role, str] = field(default_factory=dict)
    # The incident's type (`[types.<name>]` in the policy; "" for the default) and its custom
    # fields' values by field name (`[fields.<name>]`): read by playbook conditions, the
    # forms, `status` and the postmortem.
    type: str = ""
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def commander(self) -> str | None:
        return self.roles.get(Role.COMMANDER)

    @property
    def tech_lead(self) -> str | None:
        return self.roles.get(Role.TECH_LEAD)

    @property
    def comms(self) -> str | None:
        return self.roles.get(Role.COMMS)

    @property
    def time_to_detect(self) -> timedelta | None:
        """From the problem being detected (or starting, if set earlier) to the declaration."""
        return durations.between(self.detected_at, self.declared_at)

    @property
    def time_to_acknowledge(self) -> timedelta | None:
        return durations.between(self.declared_at, self.acknowledged_at)

    @property
    def time_to_mitigate(self) -> timedelta | None:
        return durations.between(self.detected_at, self.mitigated_at)

    @property
    def time_to_resolve(self) -> timedelta | None:
        return durations.between(self.detected_at, self.resolved_at)

    def age(self, now: datetime) -> timedelta:
        return durations.between(self.declared_at, now) or timedelta(0)
