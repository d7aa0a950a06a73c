"""What every use case needs, built once at start-up and passed in (no globals)."""

from __future__ import annotations

from dataclasses import dataclass

from app.domain.policy import Policy
from app.messages.render import Renderer
from app.services.clock import Clock
from app.slack.gateway import SlackGateway
from app.store.db import Database


@dataclass
class Services:
    db: Database
    slack: SlackGateway
    policy: Policy
    renderer: Renderer
    clock: Clock
    announce_channel: str
    bot_user_id: str = ""
