"""PagerDuty v3 webhooks: the body of an incident event, its `X-PagerDuty-Signature`, and the
deliveries to subscribers.

A bot that takes acknowledgements and resolutions from PagerDuty must verify each delivery's
signature (an HMAC-SHA256 of the raw body with the subscription's secret, hex, `v1=` prefixed,
several comma-separated while a secret is being rotated), tolerate repeats (delivery is at least
once; `X-Webhook-Id` is the same on every attempt of one webhook) and read the documented body.
The fake sends exactly that, over real HTTP, and records what each receiver answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .formats import IdMaker, iso_millis, iso_seconds, stable_id
from .pagerduty_state import EVENTS_API, Change, Incident, Service, User

JsonDict = dict[str, Any]

USER_AGENT = "PagerDuty-Webhook/V3.0"
# PagerDuty expects a 2xx answer within 5 seconds.
DELIVERY_TIMEOUT = 5.0


@dataclass(frozen=True)
class Links:
    """Where PagerDuty's references point: the account's web app and the REST API."""

    web_url: str = "https://acme.pagerduty.com"
    api_url: str = "https://api.pagerduty.com"

    def reference(self, kind: str, path: str, object_id: str, summary: str | None) -> JsonDict:
        """A resource reference: `{"html_url", "id", "self", "summary", "type"}`."""
        return {
            "html_url": f"{self.web_url}/{path}/{object_id}",
            "id": object_id,
            "self": f"{self.api_url}/{path}/{object_id}",
            "summary": summary,
            "type": f"{kind}_reference",
        }

    def user(self, user: User) -> JsonDict:
        return self.reference("user", "users", user.id, user.name)

    def service(self, service: Service) -> JsonDict:
        return self.reference("service", "services", service.id, service.name)

    def integration(self, service: Service) -> JsonDict:
        """The service's Events API v2 integration: the agent of changes made by events."""
        path = f"services/{service.id}/integrations"
        return self.reference("inbound_integration", path, service.integration_id, EVENTS_API)

    def escalation_policy(self, service: Service) -> JsonDict:
        return self.reference(
            "escalation_policy",
            "escalation_policies",
            service.escalation_policy_id,
            service.escalation_policy,
        )


def sign(body: bytes, secrets: Iterable[str]) -> str:
    """The `X-PagerDuty-Signature` value for `body`: `v1=<hex HMAC-SHA256>` for each secret,
    comma-separated (several while a secret is being rotated)."""
    return ",".join(
        "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() for secret in secrets
    )


def incident_data(incident: Incident, links: Links, *, incident_key: bool = True) -> JsonDict:
    """`event.data` for an incident event, with the fields of the v3 documentation (and
    `incident_type`, which deliveries carry too). `incident_key` False gives a null key, as
    some real deliveries for Events API incidents have."""
    service = incident.service
    return {
        "id": incident.id,
        "type": "incident",
        "self": f"{links.api_url}/incidents/{incident.id}",
        "html_url": f"{links.web_url}/incidents/{incident.id}",
        "number": incident.number,
        "status": incident.status,
        "incident_key": incident.dedup_key if incident_key else None,
        "created_at": iso_seconds(incident.created_at),
        "title": incident.title,
        "service": links.service(service),
        "assignees": [links.user(user) for user in incident.assignees],
        "escalation_policy": links.escalation_policy(service),
        "teams": [],
        "priority": None,
        "urgency": incident.urgency,
        "conference_bridge": None,
        "resolve_reason": None,
        "incident_type": {"name": "incident_default"},
    }


def webhook_body(
    event_type: str,
    incident: Incident,
    agent: User | Service | str | None = None,
    *,
    client: JsonDict | None = None,
    links: Links | None = None,
    event_id: str | None = None,
    occurred_at: float | None = None,
    incident_key: bool = True,
) -> JsonDict:
    """The JSON object of a v3 webhook about `incident`. `agent` is who acted: a person (a
    User, or a name), a Service (its Events API integration), or None (automation)."""
    links = links or Links()
    if isinstance(agent, str):
        agent = User(id=stable_id(agent), name=agent)
    if isinstance(agent, User):
        agent_ref: JsonDict | None = links.user(agent)
    elif isinstance(agent, Service):
        agent_ref = links.integration(agent)
    else:
        agent_ref = None
    return {
        "event": {
            "id": event_id or IdMaker().event_id(),
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": iso_millis(occurred_at if occurred_at is not None else time.time()),
            "agent": agent_ref,
            "client": client,
            "data": incident_data(incident, links, incident_key=incident_key),
        }
    }


