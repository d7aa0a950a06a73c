"""The composition root: settings -> database, Slack adapter, services, scheduler, and the Bolt
app with its listeners, wired once into a `Runtime`.

Nothing here runs at import time; `build()` is called by the CLI, the tests and the benchmarks
alike. This is the only module that knows every layer.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from jinja2 import TemplateError
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult

from app.config import ConfigError, Settings
from app.integrations.pagers import Pagers
from app.integrations.slack_web import SlackGateway, make_client
from app.integrations.statuspages import AtlassianStatuspage, statuspage_client
from app.messages.render import Renderer
from app.scheduler.effects import Effects
from app.scheduler.engine import Engine
from app.services.access import Access
from app.services.action_items import ActionItems
from app.services.alerts import Alerts
from app.services.announcements import Announcements
from app.services.checklists import Checklists
from app.services.clock import Clock, SystemClock
from app.services.context import Services
from app.services.escalations import Escalations
from app.services.flows import Flows
from app.services.gauges import sample
from app.services.inbox import Inbox
from app.services.incidents import Incidents
from app.services.outbox import Outbox
from app.services.ports import SlackPort
from app.services.postmortem import Postmortems
from app.services.recovery import Recovery
from app.services.rooms import Rooms
from app.services.slack_auth import SlackAuth
from app.services.status_updates import StatusUpdates
from app.services.timeline import Timeline
from app.slack.context import Bot
from app.slack.inflight import InFlight
from app.slack.listeners import register
from app.slack.listeners.commands import carry_out_unfinished
from app.slack.listeners.events import forget_old_events
from app.store.db import Database
from app.store.leases import ReplicaName
from app.telemetry.metrics import Metrics

log = logging.getLogger(__name__)

FOREIGN_WORKSPACE = ":no_entry_sign: This Warroom serves another Slack workspace."


@dataclass
class Runtime:
    """The running bot: its settings, the listeners' context and the escalation engine."""

    settings: Settings
    bot: Bot
    engine: Engine
    replica: ReplicaName | None = None

    # Shortcuts for the servers, the CLI and the tests.
    @property
    def app(self) -> AsyncApp:
        return self.bot.app

    @property
    def services(self) -> Services:
        return self.bot.services

    @property
    def db(self) -> Database:
        return self.bot.services.db

    @property
    def alerts(self) -> Alerts:
        return self.bot.alerts

    @property
    def incidents(self) -> Incidents:
        return self.bot.incidents

    @property
    def rooms(self) -> Rooms:
        return self.bot.rooms

    @property
    def escalations(self) -> Escalations:
        return self.bot.escalations

    @property
    def timeline(self) -> Timeline:
        return self.bot.timeline

    @property
    def inflight(self) -> InFlight:
        return self.bot.inflight

    @property
    def identity(self) -> dict[str, str]:
        return self.bot.identity

    @property
    def metrics(self) -> Metrics:
        return self.bot.services.metrics

    async def close(self, grace: float = 10.0) -> None:
        """Let work already acknowledged finish (up to `grace` seconds), then let go."""
        await self.engine.stop()
        await self.bot.inflight.wait_idle(grace)
        await self.bot.services.db.dispose()
        if isinstance(self.bot.services.pagers, Pagers):
            await self.bot.services.pagers.close()
        if isinstance(self.bot.public.provider, AtlassianStatuspage):
            await self.bot.public.provider.close()
        if self.replica is not None:
            self.replica.release()


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


