"""Status pages to render: built with `build_page` from a policy and public incidents, normal
ones and hostile ones (names and bodies that try to become markup)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from app.domain.statuspage import (
    Component,
    Impact,
    PublicIncident,
    PublicPage,
    PublicStatus,
    PublishedUpdate,
    StatusPagePolicy,
    build_page,
)

NOW = datetime(2026, 11, 12, 15, 0, tzinfo=UTC)
SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SVG = '"><svg onload=alert(1)>'
CDATA_END = "]]>"
TEMPLATE = "{{ 7*7 }}"
HOSTILE = (SCRIPT, IMG, SVG, CDATA_END, TEMPLATE)
HOSTILE_BODY = f"Investigating {SCRIPT}\nthen {IMG}\n\nand {SVG} {CDATA_END} {TEMPLATE} *not bold*"


def policy(**overrides: object) -> StatusPagePolicy:
    fields: dict[str, object] = {
        "enabled": True,
        "title": "Example Status",
        "url": "https://status.example.com/status",
        "logo_url": "https://status.example.com/logo.png",
        "accent_colour": "#5b21b6",
        "history_days": 90,
        "components": {
            "api": Component(name="API", description="The public REST API", group="Platform"),
            "checkout": Component(name="Checkout", group="Platform"),
            "hostile": Component(name=f"Hostile {SCRIPT} {IMG}", description=SVG, group=SVG),
            "dashboard": Component(name="Dashboard"),
        },
    }
    fields.update(overrides)
    return StatusPagePolicy.model_validate(fields)


def update(status: PublicStatus, body: str, at: datetime) -> PublishedUpdate:
    return PublishedUpdate(status=status, body=body, published_at=at)


def ongoing_incident() -> PublicIncident:
    """#42, ongoing: checkout partly down, the hostile component degraded; two updates."""
    start = NOW - timedelta(hours=2)
    return PublicIncident(
        id=42,
        title="Checkout errors",
        status=PublicStatus.IDENTIFIED,
        components={"checkout": Impact.PARTIAL, "hostile": Impact.DEGRADED},
        started_at=start,
        resolved_at=None,
        updates=(
            update(
                PublicStatus.IDENTIFIED,
                "We found the cause: a bad deploy.\nRolling back now.",
                start + timedelta(hours=1),
            ),
            update(PublicStatus.INVESTIGATING, "We are looking into checkout errors.", start),
        ),
    )


def hostile_incident() -> PublicIncident:
    """#43, ongoing, with a hostile title and body, on no component."""
    start = NOW - timedelta(minutes=30)
    return PublicIncident(
        id=43,
        title=f"Title {SCRIPT} {IMG} {SVG} {CDATA_END} {TEMPLATE}",
        status=PublicStatus.INVESTIGATING,
        components={},
        started_at=start,
        resolved_at=None,
        updates=(update(PublicStatus.INVESTIGATING, HOSTILE_BODY, start),),
    )


def resolved_incident() -> PublicIncident:
    """#41, resolved ten days ago: a major API outage, three updates."""
    start = NOW - timedelta(days=10, hours=3)
    end = start + timedelta(hours=2)
    return PublicIncident(
        id=41,
        title="API unavailable",
        status=PublicStatus.RESOLVED,
        components={"api": Impact.MAJOR},
        started_at=start,
        resolved_at=end,
        updates=(
            update(PublicStatus.RESOLVED, "The API is back.", end),
            update(PublicStatus.MONITORING, "A fix is out; watching.", start + timedelta(hours=1)),
            update(PublicStatus.INVESTIGATING, "The API answers 503.", start),
        ),
    )


def sample_page(now: datetime = NOW, **overrides: object) -> PublicPage:
    incidents = [ongoing_incident(), hostile_incident(), resolved_incident()]
    return build_page(policy(**overrides), incidents, now)


def quiet_page(now: datetime = NOW) -> PublicPage:
    return build_page(policy(), [], now)


def normal_page(now: datetime = NOW) -> PublicPage:
    """A page as a team would show it (no hostile text): for the documentation's screenshots."""
    components = {
        "api": Component(name="API", description="The public REST API", group="Platform"),
        "checkout": Component(name="Checkout", group="Platform"),
        "webhooks": Component(name="Webhooks", group="Platform"),
        "dashboard": Component(name="Dashboard", group="Web"),
        "docs": Component(name="Documentation", group="Web"),
    }
    checkout = replace(ongoing_incident(), components={"checkout": Impact.PARTIAL})
    return build_page(
        policy(components=components, logo_url=""), [checkout, resolved_incident()], now
    )
