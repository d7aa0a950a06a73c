"""Contract tests of the fake Statuspage, driven over real HTTP with aiohttp's client.

The adapter tests trust this fake to answer as Statuspage's REST API (v1) reference documents:
the OAuth key, the page, the `incident` object and its validation, component statuses set
through incidents, the rate limit per key, and the injected faults. Each is pinned down here.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from app.fake_statuspage import FakeStatuspage

KEY = "sp-key-0123456789abcdef"
PAGE = "pg1warroom01"
API, CHECKOUT = "cmpapi000001", "cmpcheckout1"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def fake(clock: Clock) -> AsyncIterator[FakeStatuspage]:
    statuspage = FakeStatuspage(PAGE, clock=clock, seed=3)
    statuspage.add_key(KEY)
    statuspage.add_component("API", API)
    statuspage.add_component("Checkout", CHECKOUT)
    async with statuspage:
        yield statuspage


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


async def call(
    http: aiohttp.ClientSession,
    fake: FakeStatuspage,
    method: str,
    path: str,
    body: Any = None,
    key: str | None = KEY,
    page: str = PAGE,
    params: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    """One request under /v1/pages/{page}; (status, decoded JSON, headers)."""
    headers = {"Authorization": f"OAuth {key}"} if key is not None else {}
    async with http.request(
        method, f"{fake.url}/v1/pages/{page}{path}", json=body, headers=headers, params=params
    ) as response:
        decoded = await response.json(content_type=None)
        return response.status, decoded, dict(response.headers)


def incident(**fields: Any) -> dict[str, Any]:
    return {"incident": {"name": "Checkout errors", "status": "investigating", **fields}}


async def test_a_missing_or_unknown_key_is_refused_with_401(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    for key in (None, "not-a-key"):
        status, body, _ = await call(http, fake, "POST", "/incidents", incident(), key=key)
        assert (status, body) == (401, {"message": "Could not authenticate"})
    async with http.get(
        f"{fake.url}/v1/pages/{PAGE}/incidents", headers={"Authorization": f"Bearer {KEY}"}
    ) as response:
        assert response.status == 401
    fake.revoke_key(KEY)
    status, _, _ = await call(http, fake, "GET", "/incidents")
    assert status == 401
    assert fake.incidents() == []


async def test_another_page_or_an_unknown_incident_is_404(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    status, body, _ = await call(http, fake, "POST", "/incidents", incident(), page="otherpage")
    assert status == 404 and "could not be found" in body["message"]
    status, _, _ = await call(http, fake, "PATCH", "/incidents/nope", incident())
    assert status == 404
    status, _, _ = await call(http, fake, "GET", "/components/nope")
    assert status == 404


async def test_the_incident_object_is_validated(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    cases: list[tuple[Any, int, str]] = [
        ({"name": "x"}, 400, "param is missing or the value is empty: incident"),
        ({"incident": {"status": "investigating"}}, 422, "Name can't be blank"),
        (incident(status="on_fire"), 422, "'on_fire' is not a valid status"),
        (incident(status="scheduled"), 422, "scheduled maintenance"),
        (incident(name="n" * 256), 422, "Name is too long (maximum is 255 characters)"),
        (incident(body="b" * 25_001), 422, "Body is too long (maximum is 25000 characters)"),
        (incident(components={"nope": "major_outage"}), 422, "not found on this page: nope"),
        (incident(component_ids=["nope"]), 422, "not found on this page: nope"),
        (incident(components={API: "down"}), 422, "Component status 'down'"),
        (incident(metadata={"warroom": "m"}), 422, "top-level values must be objects"),
        (incident(deliver_notifications="yes"), 422, "true or false"),
    ]
    for body, status, message in cases:
        answer, said, _ = await call(http, fake, "POST", "/incidents", body)
        assert answer == status, body
        assert message in said["message"]
    assert fake.incidents() == []
    assert fake.component_statuses() == {API: "operational", CHECKOUT: "operational"}


async def test_a_form_body_is_refused_because_the_fake_speaks_json(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    async with http.post(
        f"{fake.url}/v1/pages/{PAGE}/incidents",
        data={"incident[name]": "x"},
        headers={"Authorization": f"OAuth {KEY}"},
    ) as response:
        assert response.status == 400


async def test_create_update_resolve_moves_components_and_records_updates(
    http: aiohttp.ClientSession, fake: FakeStatuspage, clock: Clock
) -> None:
    status, created, _ = await call(
        http,
        fake,
        "POST",
        "/incidents",
        incident(
            body="We are looking into failed payments.",
            components={CHECKOUT: "major_outage"},
            component_ids=[CHECKOUT],
            metadata={"warroom": {"marker": "warroom-7"}},
            deliver_notifications=True,
        ),
    )
    assert status == 201
    remote = created["id"]
    assert len(remote) == 12 and created["status"] == "investigating"
    assert created["impact"] == "critical"
    assert created["metadata"] == {"warroom": {"marker": "warroom-7"}}
    assert [c["id"] for c in created["components"]] == [CHECKOUT]
    assert created["shortlink"].startswith("https://stspg.io/")
    first = created["incident_updates"][0]
    assert first["affected_components"] == [
        {
            "code": CHECKOUT,
            "name": "Checkout",
            "old_status": "operational",
            "new_status": "major_outage",
        }
    ]
    assert fake.component_status(CHECKOUT) == "major_outage"

    clock.now += 60
    status, updated, _ = await call(
        http,
        fake,
        "PATCH",
        f"/incidents/{remote}",
        {
            "incident": {
                "status": "monitoring",
                "body": "Fix deployed.",
                "components": {CHECKOUT: "degraded_performance"},
            }
        },
    )
    assert status == 200 and updated["monitoring_at"] is not None
    assert fake.component_status(CHECKOUT) == "degraded_performance"

    clock.now += 60
    status, resolved, _ = await call(
        http,
        fake,
        "PATCH",
        f"/incidents/{remote}",
        {
            "incident": {
                "status": "resolved",
                "body": "All good.",
                "components": {CHECKOUT: "operational"},
            }
        },
    )
    assert status == 200 and resolved["resolved_at"] is not None
    assert resolved["impact"] == "none"
    # Newest first in answers; oldest first in the fake's state.
    assert [u["status"] for u in resolved["incident_updates"]] == [
        "resolved",
        "monitoring",
        "investigating",
    ]
    assert [(u.status, u.body) for u in fake.updates(remote)] == [
        ("investigating", "We are looking into failed payments."),
        ("monitoring", "Fix deployed."),
        ("resolved", "All good."),
    ]
    assert fake.component_statuses() == {API: "operational", CHECKOUT: "operational"}
    assert fake.ignored_fields == []


async def test_resolving_does_not_move_components_by_itself(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    _, created, _ = await call(
        http, fake, "POST", "/incidents", incident(components={API: "partial_outage"})
    )
    await call(
        http, fake, "PATCH", f"/incidents/{created['id']}", {"incident": {"status": "resolved"}}
    )
    assert fake.incident(created["id"]).resolved
    assert fake.component_status(API) == "partial_outage"


async def test_listing_unresolved_and_searching(
    http: aiohttp.ClientSession, fake: FakeStatuspage, clock: Clock
) -> None:
    ids = []
    for name in ("Checkout errors", "Slow API", "Login failures"):
        clock.now += 1
        _, created, _ = await call(http, fake, "POST", "/incidents", incident(name=name))
        ids.append(created["id"])
    await call(http, fake, "PATCH", f"/incidents/{ids[1]}", {"incident": {"status": "resolved"}})
    status, unresolved, _ = await call(http, fake, "GET", "/incidents/unresolved")
    assert status == 200 and [i["id"] for i in unresolved] == [ids[2], ids[0]]
    _, found, _ = await call(http, fake, "GET", "/incidents", params={"q": "slow api"})
    assert [i["id"] for i in found] == [ids[1]]
    _, everything, _ = await call(http, fake, "GET", "/incidents", params={"limit": "2"})
    assert [i["id"] for i in everything] == [ids[2], ids[1]]
    _, second, _ = await call(http, fake, "GET", "/incidents", params={"limit": "2", "page": "2"})
    assert [i["id"] for i in second] == [ids[0]]
    status, one, _ = await call(http, fake, "GET", f"/incidents/{ids[0]}")
    assert status == 200 and one["name"] == "Checkout errors"


async def test_components_can_be_read_and_set(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    status, listed, _ = await call(http, fake, "GET", "/components")
    assert status == 200 and [(c["id"], c["status"]) for c in listed] == [
        (API, "operational"),
        (CHECKOUT, "operational"),
    ]
    status, body, _ = await call(
        http, fake, "PATCH", f"/components/{API}", {"component": {"status": "under_maintenance"}}
    )
    assert status == 200 and body["status"] == "under_maintenance"
    status, _, _ = await call(
        http, fake, "PATCH", f"/components/{API}", {"component": {"status": "bad"}}
    )
    assert status == 422
    assert fake.component_status(API) == "under_maintenance"


async def test_the_rate_limit_is_per_key_with_retry_after(
    http: aiohttp.ClientSession, clock: Clock
) -> None:
    fake = FakeStatuspage(PAGE, requests_per_minute=3, rate_limit_status=429, clock=clock)
    fake.add_key(KEY)
    fake.add_key("other-key")
    async with fake:
        for _ in range(3):
            assert (await call(http, fake, "GET", "/incidents"))[0] == 200
        status, body, headers = await call(http, fake, "GET", "/incidents")
        assert status == 429 and headers["Retry-After"] == "60" and "Rate limit" in body["message"]
        assert (await call(http, fake, "GET", "/incidents", key="other-key"))[0] == 200
        clock.now += 60
        assert (await call(http, fake, "GET", "/incidents"))[0] == 200


async def test_the_historical_420_is_the_default_rate_limit_answer(
    http: aiohttp.ClientSession, clock: Clock
) -> None:
    fake = FakeStatuspage(PAGE, requests_per_minute=1, clock=clock)
    fake.add_key(KEY)
    async with fake:
        await call(http, fake, "GET", "/incidents")
        status, _, headers = await call(http, fake, "GET", "/incidents")
        assert status == 420 and "Retry-After" in headers


async def test_faults_fail_drop_and_drop_after_applying(
    http: aiohttp.ClientSession, fake: FakeStatuspage
) -> None:
    fake.fail_next(2, status=503)
    for _ in range(2):
        status, body, _ = await call(http, fake, "POST", "/incidents", incident())
        assert status == 503 and body == {"message": "Service Unavailable"}
    assert fake.incidents() == []
    fake.drop_next()
    with pytest.raises(aiohttp.ClientError):
        await call(http, fake, "POST", "/incidents", incident())
    assert fake.incidents() == []
    fake.drop_next(after_processing=True)
    with pytest.raises(aiohttp.ClientError):
        await call(http, fake, "POST", "/incidents", incident())
    assert len(fake.incidents()) == 1
    assert fake.calls[-1].applied and fake.calls[-1].fault == "drop_after"


async def test_it_runs_standalone_and_prints_its_url(http: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.fake_statuspage",
        "--page-id",
        PAGE,
        "--key",
        KEY,
        "--component",
        f"{API}=API",
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), 20)
        name, base = line.decode().split()
        assert name == "statuspage"
        async with http.post(
            f"{base}/pages/{PAGE}/incidents",
            json=incident(components={API: "major_outage"}),
            headers={"Authorization": f"OAuth {KEY}"},
        ) as response:
            assert response.status == 201
        async with http.get(
            f"{base}/pages/{PAGE}/components/{API}", headers={"Authorization": f"OAuth {KEY}"}
        ) as response:
            assert (await response.json())["status"] == "major_outage"
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 20) == 0
