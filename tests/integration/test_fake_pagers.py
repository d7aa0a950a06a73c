"""Contract tests of the fake paging providers, driven over real HTTP with aiohttp's client.

The pager tests trust these fakes to answer as PagerDuty's Events API v2 and Opsgenie's Alert API
document, and to sign v3 webhooks as PagerDuty does; each documented answer is pinned down here.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from app.fake_pagers import FakeOpsgenie, FakePagerDuty, sign

pytestmark = pytest.mark.asyncio

KEY = "0123456789abcdef0123456789abcdef"
OTHER_KEY = "fedcba9876543210fedcba9876543210"
UNKNOWN_KEY = "00000000000000000000000000000000"
GENIE = "eb243592-faa2-4ba2-a551-1afdf565c889"
SECRET = "whsec-first"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Receiver:
    """A tiny webhook receiver: records each request's headers and raw body."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.status)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def pagerduty(clock: Clock) -> AsyncIterator[FakePagerDuty]:
    fake = FakePagerDuty(seed=7, clock=clock, webhook_timeout=2.0)
    fake.add_service(KEY, name="Payments", oncall="Alex Oncall")
    async with fake:
        yield fake


@pytest.fixture
async def opsgenie(clock: Clock) -> AsyncIterator[FakeOpsgenie]:
    fake = FakeOpsgenie(seed=7, clock=clock)
    fake.add_key(GENIE)
    async with fake:
        yield fake


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


def trigger(
    dedup_key: str | None = "disk-full", routing_key: str = KEY, **payload: Any
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {
            "summary": "Disk full on db-1",
            "source": "db-1",
            "severity": "critical",
            **payload,
        },
    }
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    return event


def follow_up(action: str, dedup_key: str = "disk-full", routing_key: str = KEY) -> dict[str, Any]:
    return {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key}


async def send(
    http: aiohttp.ClientSession, fake: FakePagerDuty, event: Any
) -> tuple[int, Any, dict[str, str]]:
    """POST an event; (status, decoded body or None, headers)."""
    data = event if isinstance(event, bytes) else json.dumps(event).encode()
    async with http.post(
        f"{fake.url}/v2/enqueue", data=data, headers={"Content-Type": "application/json"}
    ) as response:
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None, dict(response.headers)


def verified(signatures: str, body: bytes, secret: str) -> bool:
    """Verify as PagerDuty documents: any `v1=` signature matching the body's HMAC."""
    expected = "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, s.strip()) for s in signatures.split(","))