def build(settings: Settings, clock: Clock | None = None) -> Runtime:
    clock = clock or SystemClock()
    auth = SlackAuth(clock.now)
    metrics = Metrics(version=_version())
    client = make_client(settings.bot_token, settings.api_url)
    gateway = SlackGateway(client, auth, pacing=settings.slack_pacing, metrics=metrics)
    renderer = Renderer(settings.policy.workspace.templates_dir)
    try:
        renderer.check()
    except TemplateError as exc:
        where = getattr(exc, "filename", None) or getattr(exc, "name", None) or "a template"
        line = getattr(exc, "lineno", None)
        raise ConfigError(
            f"{where}{f' line {line}' if line else ''}: {exc.message or exc}."
        ) from None
    replica = ReplicaName.take(settings.replica_name)
    services = Services(
        db=Database(settings.database_url),
        slack=gateway,
        policy=settings.policy,
        renderer=renderer,
        clock=clock,
        announce_channel=settings.announce,
        access=Access(gateway, settings.policy.admins, settings.policy.permissions.restricted),
        auth=auth,
        replica=replica.name,
        pagers=(
            Pagers(settings.policy.paging, settings.pager_secrets)
            if settings.policy.paging.targets
            else None
        ),
        metrics=metrics,
    )
    identity: dict[str, str] = {}

    async def authorize(team_id: str | None) -> AuthorizeResult | None:
        # auth.test runs once at start-up (identify), never inside a request's 3-second window.
        if not identity:
            identity.update(await _auth_test(services.slack))
        if not team_id or team_id != identity.get("team_id"):
            # Signed by Slack, but from another workspace than the bot's own (an app installed
            # in several, an org-wide install): refused before any listener runs.
            log.warning("request from workspace %s refused: this bot serves its own", team_id)
            return None
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
        # None refuses the request (Bolt's type hint leaves it out; its code handles it).
        authorize=authorize,  # type: ignore[arg-type]
        user_facing_authorize_error_message=FOREIGN_WORKSPACE,
        logger=_bolt_logger(settings.log_level),
        # Answer Slack as soon as a listener returns (no polling for `ack()`): listeners only
        # check, record and acknowledge, and leave the work to `InFlight.later`.
        process_before_response=True,
    )
    announcements = Announcements(settings.policy, renderer)
    rooms = Rooms(services, announcements)
    escalations = Escalations(services)
    outbox = Outbox(services, reannounce=rooms.reannounce)
    hosted = statuspage_client(settings.policy.statuspage, settings.statuspage_secrets)
    public = StatusUpdates(services, hosted)
    incidents = Incidents(services, announcements, public)
    checklists = Checklists(services, escalations)
    engine = Engine(
        services,
        escalations,
        Effects(services, rooms, escalations.paging, checklists),
        recovery=Recovery(services, rooms, escalations),
        outbox=outbox,
    )
    flows = Flows(services, incidents, rooms, escalations, outbox, engine)
    alerts = Alerts(services, flows)
    bot = Bot(
        app=app,
        services=services,
        flows=flows,
        incidents=incidents,
        rooms=rooms,
        escalations=escalations,
        outbox=outbox,
        timeline=Timeline(services),
        actions=ActionItems(services, escalations),
        checklists=checklists,
        postmortems=Postmortems(services),
        firing=engine,
        inbox=Inbox(services),
        alerts=alerts,
        public=public,
        identity=identity,
        inflight=InFlight(settings.concurrent_work),
    )
    register(bot)
    engine.chores.append(lambda: forget_old_events(bot))
    engine.chores.append(lambda: carry_out_unfinished(bot))
    engine.chores.append(alerts.sweep)
    engine.chores.append(public.sweep)
    metrics.refresh = lambda: sample(services)
    return Runtime(settings=settings, bot=bot, engine=engine, replica=replica)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("warroom")
    except PackageNotFoundError:
        return "unknown"


async def identify(runtime: Runtime) -> None:
    """Learn the bot's own user ID (so it never invites itself)."""
    data = await _auth_test(runtime.services.slack)
    runtime.identity.update(data)
    runtime.services.bot_user_id = data.get("user_id", "")
    log.info("connected to Slack as %s in %s", data.get("user"), data.get("team"))


async def _auth_test(slack: SlackPort) -> dict[str, str]:
    data = await slack.auth_test()
    return {
        k: str(v) for k, v in data.items() if k in {"user_id", "bot_id", "team_id", "user", "team"}
    }