def encode(body: JsonDict) -> bytes:
    """The bytes sent (and signed): compact UTF-8 JSON."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass
class Subscription:
    """A v3 webhook subscription: where to send, which secrets sign, which event types (None:
    all), and which service's incidents (None: the whole account)."""

    id: str
    url: str
    secrets: list[str]
    events: frozenset[str] | None = None
    service: Service | None = None
    active: bool = True

    def wants(self, change: Change) -> bool:
        if not self.active:
            return False
        if self.events is not None and change.event_type not in self.events:
            return False
        return self.service is None or change.incident.service is self.service


@dataclass
class Delivery:
    """One attempt to deliver a webhook: what was sent, and what the receiver answered
    (`status` None when it did not answer: connection refused, reset or timed out)."""

    subscription: Subscription
    webhook_id: str
    event_type: str
    body: bytes
    headers: dict[str, str]
    at: float
    status: int | None = None
    error: str | None = None

    @property
    def payload(self) -> JsonDict:
        """The body decoded."""
        decoded: JsonDict = json.loads(self.body)
        return decoded

    @property
    def ok(self) -> bool:
        """The receiver answered 2xx."""
        return self.status is not None and 200 <= self.status < 300


@dataclass
class WebhookSender:
    """Sends each change to the subscriptions that want it, in order per subscription."""

    ids: IdMaker
    clock: Callable[[], float]
    links: Links
    timeout: float = DELIVERY_TIMEOUT
    incident_key: bool = True
    subscriptions: list[Subscription] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    _session: aiohttp.ClientSession | None = None
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _tasks: set[asyncio.Task[list[Delivery]]] = field(default_factory=set)

    def body_for(self, change: Change) -> bytes:
        return encode(
            webhook_body(
                change.event_type,
                change.incident,
                change.agent,
                client=change.client,
                links=self.links,
                event_id=self.ids.event_id(),
                occurred_at=self.clock(),
                incident_key=self.incident_key,
            )
        )

    async def send(self, change: Change, body: bytes | None = None) -> list[Delivery]:
        """Deliver `change` (as `body`, when already rendered) to every subscription that
        wants it; the deliveries made."""
        body = body if body is not None else self.body_for(change)
        made = []
        for subscription in [s for s in self.subscriptions if s.wants(change)]:
            webhook_id = self.ids.uuid()
            made.append(await self._post(subscription, webhook_id, change.event_type, body))
        return made

    def schedule(self, change: Change) -> None:
        """Deliver `change` in the background (as PagerDuty does after accepting an event),
        showing the incident as it is now, whatever happens to it before the delivery."""
        if not any(s.wants(change) for s in self.subscriptions):
            return
        body = self.body_for(change)
        task = asyncio.get_running_loop().create_task(self.send(change, body))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def redeliver(self, delivery: Delivery) -> Delivery:
        """Send the same webhook again (same body and X-Webhook-Id, signed with the
        subscription's secrets as they are now): the repeat an at-least-once sender makes."""
        return await self._post(
            delivery.subscription, delivery.webhook_id, delivery.event_type, delivery.body
        )

    async def drain(self) -> None:
        """Wait until the background deliveries are done."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Let background deliveries finish (for at most one timeout), then stop sending."""
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=self.timeout)
            for task in late:
                task.cancel()
            for task in late:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _post(
        self, subscription: Subscription, webhook_id: str, event_type: str, body: bytes
    ) -> Delivery:
        lock = self._locks.setdefault(subscription.id, asyncio.Lock())
        async with lock:
            delivery = Delivery(
                subscription=subscription,
                webhook_id=webhook_id,
                event_type=event_type,
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "X-Webhook-Id": webhook_id,
                    "X-Webhook-Subscription": subscription.id,
                    "X-PagerDuty-Signature": sign(body, subscription.secrets),
                },
                at=self.clock(),
            )
            self.deliveries.append(delivery)
            if self._session is None:
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self.timeout)
                )
            try:
                async with self._session.post(
                    subscription.url, data=body, headers=delivery.headers
                ) as response:
                    await response.read()
                    delivery.status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                delivery.error = f"{type(exc).__name__}: {exc}"
            return delivery