async def eventually(check: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# PagerDuty: accepted events and de-duplication --------------------------------------------


async def test_trigger_is_accepted_and_opens_an_incident(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await send(http, pagerduty, trigger())
    assert status == 202
    assert body == {"status": "success", "message": "Event processed", "dedup_key": "disk-full"}
    [incident] = pagerduty.incidents("disk-full")
    assert (incident.status, incident.title, incident.severity) == (
        "triggered",
        "Disk full on db-1",
        "critical",
    )
    assert incident.service.name == "Payments"
    assert [user.name for user in incident.assignees] == ["Alex Oncall"]
    assert [event.outcome for event in pagerduty.events] == ["created"]


async def test_a_trigger_without_dedup_key_gets_a_generated_one_each_time(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    keys = [(await send(http, pagerduty, trigger(None)))[1]["dedup_key"] for _ in range(2)]
    assert keys[0] != keys[1]
    assert all(len(key) == 32 and int(key, 16) >= 0 for key in keys)
    assert [incident.dedup_key for incident in pagerduty.incidents()] == keys


async def test_a_full_trigger_with_every_optional_field_is_accepted(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    event = trigger(
        timestamp="2015-07-17T08:42:58.315+0000",
        component="postgres",
        group="prod-datapipe",
        **{"class": "disk", "custom_details": {"free space": "1%", "load avg": 0.75}},
    )
    event.update(
        client="Warroom",
        client_url="https://warroom.example.com",
        links=[{"href": "https://example.com/", "text": "Runbook"}],
        images=[
            {"src": "https://example.com/graph.png", "href": "https://example.com/", "alt": "x"}
        ],
    )
    assert (await send(http, pagerduty, event))[0] == 202
    assert pagerduty.events[0].body["links"][0]["text"] == "Runbook"


async def test_triggering_an_open_key_twice_adds_to_one_incident(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    await send(http, pagerduty, trigger())
    await send(http, pagerduty, trigger(summary="Disk still full", severity="error"))
    [incident] = pagerduty.incidents()
    assert [event.outcome for event in incident.events] == ["created", "appended"]
    assert (incident.title, incident.summary, incident.severity) == (
        "Disk full on db-1",
        "Disk still full",
        "error",
    )


async def test_acknowledge_resolve_and_a_new_trigger_opens_a_new_incident(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    await send(http, pagerduty, trigger())
    for action in ("acknowledge", "acknowledge", "resolve", "resolve"):
        status, body, _ = await send(http, pagerduty, follow_up(action))
        assert (status, body["dedup_key"]) == (202, "disk-full")
    first = pagerduty.incidents()[0]
    assert (first.status, first.acknowledged_by, first.resolved_by) == (
        "resolved",
        "Events API V2",
        "Events API V2",
    )
    assert [e.outcome for e in pagerduty.events] == [
        "created",
        "acknowledged",
        "unchanged",
        "resolved",
        "ignored",
    ]
    await send(http, pagerduty, trigger())
    first, second = pagerduty.incidents("disk-full")
    assert (first.status, second.status, second.number) == ("resolved", "triggered", 2)


async def test_acknowledge_or_resolve_of_an_unknown_key_is_accepted_and_dropped(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    for action in ("acknowledge", "resolve"):
        assert (await send(http, pagerduty, follow_up(action, "never-seen")))[0] == 202
    assert pagerduty.incidents() == []
    assert [e.outcome for e in pagerduty.events] == ["ignored", "ignored"]


async def test_dedup_keys_belong_to_their_routing_key(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    pagerduty.add_service(OTHER_KEY, name="Search")
    await send(http, pagerduty, trigger())
    await send(http, pagerduty, follow_up("resolve", routing_key=OTHER_KEY))
    await send(http, pagerduty, trigger(routing_key=OTHER_KEY))
    payments, search = pagerduty.incidents("disk-full")
    assert (payments.status, payments.service.name) == ("triggered", "Payments")
    assert search.service.name == "Search"
    assert pagerduty.events[1].outcome == "ignored"


# PagerDuty: refused events ---------------------------------------------------------------

INVALID_EVENTS: list[tuple[str, dict[str, Any], str]] = [
    (
        "no routing key",
        {"event_action": "resolve", "dedup_key": "k"},
        "'routing_key' is missing or blank",
    ),
    (
        "short routing key",
        follow_up("resolve", routing_key="abc"),
        "Length of 'routing_key' is incorrect (should be 32 characters)",
    ),
    (
        "routing key with a dash",
        follow_up("resolve", routing_key="0123456789abcdef-123456789abcdef"),
        "'routing_key' cannot contain non-alphanumeric characters.",
    ),
    ("no action", {"routing_key": KEY, "dedup_key": "k"}, "'event_action' is missing or blank"),
    (
        "unknown action",
        follow_up("snooze"),
        "'event_action' is invalid (must be one of the following: "
        "'trigger', 'acknowledge' or 'resolve')",
    ),
    (
        "dedup key too long",
        follow_up("resolve", "k" * 256),
        "'dedup_key' is too long (must be at most 255 characters)",
    ),
    (
        "acknowledge without dedup key",
        {"routing_key": KEY, "event_action": "acknowledge"},
        "'dedup_key' is missing or blank",
    ),
    (
        "resolve without dedup key",
        {"routing_key": KEY, "event_action": "resolve"},
        "'dedup_key' is missing or blank",
    ),
    (
        "trigger without payload",
        {"routing_key": KEY, "event_action": "trigger"},
        "'payload' is missing or blank",
    ),
    ("payload not an object", {**trigger(), "payload": "disk"}, "'payload' must be an object"),
    ("no summary", trigger(summary=""), "'payload.summary' is missing or blank"),
    (
        "summary too long",
        trigger(summary="s" * 1025),
        "'payload.summary' is too long (must be at most 1024 characters)",
    ),
    ("no source", trigger(source=None), "'payload.source' is missing or blank"),
    ("no severity", trigger(severity=None), "'payload.severity' is missing or blank"),
    (
        "unknown severity",
        trigger(severity="high"),
        "'payload.severity' is invalid (must be one of the following: "
        "'critical', 'warning', 'error' or 'info')",
    ),
    (
        "bad timestamp",
        trigger(timestamp="yesterday"),
        "'payload.timestamp' is invalid (must be an ISO 8601 timestamp)",
    ),
    ("component not a string", trigger(component=3), "'payload.component' must be a string"),
    (
        "custom details not an object",
        trigger(custom_details="x"),
        "'payload.custom_details' must be an object",
    ),
    (
        "link without href",
        {**trigger(), "links": [{"text": "x"}]},
        "'links[0].href' is missing or blank",
    ),
    ("links not an array", {**trigger(), "links": {"href": "x"}}, "'links' must be an array"),
    (
        "image without src",
        {**trigger(), "images": [{"alt": "x"}]},
        "'images[0].src' is missing or blank",
    ),
    (
        "image over plain http",
        {**trigger(), "images": [{"src": "http://example.com/a.png"}]},
        "'images[0].src' must be an HTTPS URL",
    ),
    ("client not a string", {**trigger(), "client": 1}, "'client' must be a string"),
]


@pytest.mark.parametrize(
    ("event", "error"),
    [case[1:] for case in INVALID_EVENTS],
    ids=[case[0] for case in INVALID_EVENTS],
)
async def test_an_invalid_event_is_refused_with_its_error(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, event: dict[str, Any], error: str
) -> None:
    status, body, _ = await send(http, pagerduty, event)
    assert status == 400
    assert body == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": [error],
    }
    assert pagerduty.events == [] and pagerduty.incidents() == []
    assert (pagerduty.calls[-1].status, pagerduty.calls[-1].applied) == (400, False)


async def test_every_problem_of_an_event_is_listed(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    event = {"routing_key": "x!", "event_action": "trigger", "payload": {"summary": "s"}}
    _, body, _ = await send(http, pagerduty, event)
    assert body["errors"] == [
        "Length of 'routing_key' is incorrect (should be 32 characters)",
        "'routing_key' cannot contain non-alphanumeric characters.",
        "'payload.source' is missing or blank",
        "'payload.severity' is missing or blank",
    ]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"trigger"'])
async def test_a_body_that_is_not_an_event_object_is_unrecognized(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, raw: bytes
) -> None:
    status, body, _ = await send(http, pagerduty, raw)
    assert (status, body["status"], body["errors"]) == (
        400,
        "Unrecognized object",
        ["JSON parse error"],
    )


async def test_an_unknown_routing_key_is_refused(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    status, body, _ = await send(http, pagerduty, trigger(routing_key=UNKNOWN_KEY))
    assert (status, body["errors"]) == (400, ["Invalid routing key"])


async def test_an_event_over_512_kb_is_refused(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    event = trigger(custom_details={"log": "x" * (512 * 1024)})
    status, body, _ = await send(http, pagerduty, event)
    assert (status, body["status"]) == (400, "invalid event")
    assert pagerduty.incidents() == []


async def test_events_over_the_limit_per_routing_key_are_throttled(
    clock: Clock, http: aiohttp.ClientSession
) -> None:
    async with FakePagerDuty(clock=clock) as fake:
        fake.add_service(KEY)
        fake.add_service(OTHER_KEY, events_per_minute=2)
        statuses = [(await send(http, fake, trigger(f"k{i}")))[0] for i in range(121)]
        assert statuses == [202] * 120 + [429]
        assert [(await send(http, fake, trigger(routing_key=OTHER_KEY)))[0] for _ in range(3)] == [
            202,
            202,
            429,
        ]
        status, body, _ = await send(http, fake, trigger("k-late"))
        assert (status, body) == (429, {"status": "throttled", "message": "Request Limit Exceeded"})
        assert fake.incidents("k-late") == []
        clock.now += 61
        assert (await send(http, fake, trigger("k-late")))[0] == 202


async def test_an_unknown_path_is_not_found(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    async with http.post(f"{pagerduty.url}/v1/enqueue", json=trigger()) as response:
        assert response.status == 404
    assert pagerduty.calls[-1].route == "unknown"


# PagerDuty: faults ----------------------------------------------------------------------


async def test_scripted_failures_answer_then_recover(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    pagerduty.fail_next(2, status=503)
    pagerduty.fail_next(1, status=429, retry_after=7)
    assert pagerduty.faults.pending == 3
    assert [f["fault"] for f in pagerduty.faults.describe()["scripted"]] == ["503", "429"]
    results = [await send(http, pagerduty, trigger()) for _ in range(4)]
    assert [status for status, _, _ in results] == [503, 503, 429, 202]
    assert results[0][1]["status"] == "Service Unavailable"
    assert results[2][2]["Retry-After"] == "7"
    assert [(c.fault, c.applied) for c in pagerduty.calls] == [
        ("503", False),
        ("503", False),
        ("429", False),
        (None, True),
    ]
    assert len(pagerduty.events) == 1


async def test_a_dropped_connection_applies_nothing_unless_after_processing(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    pagerduty.drop_next()
    with pytest.raises(aiohttp.ClientError):
        await send(http, pagerduty, trigger("lost-before"))
    assert pagerduty.incidents() == []
    pagerduty.drop_next(after_processing=True)
    with pytest.raises(aiohttp.ClientError):
        await send(http, pagerduty, trigger("lost-answer"))
    assert [i.dedup_key for i in pagerduty.incidents()] == ["lost-answer"]
    assert [(c.status, c.fault, c.applied) for c in pagerduty.calls] == [
        (0, "drop", False),
        (0, "drop_after", True),
    ]


async def test_a_slow_answer_times_the_client_out_but_the_event_still_lands(
    pagerduty: FakePagerDuty,
) -> None:
    pagerduty.slow_next(1, seconds=0.3)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.05)) as impatient:
        with pytest.raises(TimeoutError):
            await send(impatient, pagerduty, trigger())
    await eventually(lambda: bool(pagerduty.incidents()))
    assert pagerduty.calls[0].fault == "slow"


async def test_faults_can_target_one_route(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    opsgenie.fail_next(1, status=500, route="close")
    status, _ = await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "a"})
    assert status == 202
    status, body = await genie(http, opsgenie, "POST", "/v2/alerts/a/close?identifierType=alias")
    assert (status, body["message"]) == (500, "Internal Server Error")


async def deliver_all_pages(fake: FakePagerDuty, http: aiohttp.ClientSession, pages: int) -> None:
    """Page `pages` times as a careful client would: retry 429, 5xx and lost connections with
    the same dedup_key until PagerDuty says 202."""
    for page in range(pages):
        for _ in range(50):
            try:
                status, _, _ = await send(http, fake, trigger(f"page-{page}"))
            except aiohttp.ClientError:
                continue
            if status == 202:
                break
            assert status == 429 or status >= 500
        else:
            raise AssertionError(f"page-{page} never went through")


async def test_every_page_is_delivered_once_under_random_failures(
    clock: Clock, http: aiohttp.ClientSession
) -> None:
    plans = []
    for _ in range(2):
        async with FakePagerDuty(clock=clock, events_per_minute=None) as fake:
            fake.add_service(KEY)
            fake.random_failures(
                rate=0.2, seed=1, kinds=("500", "503", "429", "drop", "drop_after")
            )
            await deliver_all_pages(fake, http, 40)
            incidents = fake.incidents()
            assert sorted(i.dedup_key for i in incidents) == sorted(f"page-{n}" for n in range(40))
            assert {len(fake.incidents(i.dedup_key)) for i in incidents} == {1}
            faults = [call.fault for call in fake.calls]
            assert {"500", "503", "429", "drop", "drop_after"} <= set(faults)
            plans.append(faults)
    assert plans[0] == plans[1]


# PagerDuty: v3 webhooks -----------------------------------------------------------------


async def test_a_person_acknowledging_sends_a_signed_v3_webhook(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    subscription = pagerduty.subscribe(receiver.url, SECRET, events=["incident.acknowledged"])
    await send(http, pagerduty, trigger())
    [delivery] = await pagerduty.acknowledge("disk-full", by="Jane Doe")
    assert (delivery.status, delivery.ok) == (200, True)
    [(headers, raw)] = receiver.received
    assert raw == delivery.body
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "PagerDuty-Webhook/V3.0"
    assert headers["X-Webhook-Subscription"] == subscription.id
    assert headers["X-Webhook-Id"] == delivery.webhook_id
    assert headers["X-PagerDuty-Signature"].startswith("v1=")
    assert verified(headers["X-PagerDuty-Signature"], raw, SECRET)
    assert not verified(headers["X-PagerDuty-Signature"], raw + b" ", SECRET)
    event = json.loads(raw)["event"]
    assert set(event) == {
        "id",
        "event_type",
        "resource_type",
        "occurred_at",
        "agent",
        "client",
        "data",
    }
    assert (event["event_type"], event["resource_type"], event["client"]) == (
        "incident.acknowledged",
        "incident",
        None,
    )
    assert len(event["id"]) == 26 and event["occurred_at"].endswith("Z")
    assert event["agent"]["type"] == "user_reference"
    assert event["agent"]["summary"] == "Jane Doe"
    assert set(event["agent"]) == {"html_url", "id", "self", "summary", "type"}
    data = event["data"]
    assert list(data) == [
        "id",
        "type",
        "self",
        "html_url",
        "number",
        "status",
        "incident_key",
        "created_at",
        "title",
        "service",
        "assignees",
        "escalation_policy",
        "teams",
        "priority",
        "urgency",
        "conference_bridge",
        "resolve_reason",
        "incident_type",
    ]
    incident = pagerduty.incidents()[0]
    assert (data["id"], data["type"], data["status"], data["incident_key"]) == (
        incident.id,
        "incident",
        "acknowledged",
        "disk-full",
    )
    assert (data["number"], data["title"], data["urgency"]) == (1, "Disk full on db-1", "high")
    assert data["self"] == f"https://api.pagerduty.com/incidents/{incident.id}"
    assert data["html_url"] == f"https://acme.pagerduty.com/incidents/{incident.id}"
    assert data["service"]["type"] == "service_reference"
    assert data["service"]["summary"] == "Payments"
    assert data["escalation_policy"]["type"] == "escalation_policy_reference"
    assert [a["summary"] for a in data["assignees"]] == ["Alex Oncall"]
    assert (data["teams"], data["priority"], data["conference_bridge"]) == ([], None, None)
    assert incident.acknowledged_by == "Jane Doe"


async def test_events_api_changes_are_announced_by_the_integration(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    pagerduty.subscribe(receiver.url, SECRET)
    receiver.status = 202
    event = {**trigger(), "client": "Warroom", "client_url": "https://w.example"}
    for sent in (event, trigger(summary="again"), follow_up("resolve")):  # "again" changes nothing
        assert (await send(http, pagerduty, sent))[0] == 202
    await pagerduty.webhooks_sent()
    assert [d.status for d in pagerduty.deliveries] == [202, 202]
    events = [json.loads(raw)["event"] for _, raw in receiver.received]
    assert [e["event_type"] for e in events] == ["incident.triggered", "incident.resolved"]
    agent = events[0]["agent"]
    assert (agent["type"], agent["summary"]) == ("inbound_integration_reference", "Events API V2")
    assert "/integrations/" in agent["html_url"]
    assert events[0]["client"] == {"name": "Warroom", "url": "https://w.example"}
    assert events[0]["data"]["status"] == "triggered"  # as it was then, though resolved since
    assert (events[1]["data"]["status"], events[1]["data"]["assignees"]) == ("resolved", [])


async def test_secret_rotation_signs_with_both_secrets(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    subscription = pagerduty.subscribe(receiver.url, SECRET)
    await send(http, pagerduty, trigger())
    await pagerduty.webhooks_sent()
    pagerduty.rotate_secret(subscription, "whsec-second")
    [rotating] = await pagerduty.acknowledge("disk-full")
    header = rotating.headers["X-PagerDuty-Signature"]
    assert header == sign(rotating.body, ["whsec-second", SECRET])
    assert len(header.split(",")) == 2
    assert verified(header, rotating.body, SECRET) and verified(
        header, rotating.body, "whsec-second"
    )
    pagerduty.end_rotation(subscription)
    [rotated] = await pagerduty.resolve("disk-full", by="Sam Second")
    assert not verified(rotated.headers["X-PagerDuty-Signature"], rotated.body, SECRET)
    assert verified(rotated.headers["X-PagerDuty-Signature"], rotated.body, "whsec-second")
    assert [h["X-PagerDuty-Signature"] for h, _ in receiver.received][1:] == [
        rotating.headers["X-PagerDuty-Signature"],
        rotated.headers["X-PagerDuty-Signature"],
    ]


async def test_the_receivers_answer_is_recorded_and_a_redelivery_repeats_the_webhook(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    pagerduty.subscribe(receiver.url, SECRET, events=["incident.escalated", "incident.resolved"])
    await send(http, pagerduty, trigger())
    receiver.status = 500
    [failed] = await pagerduty.escalate("disk-full", to="Sam Second", by="Jane Doe")
    assert (failed.status, failed.ok) == (500, False)
    escalated = failed.payload["event"]["data"]
    assert (escalated["status"], [a["summary"] for a in escalated["assignees"]]) == (
        "triggered",
        ["Sam Second"],
    )
    receiver.status = 202
    again = await pagerduty.redeliver(failed)
    assert (again.status, again.webhook_id, again.body) == (202, failed.webhook_id, failed.body)
    await receiver.stop()
    [unreachable] = await pagerduty.resolve("disk-full")
    assert (unreachable.status, unreachable.error is not None) == (None, True)


async def test_people_act_only_on_incidents_they_can_see(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(KeyError):
        await pagerduty.acknowledge("disk-full")
    await send(http, pagerduty, trigger())
    assert await pagerduty.acknowledge("disk-full") == []  # nobody subscribed
    with pytest.raises(ValueError):
        await pagerduty.acknowledge("disk-full")
    await pagerduty.resolve("disk-full")
    with pytest.raises(KeyError):
        await pagerduty.resolve("disk-full")


async def test_webhooks_follow_the_subscriptions_service_and_state(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    search = pagerduty.add_service(OTHER_KEY, name="Search")
    only_search = pagerduty.subscribe(receiver.url, SECRET, service=search)
    await send(http, pagerduty, trigger())
    await pagerduty.webhooks_sent()
    assert receiver.received == []
    await send(http, pagerduty, trigger(routing_key=OTHER_KEY))
    await pagerduty.webhooks_sent()
    assert len(receiver.received) == 1
    pagerduty.unsubscribe(only_search)
    assert await pagerduty.acknowledge("disk-full", routing_key=OTHER_KEY) == []
    with pytest.raises(ValueError):
        await pagerduty.resolve("disk-full")  # open on both services: which one?


async def test_webhooks_can_carry_a_null_incident_key(
    clock: Clock, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    async with FakePagerDuty(clock=clock, incident_key_in_webhooks=False) as fake:
        fake.add_service(KEY)
        fake.subscribe(receiver.url, SECRET)
        await send(http, fake, trigger())
        await fake.webhooks_sent()
        assert json.loads(receiver.received[0][1])["event"]["data"]["incident_key"] is None


async def test_a_crafted_webhook_body_can_be_signed_by_hand(
    pagerduty: FakePagerDuty, http: aiohttp.ClientSession
) -> None:
    await send(http, pagerduty, trigger())
    body = pagerduty.webhook_body("incident.resolved", pagerduty.incidents()[0], "Jane Doe")
    raw = json.dumps(body).encode()
    assert body["event"]["agent"]["summary"] == "Jane Doe"
    assert body["event"]["agent"]["id"] == pagerduty.account.user("Jane Doe").id
    assert verified(sign(raw, ["a", "b"]), raw, "b")


# Opsgenie --------------------------------------------------------------------------------


async def genie(
    http: aiohttp.ClientSession,
    fake: FakeOpsgenie,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = GENIE,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """A request with `Authorization: GenieKey <key>`; (status, decoded body)."""
    sent = {"Authorization": f"GenieKey {key}"} if key is not None else {}
    data = None
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent.update(headers or {})
    async with http.request(method, f"{fake.url}{path}", data=data, headers=sent) as response:
        decoded = await response.json()
        assert response.headers["X-Request-ID"] == decoded["requestId"]
        assert decoded["took"] > 0
        return response.status, decoded


async def status_of(
    http: aiohttp.ClientSession, fake: FakeOpsgenie, request_id: str
) -> tuple[int, Any]:
    return await genie(http, fake, "GET", f"/v2/alerts/requests/{request_id}")


async def test_creating_an_alert_is_accepted_and_its_request_status_tells_the_alert(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    status, body = await genie(
        http,
        opsgenie,
        "POST",
        "/v2/alerts",
        {
            "message": "Disk full on db-1",
            "alias": "disk-full",
            "responders": [
                {"type": "team", "name": "Payments"},
                {"type": "user", "username": "a@b.c"},
            ],
            "tags": ["db"],
            "details": {"host": "db-1"},
        },
    )
    assert status == 202
    assert set(body) == {"result", "took", "requestId"}
    assert body["result"] == "Request will be processed"
    status, answer = await status_of(http, opsgenie, body["requestId"])
    [alert] = opsgenie.alerts("disk-full")
    assert status == 200 and answer["requestId"] != body["requestId"]
    data = answer["data"]
    assert set(data) == {
        "success",
        "action",
        "processedAt",
        "integrationId",
        "isSuccess",
        "status",
        "alertId",
        "alias",
    }
    assert (data["success"], data["isSuccess"], data["action"], data["status"]) == (
        True,
        True,
        "Create",
        "Created alert",
    )
    assert (data["alertId"], data["alias"]) == (alert.id, "disk-full")
    assert data["integrationId"] == opsgenie.keys[GENIE].integration_id
    assert (alert.priority, alert.count, alert.status, alert.source) == (
        "P3",
        1,
        "open",
        "127.0.0.1",
    )
    assert alert.details == {"host": "db-1"}


async def test_an_alert_without_alias_gets_its_id_as_alias(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    for _ in range(2):
        await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m"})
    first, second = opsgenie.alerts()
    assert (first.alias, second.alias) == (first.id, second.id)
    assert (first.tiny_id, second.tiny_id) == ("1", "2")


@pytest.mark.parametrize(
    ("key", "header", "status", "message"),
    [
        (None, None, 401, "Could not authenticate"),
        ("not-a-key", None, 401, "Could not authenticate"),
        (None, f"Bearer {GENIE}", 401, "Could not authenticate"),
        (None, f"geniekey {GENIE}", 202, None),
        (
            "user-key",
            None,
            403,
            "To perform this action, use an API key from an API integration.",
        ),
    ],
)
async def test_only_a_known_genie_key_of_an_api_integration_may_send_alerts(
    opsgenie: FakeOpsgenie,
    http: aiohttp.ClientSession,
    key: str | None,
    header: str | None,
    status: int,
    message: str | None,
) -> None:
    opsgenie.add_key("user-key", integration=False)
    # Header names and the scheme are case-insensitive in HTTP: sent in lower case here.
    headers = {"authorization": header} if header else None
    got, body = await genie(
        http, opsgenie, "POST", "/v2/alerts", {"message": "m"}, key=key, headers=headers
    )
    assert (got, body.get("message")) == (status, message)
    assert body.get("code") == (40301 if status == 403 else None)
    assert len(opsgenie.alerts()) == (1 if status == 202 else 0)
    status_code, _ = await genie(
        http, opsgenie, "GET", f"/v2/alerts/requests/{body['requestId']}", key=key, headers=headers
    )
    assert status_code == {401: 401, 403: 404, 202: 200}[status]


INVALID_ALERTS: list[tuple[str, dict[str, Any], str]] = [
    ("no message", {}, "message"),
    ("blank message", {"message": " "}, "message"),
    ("message too long", {"message": "m" * 131}, "message"),
    ("alias too long", {"alias": "a" * 513}, "alias"),
    ("description too long", {"description": "d" * 15001}, "description"),
    ("entity too long", {"entity": "e" * 513}, "entity"),
    ("source too long", {"source": "s" * 101}, "source"),
    ("user too long", {"user": "u" * 101}, "user"),
    ("note too long", {"note": "n" * 25001}, "note"),
    ("unknown priority", {"priority": "P0"}, "priority"),
    ("responder of unknown type", {"responders": [{"type": "group", "name": "x"}]}, "responders"),
    ("team responder without id or name", {"responders": [{"type": "team"}]}, "responders"),
    ("user responder by name", {"responders": [{"type": "user", "name": "Jane"}]}, "responders"),
    ("too many responders", {"responders": [{"type": "team", "name": "t"}] * 51}, "responders"),
    ("escalation in visibleTo", {"visibleTo": [{"type": "escalation", "name": "e"}]}, "visibleTo"),
    ("too many tags", {"tags": ["t"] * 21}, "tags"),
    ("tag too long", {"tags": ["t" * 51]}, "tags"),
    ("too many actions", {"actions": ["a"] * 11}, "actions"),
    ("details not strings", {"details": {"nested": {"a": "b"}}}, "details"),
    ("details too large", {"details": {"k": "v" * 8000}}, "details"),
]


@pytest.mark.parametrize(
    ("fields", "field"),
    [case[1:] for case in INVALID_ALERTS],
    ids=[case[0] for case in INVALID_ALERTS],
)
async def test_an_invalid_alert_is_unprocessable(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession, fields: dict[str, Any], field: str
) -> None:
    body = {"message": "Disk full", **fields}
    if "message" in fields or not fields:
        body = dict(fields)
    status, answer = await genie(http, opsgenie, "POST", "/v2/alerts", body)
    assert status == 422
    assert set(answer) == {"message", "errors", "took", "requestId"}
    assert list(answer["errors"]) == [field]
    assert opsgenie.alerts() == [] and opsgenie.requests == {}


async def test_a_body_that_is_not_json_is_refused(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    status, body = await genie(http, opsgenie, "POST", "/v2/alerts", b"{nope")
    assert (status, body["message"]) == (400, "Invalid JSON body")
    status, _ = await genie(
        http, opsgenie, "POST", "/v2/alerts", b"message=m", headers={"Content-Type": "text/plain"}
    )
    assert status == 415


async def test_an_open_alias_counts_instead_of_alerting_again(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    ids = []
    for _ in range(3):
        _, body = await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "x"})
        ids.append((await status_of(http, opsgenie, body["requestId"]))[1]["data"]["alertId"])
    [alert] = opsgenie.alerts("x")
    assert alert.count == 3 and set(ids) == {alert.id}
    await genie(http, opsgenie, "POST", "/v2/alerts/x/close?identifierType=alias", {"user": "bot"})
    await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "x"})
    closed, reopened = opsgenie.alerts("x")
    assert (closed.status, closed.closed_by, reopened.status, reopened.count) == (
        "closed",
        "bot",
        "open",
        1,
    )


async def test_acknowledge_and_close_by_alias_id_and_tiny_id(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    for alias in ("a", "b", "c"):
        await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": alias})
    a, b, c = opsgenie.alerts()
    note = {"user": "Warroom", "source": "bot", "note": "Seen in #inc-42"}
    results = [
        await genie(http, opsgenie, "POST", "/v2/alerts/a/acknowledge?identifierType=alias", note),
        await genie(http, opsgenie, "POST", f"/v2/alerts/{b.id}/acknowledge"),
        await genie(http, opsgenie, "POST", f"/v2/alerts/{b.id}/close?identifierType=id"),
        await genie(http, opsgenie, "POST", f"/v2/alerts/{c.tiny_id}/close?identifierType=tiny"),
    ]
    assert [status for status, _ in results] == [202] * 4
    assert (a.acknowledged, a.acknowledged_by, a.notes, a.status) == (
        True,
        "Warroom",
        ["Seen in #inc-42"],
        "open",
    )
    assert (b.acknowledged, b.status, c.acknowledged, c.status) == (True, "closed", False, "closed")
    actions = [
        (await status_of(http, opsgenie, body["requestId"]))[1]["data"] for _, body in results
    ]
    assert [(d["action"], d["status"], d["alias"]) for d in actions] == [
        ("Acknowledge", "Acknowledged alert", "a"),
        ("Acknowledge", "Acknowledged alert", "b"),
        ("Close", "Closed alert", "b"),
        ("Close", "Closed alert", "c"),
    ]


async def test_an_action_on_an_unknown_alias_is_accepted_and_fails_later(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    status, body = await genie(
        http, opsgenie, "POST", "/v2/alerts/nope/acknowledge?identifierType=alias"
    )
    assert status == 202
    _, answer = await status_of(http, opsgenie, body["requestId"])
    assert answer["data"] == {
        "success": False,
        "action": "Acknowledge",
        "processedAt": answer["data"]["processedAt"],
        "integrationId": opsgenie.keys[GENIE].integration_id,
        "isSuccess": False,
        "status": "Alert does not exist",
        "alertId": "",
        "alias": "",
    }


async def test_an_alias_with_slashes_and_spaces_is_found_when_encoded(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    alias = "payments/db-1 disk?full"
    await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": alias})
    encoded = "payments%2Fdb-1%20disk%3Ffull"
    status, _ = await genie(
        http, opsgenie, "POST", f"/v2/alerts/{encoded}/close?identifierType=alias"
    )
    assert status == 202
    assert opsgenie.alerts(alias)[0].status == "closed"


async def test_an_unknown_identifier_type_is_unprocessable(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    status, body = await genie(http, opsgenie, "POST", "/v2/alerts/x/close?identifierType=name")
    assert (status, list(body["errors"])) == (422, ["identifierType"])


async def test_a_request_is_not_found_until_processed(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    opsgenie.hold_processing()
    _, body = await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "x"})
    async with http.get(
        f"{opsgenie.url}/v2/alerts/requests/{body['requestId']}",
        headers={"Authorization": f"GenieKey {GENIE}"},
    ) as response:
        assert response.status == 404
        assert response.headers["X-Opsgenie-Errortype"] == "RequestNotProcessed"
    assert opsgenie.alerts() == []
    assert opsgenie.process_pending() == 1
    status, answer = await status_of(http, opsgenie, body["requestId"])
    assert (status, answer["data"]["status"]) == (200, "Created alert")
    assert (await status_of(http, opsgenie, "513085b8-caf3-4f91-aa23-be5fdefc3570"))[0] == 404


async def test_alert_requests_over_the_limit_are_throttled(
    clock: Clock, http: aiohttp.ClientSession
) -> None:
    async with FakeOpsgenie(clock=clock, requests_per_minute=2) as fake:
        fake.add_key(GENIE)
        statuses = [
            (await genie(http, fake, "POST", "/v2/alerts", {"message": "m"}))[0] for _ in range(3)
        ]
        assert statuses == [202, 202, 429]
        async with http.post(
            f"{fake.url}/v2/alerts",
            json={"message": "m"},
            headers={"Authorization": f"GenieKey {GENIE}"},
        ) as response:
            assert response.status == 429
            assert response.headers["X-RateLimit-State"] == "THROTTLED"
        clock.now += 61
        assert (await genie(http, fake, "POST", "/v2/alerts", {"message": "m"}))[0] == 202
        assert len(fake.alerts()) == 3


async def test_opsgenie_faults_drop_and_lose_answers(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    opsgenie.fail_next(1, status=503, retry_after=2)
    opsgenie.drop_next(1)
    opsgenie.drop_next(1, after_processing=True)
    status, body = await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "x"})
    assert (status, body["message"]) == (503, "Service Unavailable")
    for _ in range(2):
        with pytest.raises(aiohttp.ClientError):
            await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "x"})
    [alert] = opsgenie.alerts("x")
    assert alert.count == 1
    assert [(c.fault, c.applied) for c in opsgenie.calls] == [
        ("503", False),
        ("drop", False),
        ("drop_after", True),
    ]


async def test_people_in_the_opsgenie_app(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    await genie(http, opsgenie, "POST", "/v2/alerts", {"message": "m", "alias": "x"})
    assert opsgenie.acknowledge("x", by="Jane Doe").acknowledged_by == "Jane Doe"
    assert opsgenie.close("x").status == "closed"
    with pytest.raises(KeyError):
        opsgenie.close("x")


async def test_an_unknown_opsgenie_path_is_not_found(
    opsgenie: FakeOpsgenie, http: aiohttp.ClientSession
) -> None:
    status, body = await genie(http, opsgenie, "POST", "/v1/alerts", {"message": "m"})
    assert (status, body["message"]) == (404, "Resource or handler not found")


async def test_the_fakes_pick_free_ports_and_stop(
    clock: Clock, http: aiohttp.ClientSession
) -> None:
    fakes = (FakePagerDuty(clock=clock), FakeOpsgenie(clock=clock))
    urls = [await fake.start() for fake in fakes]
    assert len(set(urls)) == 2 and all(url.startswith("http://127.0.0.1:") for url in urls)
    for fake in fakes:
        await fake.stop()
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.post(f"{fake.url}/v2/alerts")


async def test_both_fakes_run_standalone_and_print_their_urls(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.fake_pagers",
        "--routing-key",
        KEY,
        "--genie-key",
        GENIE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        lines = [await asyncio.wait_for(process.stdout.readline(), 20) for _ in range(2)]
        urls = dict(line.decode().split() for line in lines)
        async with http.post(f"{urls['pagerduty']}/v2/enqueue", json=trigger()) as response:
            assert response.status == 202
        async with http.post(
            f"{urls['opsgenie']}/v2/alerts",
            json={"message": "m"},
            headers={"Authorization": f"GenieKey {GENIE}"},
        ) as response:
            assert response.status == 202
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
