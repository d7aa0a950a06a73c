"""Builds the bot: settings -> database, gateway, services, and the Bolt app with its listeners.

Nothing here runs at import time; `build()` is called by the CLI and by the tests alike.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from jinja2 import TemplateError
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from app.config import ConfigError, Settings
from app.messages.render import Renderer
from app.scheduler.effects import Effects
from app.scheduler.engine import Engine
from app.services.action_items import ActionItems
from app.services.announcements import Announcements
from app.services.clock import Clock, SystemClock
from app.services.context import Services
from app.services.escalations import Escalations
from app.services.incidents import Incidents
from app.services.outbox import Outbox
from app.services.permissions import Permissions
from app.services.postmortem import Postmortems
from app.services.recovery import Recovery
from app.services.timeline import Timeline
from app.services.war_room import WarRoom
from app.slack.gateway import SlackGateway, make_client
from app.slack.inflight import InFlight
from app.store.db import Database

log = logging.getLogger(__name__)


@dataclass
class Warroom:
    """Everything a listener needs, in one place."""

    settings: Settings
    services: Services
    incidents: Incidents
    war_room: WarRoom
    app: AsyncApp
    inflight: InFlight
    identity: dict[str, str]
    escalations: Escalations
    outbox: Outbox
    engine: Engine
    timeline: Timeline
    actions: ActionItems
    postmortems: Postmortems

    @property
    def db(self) -> Database:
        return self.services.db

    async def close(self, grace: float = 10.0) -> None:
        """Let work already acknowledged finish (up to `grace` seconds), then let go."""
        await self.engine.stop()
        await self.inflight.wait_idle(grace)
        await self.services.db.dispose()


class _QuietBolt(logging.Filter):
    """Drop Bolt's start-up notes about the token it finds in the environment: the bot passes
    its token through `authorize` on purpose, and the note alarms operators for nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not ("`token`" in message and ("unused" in message or "ignored" in message))


def _bolt_logger(level: str) -> logging.Logger:
    # Bolt logs request bodies (user text, Slack's legacy token field) at INFO and DEBUG:
    # keep them out of the logs unless the operator asked for DEBUG.
    logger = logging.getLogger("warroom.bolt")
    logger.setLevel(logging.DEBUG if level == "DEBUG" else logging.WARNING)
    if not any(isinstance(f, _QuietBolt) for f in logger.filters):
        logger.addFilter(_QuietBolt())
    return logger


def build(settings: Settings, clock: Clock | None = None) -> Warroom:
    from app.slack.listeners import register
    from app.slack.listeners.events import forget_old_events

    client = make_client(settings.bot_token, settings.api_url)
    gateway = SlackGateway(client)
    renderer = Renderer(settings.policy.workspace.templates_dir)
    try:
        renderer.check()
    except TemplateError as exc:
        where = getattr(exc, "filename", None) or getattr(exc, "name", None) or "a template"
        line = getattr(exc, "lineno", None)
        raise ConfigError(
            f"{where}{f' line {line}' if line else ''}: {exc.message or exc}."
        ) from None
    services = Services(
        db=Database(settings.database_url),
        slack=gateway,
        policy=settings.policy,
        renderer=renderer,
        clock=clock or SystemClock(),
        announce_channel=settings.announce,
        permissions=Permissions(
            gateway, settings.policy.admins, settings.policy.permissions.restricted
        ),
    )
    identity: dict[str, str] = {}

    async def authorize(**_: object) -> AuthorizeResult:
        # auth.test runs once at start-up (identify), never inside a request's 3-second window.
        if not identity:
            identity.update(await _auth_test(services.slack))
        return AuthorizeResult(
            enterprise_id=None,
            team_id=identity.get("team_id"),
            bot_token=settings.bot_token,
            bot_user_id=identity.get("user_id"),
            bot_id=identity.get("bot_id"),
        )

    app = AsyncApp(
        # Bolt's own client carries no token: `authorize` supplies it per request.
        client=make_client(None, settings.api_url),
        signing_secret=settings.signing_secret or None,
        authorize=authorize,
        logger=_bolt_logger(settings.log_level),
    )
    announcements = Announcements(settings.policy, renderer)
    war_room = WarRoom(services, announcements)
    escalations = Escalations(services)
    outbox = Outbox(services)
    warroom = Warroom(
        settings=settings,
        services=services,
        incidents=Incidents(services, announcements),
        war_room=war_room,
        app=app,
        inflight=InFlight(),
        identity=identity,
        escalations=escalations,
        outbox=outbox,
        engine=Engine(
            services,
            escalations,
            Effects(services, war_room),
            recovery=Recovery(services, war_room),
            outbox=outbox,
        ),
        timeline=Timeline(services),
        actions=ActionItems(services, escalations),
        postmortems=Postmortems(services),
    )
    register(warroom)
    warroom.engine.chores.append(lambda: forget_old_events(warroom))
    return warroom


async def identify(warroom: Warroom) -> None:
    """Learn the bot's own user ID (so it never invites itself)."""
    data = await _auth_test(warroom.services.slack)
    warroom.identity.update(data)
    warroom.services.bot_user_id = data.get("user_id", "")
    log.info("connected to Slack as %s in %s", data.get("user"), data.get("team"))


async def _auth_test(slack: SlackGateway) -> dict[str, str]:
    data = await slack.auth_test()
    return {
        k: str(v) for k, v in data.items() if k in {"user_id", "bot_id", "team_id", "user", "team"}
    }
