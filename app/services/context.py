"""What every use case needs, built once at start-up and passed in (no globals)."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field

from app.domain.policy import Policy
from app.messages.render import Renderer
from app.services.clock import Clock
from app.services.permissions import Permissions
from app.slack.gateway import SlackGateway
from app.store.db import Database


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Services:
    db: Database
    slack: SlackGateway
    policy: Policy
    renderer: Renderer
    clock: Clock
    announce_channel: str
    permissions: Permissions
    bot_user_id: str = ""
    # This process's name among replicas sharing the database (leases, claims).
    replica: str = field(default_factory=replica_name)
