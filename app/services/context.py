"""What every use case needs, built once at start-up and passed in (no globals)."""

from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.policy import Policy
from app.messages.render import Renderer
from app.services.access import Access
from app.services.clock import Clock
from app.services.ports import PagerPort, SlackPort
from app.services.slack_auth import SlackAuth
from app.store.db import Database
from app.store.leases import replica_name
from app.telemetry.metrics import Metrics


@dataclass
class Services:
    db: Database
    slack: SlackPort
    policy: Policy
    renderer: Renderer
    clock: Clock
    announce_channel: str
    access: Access
    bot_user_id: str = ""
    # This process's name among replicas sharing the database (leases, claims).
    replica: str = field(default_factory=replica_name)
    # Whether Slack accepts the bot token; the adapter keeps it, delivery and the engine read it.
    auth: SlackAuth = field(default_factory=SlackAuth)
    # The pager providers (PagerDuty, Opsgenie, webhooks); None when none is configured.
    pagers: PagerPort | None = None
    # The Prometheus metrics every use case records into (one registry per running bot).
    metrics: Metrics = field(default_factory=Metrics)
