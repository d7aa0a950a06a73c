"""What the Bolt listeners are given: the Bolt app, the use cases, and the in-flight tracker.

Built by the composition root (`app.bootstrap`); listeners never build anything themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_bolt.async_app import AsyncApp

from app.services.action_items import ActionItems
from app.services.alerts import Alerts
from app.services.checklists import Checklists
from app.services.context import Services
from app.services.escalations import Escalations
from app.services.flows import Flows
from app.services.inbox import Inbox
from app.services.incidents import Incidents
from app.services.outbox import Outbox
from app.services.ports import Firing
from app.services.postmortem import Postmortems
from app.services.rooms import Rooms
from app.services.status_updates import StatusUpdates
from app.services.timeline import Timeline
from app.slack.inflight import InFlight
from app.store.db import Database


@dataclass
class Bot:
    app: AsyncApp
    services: Services
    flows: Flows
    incidents: Incidents
    rooms: Rooms
    escalations: Escalations
    outbox: Outbox
    timeline: Timeline
    actions: ActionItems
    checklists: Checklists
    postmortems: Postmortems
    firing: Firing
    inbox: Inbox
    alerts: Alerts
    # Public updates and the status page (docs/status-page.md).
    public: StatusUpdates
    inflight: InFlight = field(default_factory=InFlight)
    # Every button, form and shortcut registered through the gate: a click or form recorded in
    # the inbox is carried out again through its own entry after a crash.
    # (`gate.Replayable`; the listeners depend on this module, not the other way round)
    replayables: list[Any] = field(default_factory=list)
    # The bot's own identity from auth.test (user_id, bot_id, team_id), learned at start-up.
    identity: dict[str, str] = field(default_factory=dict)

    @property
    def db(self) -> Database:
        return self.services.db
