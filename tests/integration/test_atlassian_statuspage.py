"""Warroom's Atlassian Statuspage client against the fake Statuspage, over real HTTP: the
create, update and resolve sequence and the component statuses it sets, the component mapping,
how each failure is classified, a create whose answer was lost found again by its marker, and
the key kept out of every error."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.domain.statuspage import StatusPagePolicy
from app.fake_statuspage import FakeStatuspage
from app.integrations.statuspages import AtlassianStatuspage, StatusHttp, statuspage_client
from app.services.ports import StatusCall, StatusPageError, StatusPageErrorKind

KEY = "sp-secret-key-5f3e9a7c"
PAGE = "pg1warroom01"
API, CHECKOUT = "cmpapi000001", "cmpcheckout1"
ENV = "STATUSPAGE_API_KEY"


def policy(base_url: str, component_ids: dict[str, str] | None = None) -> StatusPagePolicy:
    return StatusPagePolicy.model_validate(
        {
            "enabled": True,
            "provider": "atlassian",
            "components": {
                "api": {"name": "API"},
                "checkout": {"name": "Checkout"},
                "dashboard": {"name": "Dashboard"},
            },
            "atlassian": {
                "page_id": PAGE,
                "api_key_env": ENV,
                "base_url": base_url,
                # The dashboard is on no Atlassian page.
                "component_ids": component_ids or {"api": API, "checkout": CHECKOUT},
            },
        }
    )


def call(
    status: str = "investigating",
    remote_id: str | None = None,
    components: tuple[tuple[str, str], ...] = (("checkout", "major_outage"),),
    body: str = "Payments are failing; we are looking into it.",
) -> StatusCall:
    return StatusCall(
        incident_id=7,
        remote_id=remote_id,
        name="Checkout errors",
        status=status,
        body=body,
        components=components,
        marker="warroom-incident-7",
    )


@pytest.fixture
async def fake() -> AsyncIterator[FakeStatuspage]:
    statuspage = FakeStatuspage(PAGE, requests_per_minute=None, seed=5)
    statuspage.add_key(KEY)
    statuspage.add_component("API", API)
    statuspage.add_component("Checkout", CHECKOUT)
    async with statuspage:
        yield statuspage


@pytest.fixture
async def client(fake: FakeStatuspage) -> AsyncIterator[AtlassianStatuspage]:
    made = statuspage_client(policy(f"{fake.url}/v1"), {ENV: KEY})
    assert made is not None
    yield made
    await made.close()


async def failure(client: AtlassianStatuspage, the_call: StatusCall) -> StatusPageError:
    with pytest.raises(StatusPageError) as caught:
        await client.publish(the_call)
    assert KEY not in caught.value.detail and KEY not in str(caught.value)
    return caught.value


async def test_create_update_resolve_sets_components_and_resolves(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    remote = await client.publish(
        call(components=(("checkout", "major_outage"), ("dashboard", "partial_outage")))
    )
    sent = fake.calls_to("create")[0]
    assert sent.headers["Authorization"] == f"OAuth {KEY}"
    assert sent.json == {
        "incident": {
            "name": "Checkout errors",
            "status": "investigating",
            "body": "Payments are failing; we are looking into it.",
            "deliver_notifications": True,
            # The dashboard has no Atlassian component: left out.
            "components": {CHECKOUT: "major_outage"},
            "component_ids": [CHECKOUT],
            "metadata": {"warroom": {"marker": "warroom-incident-7"}},
        }
    }
    assert fake.component_statuses() == {API: "operational", CHECKOUT: "major_outage"}

    again = await client.publish(
        call(
            "identified",
            remote,
            (("checkout", "partial_outage"), ("api", "degraded_performance")),
            "A bad deploy; rolling back.",
        )
    )
    assert again == remote
    assert fake.component_statuses() == {API: "degraded_performance", CHECKOUT: "partial_outage"}

    await client.publish(
        call(
            "resolved",
            remote,
            (("checkout", "partial_outage"), ("api", "degraded_performance")),
            "Payments work again.",
        )
    )
    incident = fake.incident(remote)
    assert incident.resolved and incident.resolved_at is not None
    assert [(u.status, u.body) for u in incident.updates] == [
        ("investigating", "Payments are failing; we are looking into it."),
        ("identified", "A bad deploy; rolling back."),
        ("resolved", "Payments work again."),
    ]
    assert fake.component_statuses() == {API: "operational", CHECKOUT: "operational"}
    assert len(fake.incidents()) == 1
    assert fake.ignored_fields == []


async def test_an_incident_naming_no_mapped_component_sends_none(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    await client.publish(call(components=(("dashboard", "major_outage"),)))
    sent = fake.calls_to("create")[0].json["incident"]
    assert "components" not in sent and "component_ids" not in sent
    assert fake.component_statuses() == {API: "operational", CHECKOUT: "operational"}


async def test_a_missing_key_is_a_credential_failure_naming_the_variable(
    fake: FakeStatuspage,
) -> None:
    client = statuspage_client(policy(f"{fake.url}/v1"), {})
    assert client is not None and not client.configured()
    error = await failure(client, call())
    assert error.kind is StatusPageErrorKind.CREDENTIAL and ENV in error.detail
    assert fake.calls == []
    await client.close()


async def test_a_refused_key_is_a_credential_failure(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    fake.revoke_key(KEY)
    error = await failure(client, call())
    assert (error.kind, error.status) == (StatusPageErrorKind.CREDENTIAL, 401)
    assert ENV in error.detail and "Could not authenticate" in error.detail


async def test_a_refused_request_is_invalid_with_the_api_message(fake: FakeStatuspage) -> None:
    client = AtlassianStatuspage(
        policy(f"{fake.url}/v1", {"checkout": "cmpdeleted01"}).atlassian,  # type: ignore[arg-type]
        KEY,
        StatusHttp(),
    )
    error = await failure(client, call())
    assert (error.kind, error.status) == (StatusPageErrorKind.INVALID, 422)
    assert "cmpdeleted01" in error.detail
    error = await failure(client, call("identified", "noincident01", ()))
    assert (error.kind, error.status) == (StatusPageErrorKind.INVALID, 404)
    await client.close()


@pytest.mark.parametrize("status", [420, 429, 500, 503])
async def test_rate_limits_and_server_errors_are_transient(
    fake: FakeStatuspage, client: AtlassianStatuspage, status: int
) -> None:
    fake.fail_next(status=status, retry_after=30)
    error = await failure(client, call())
    assert (error.kind, error.status, error.uncertain) == (
        StatusPageErrorKind.TRANSIENT,
        status,
        False,
    )
    assert "retry after 30s" in error.detail
    assert fake.incidents() == []


async def test_the_fakes_own_rate_limit_is_transient() -> None:
    limited = FakeStatuspage(PAGE, requests_per_minute=1)
    limited.add_key(KEY)
    limited.add_component("Checkout", CHECKOUT)
    async with limited:
        client = statuspage_client(policy(f"{limited.url}/v1"), {ENV: KEY})
        assert client is not None
        try:
            await client.publish(call())
            error = await failure(client, call())
            assert (error.kind, error.status) == (StatusPageErrorKind.TRANSIENT, 420)
            assert "retry after 60s" in error.detail
        finally:
            await client.close()


async def test_a_provider_that_cannot_be_reached_is_transient_and_certain(
    fake: FakeStatuspage,
) -> None:
    url = f"{fake.url}/v1"
    await fake.stop()
    client = statuspage_client(policy(url), {ENV: KEY})
    assert client is not None
    error = await failure(client, call())
    assert error.kind is StatusPageErrorKind.TRANSIENT and not error.uncertain
    await client.close()


async def test_a_lost_answer_is_uncertain_and_find_returns_the_created_incident(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    assert await client.find(call()) is None
    fake.drop_next(after_processing=True, route="create")
    error = await failure(client, call())
    assert error.kind is StatusPageErrorKind.TRANSIENT and error.uncertain
    [created] = fake.incidents()
    found = await client.find(call())
    assert found == created.id
    # Publishing goes on with the found incident; no second incident.
    await client.publish(call("monitoring", found, (("checkout", "degraded_performance"),)))
    assert len(fake.incidents()) == 1
    assert fake.component_status(CHECKOUT) == "degraded_performance"


async def test_a_connection_dropped_before_the_answer_is_uncertain_even_if_nothing_was_made(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    fake.drop_next(route="create")
    error = await failure(client, call())
    assert error.kind is StatusPageErrorKind.TRANSIENT and error.uncertain
    assert await client.find(call()) is None
    assert await client.publish(call()) == fake.incidents()[0].id


async def test_find_looks_among_resolved_incidents_too(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    fake.drop_next(after_processing=True, route="create")
    await failure(client, call("resolved"))
    found = await client.find(call("resolved"))
    assert found == fake.incidents()[0].id
    other = StatusCall(7, None, "Checkout errors", "resolved", "b", (), "warroom-incident-8")
    assert await client.find(other) is None


async def test_a_slow_answer_is_uncertain(fake: FakeStatuspage) -> None:
    client = AtlassianStatuspage(
        policy(f"{fake.url}/v1").atlassian,  # type: ignore[arg-type]
        KEY,
        StatusHttp(timeout=0.2),
    )
    fake.slow_next(seconds=0.6, route="create")
    error = await failure(client, call())
    assert error.kind is StatusPageErrorKind.TRANSIENT and error.uncertain
    await client.close()


async def test_find_failures_are_classified_too(
    fake: FakeStatuspage, client: AtlassianStatuspage
) -> None:
    fake.fail_next(status=502, route="unresolved")
    with pytest.raises(StatusPageError) as caught:
        await client.find(call())
    assert caught.value.kind is StatusPageErrorKind.TRANSIENT
    fake.revoke_key(KEY)
    with pytest.raises(StatusPageError) as caught:
        await client.find(call())
    assert caught.value.kind is StatusPageErrorKind.CREDENTIAL
    assert KEY not in caught.value.detail


def test_only_an_atlassian_policy_gets_a_client() -> None:
    assert statuspage_client(StatusPagePolicy(), {ENV: KEY}) is None
    disabled = policy("https://api.statuspage.io/v1").model_copy(update={"enabled": False})
    assert statuspage_client(disabled, {ENV: KEY}) is None
    client = statuspage_client(policy("https://api.statuspage.io/v1"), {ENV: KEY})
    assert client is not None and client.configured()
