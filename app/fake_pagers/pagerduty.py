"""The fake PagerDuty (`FakePagerDuty`): the Events API v2 over real HTTP, and v3 webhooks sent
to subscribers when incidents change, as PagerDuty documents them.

The bot pages with its own aiohttp client, exactly as it would page PagerDuty, so everything on
the wire is real: the 202 / 400 / 429 / 5xx answers and their bodies, the de-duplication of
events by `dedup_key`, lost connections. People then act "in the PagerDuty app" through
`acknowledge`, `resolve` and `escalate`, and the bot receives signed v3 webhooks for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from aiohttp import web

from .formats import IdMaker
from .pagerduty_events import check_routing_key, validate_event
from .pagerduty_state import Account, Change, Event, Incident, Service, User
from .pagerduty_webhooks import (
    DELIVERY_TIMEOUT,
    Delivery,
    JsonDict,
    Links,
    Subscription,
    WebhookSender,
    webhook_body,
)
from .ratelimit import SlidingWindow
from .server import Answer, Call, FakeHttpServer, retry_after_header

ENQUEUE = "enqueue"
# PagerDuty documents about 120 events a minute per integration key.
DOCUMENTED_EVENTS_PER_MINUTE = 120
INVALID = {"status": "invalid event", "message": "Event object is invalid"}
THROTTLED = {"status": "throttled", "message": "Request Limit Exceeded"}


class FakePagerDuty(FakeHttpServer):
    """A stateful fake of PagerDuty's Events API v2 (`POST /v2/enqueue`) and v3 webhooks."""

    name = "fake PagerDuty"

    def __init__(
        self,
        *,
        events_per_minute: int | None = DOCUMENTED_EVENTS_PER_MINUTE,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
        subdomain: str = "acme",
        webhooks_for_events: bool = True,
        webhook_timeout: float = DELIVERY_TIMEOUT,
        incident_key_in_webhooks: bool = True,
    ) -> None:
        super().__init__(clock)
        self.ids = IdMaker(seed)
        self.account = Account(self.ids, self.clock)
        self.limiter = SlidingWindow(events_per_minute, self.clock)
        self.links = Links(web_url=f"https://{subdomain}.pagerduty.com")
        # Changes made by events (triggers, acknowledges, resolves) are announced too.
        self.webhooks_for_events = webhooks_for_events
        self.webhooks = WebhookSender(
            ids=self.ids,
            clock=self.clock,
            links=self.links,
            timeout=webhook_timeout,
            incident_key=incident_key_in_webhooks,
        )

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/enqueue", self.route(ENQUEUE, self._enqueue))
        app.router.add_route("*", "/{tail:.*}", self.route("unknown", lambda call: Answer(404)))

    async def stop(self) -> None:
        """Stop serving, after the webhooks under way (for at most one delivery timeout)."""
        await self.webhooks.close()
        await super().stop()

    # seeding -----------------------------------------------------------------------------

    def add_service(
        self,
        routing_key: str,
        name: str = "Payments",
        *,
        oncall: str = "Alex Oncall",
        escalation_policy: str = "Default",
        events_per_minute: int | None = None,
    ) -> Service:
        """A service whose Events API v2 integration key is `routing_key` (32 letters and
        digits); its incidents are assigned to `oncall`. `events_per_minute` overrides the
        fake's limit for this key."""
        problems = check_routing_key(routing_key)
        if problems:
            raise ValueError("; ".join(problems))
        return self.account.add_service(
            routing_key,
            name,
            oncall=oncall,
            escalation_policy=escalation_policy,
            events_per_minute=events_per_minute,
        )

    def subscribe(
        self,
        url: str,
        secret: str,
        events: Iterable[str] | None = None,
        *,
        service: Service | None = None,
    ) -> Subscription:
        """A v3 webhook subscription to `url`, signed with `secret`, for the `events` types
        (None: all) of `service`'s incidents (None: the whole account)."""
        if not secret:
            raise ValueError("a subscription has a signing secret")
        subscription = Subscription(
            id=self.ids.pagerduty(),
            url=url,
            secrets=[secret],
            events=frozenset(events) if events is not None else None,
            service=service,
        )
        self.webhooks.subscriptions.append(subscription)
        return subscription

    def rotate_secret(self, subscription: Subscription, new_secret: str) -> None:
        """Start rotating to `new_secret`: deliveries carry a signature for each secret (the
        new one first) until `end_rotation`."""
        subscription.secrets = [new_secret, *subscription.secrets[:1]]

    def end_rotation(self, subscription: Subscription) -> None:
        """Finish the rotation: only the newest secret signs from now on."""
        subscription.secrets = subscription.secrets[:1]

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop sending to `subscription` (as when it is disabled)."""
        subscription.active = False

    # people in the PagerDuty app -----------------------------------------------------------

    async def acknowledge(
        self, dedup_key: str, by: str = "Jane Doe", *, routing_key: str | None = None
    ) -> list[Delivery]:
        """`by` acknowledges the open incident for `dedup_key`; returns the webhook deliveries
        (each with the receiver's HTTP status). KeyError when there is no open incident,
        ValueError when it is not triggered."""
        incident = self.account.find_open(dedup_key, routing_key)
        return await self._announce(self.account.acknowledge_as(incident, by))

    async def resolve(
        self, dedup_key: str, by: str = "Jane Doe", *, routing_key: str | None = None
    ) -> list[Delivery]:
        """`by` resolves the open incident for `dedup_key`; returns the webhook deliveries."""
        incident = self.account.find_open(dedup_key, routing_key)
        return await self._announce(self.account.resolve_as(incident, by))

    async def escalate(
        self,
        dedup_key: str,
        to: str = "Sam Second",
        by: str = "Jane Doe",
        *,
        routing_key: str | None = None,
    ) -> list[Delivery]:
        """`by` escalates the open incident for `dedup_key` to `to` (it is triggered again and
        assigned to them); returns the webhook deliveries."""
        incident = self.account.find_open(dedup_key, routing_key)
        return await self._announce(self.account.escalate_as(incident, by, to))

    async def _announce(self, change: Change) -> list[Delivery]:
        return await self.webhooks.send(change)

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Send a webhook again with the same body and X-Webhook-Id (at-least-once delivery)."""
        return await self.webhooks.redeliver(delivery)

    async def webhooks_sent(self) -> None:
        """Wait until the webhooks for changes made by events have been delivered."""
        await self.webhooks.drain()

    def webhook_body(
        self, event_type: str, incident: Incident, agent: User | Service | str | None = None
    ) -> JsonDict:
        """A v3 webhook body about `incident` with this account's links (for tests that craft
        and sign their own deliveries)."""
        return webhook_body(
            event_type,
            incident,
            agent,
            links=self.links,
            event_id=self.ids.event_id(),
            occurred_at=self.clock(),
            incident_key=self.webhooks.incident_key,
        )

    # inspection ---------------------------------------------------------------------------

    @property
    def services(self) -> list[Service]:
        """The services, in the order they were added."""
        return list(self.account.services.values())

    def incidents(
        self, dedup_key: str | None = None, *, routing_key: str | None = None
    ) -> list[Incident]:
        """Incidents in the order they were opened, those for `dedup_key` (and the service of
        `routing_key`) only when given."""
        return [
            incident
            for incident in self.account.incidents
            if (dedup_key is None or incident.dedup_key == dedup_key)
            and (routing_key is None or incident.service.routing_key == routing_key)
        ]

    @property
    def events(self) -> list[Event]:
        """Every accepted (202) event, in order, with what it did (`outcome`)."""
        return self.account.events

    @property
    def subscriptions(self) -> list[Subscription]:
        return self.webhooks.subscriptions

    @property
    def deliveries(self) -> list[Delivery]:
        """Every webhook delivery attempt, in order."""
        return self.webhooks.deliveries

    # the Events API ---------------------------------------------------------------------

    def _enqueue(self, call: Call) -> Answer:
        body = call.json
        if not isinstance(body, dict):
            return Answer(
                400,
                {
                    "status": "Unrecognized object",
                    "message": "Event object format is unrecognized",
                    "errors": ["JSON parse error"],
                },
            )
        event, errors = validate_event(body)
        if event is None:
            return Answer(400, {**INVALID, "errors": errors})
        service = self.account.services.get(event.routing_key)
        if service is None:
            return Answer(400, {**INVALID, "errors": ["Invalid routing key"]})
        if not self.limiter.admit(event.routing_key, service.events_per_minute):
            return Answer(429, dict(THROTTLED))
        dedup_key = event.dedup_key or self.ids.hex32()
        _, change = self.account.apply(event, dedup_key)
        call.applied = True
        if change is not None and self.webhooks_for_events:
            self.webhooks.schedule(change)
        return Answer(
            202, {"status": "success", "message": "Event processed", "dedup_key": dedup_key}
        )

    def fault_answer(self, status: int, retry_after: int | None) -> Answer:
        headers = retry_after_header(retry_after)
        if status == 429:
            return Answer(429, dict(THROTTLED), headers)
        if status == 400:
            return Answer(400, {**INVALID, "errors": []}, headers)
        reason = web.Response(status=status).reason or "Error"
        return Answer(
            status,
            {"status": reason, "message": "The event could not be processed", "errors": []},
            headers,
        )

    def too_large_answer(self) -> Answer:
        return Answer(400, {**INVALID, "errors": ["Event object is too large (limit is 512 KB)"]})
