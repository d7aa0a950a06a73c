"""PagerDuty's webhooks (v3): what people did with a page, told back to Warroom.

Each delivery is signed: `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>` with the
subscription's secret; while a secret is being rotated the header carries several signatures,
comma-separated, and any one matching is enough. The page is found by the incident's
`incident_key`, which is the dedup key Warroom sent with the trigger.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "X-PagerDuty-Signature"

# What each event type says happened to the page; events not listed are answered and ignored
# (`incident.triggered` is Warroom's own page arriving; `pagey.ping` a subscription test).
STATES = {
    "incident.acknowledged": "acknowledged",
    "incident.resolved": "resolved",
    "incident.unacknowledged": "unacknowledged",
    "incident.reassigned": "reassigned",
    "incident.escalated": "escalated",
    "incident.delegated": "delegated",
    "incident.reopened": "reopened",
}


class WebhookPayloadError(ValueError):
    """The body is not a PagerDuty v3 webhook Warroom can read."""


@dataclass(frozen=True)
class PagerDutyEvent:
    id: str
    event_type: str
    incident_key: str
    # The incident's title: the first trigger's summary ("[Sev2] Incident #42: …"). PagerDuty
    # leaves `incident_key` null on some incidents opened through the Events API.
    title: str
    # Who did it, as PagerDuty names them (the agent's summary), or "PagerDuty".
    who: str
    # Made through an integration (the Events API): Warroom's own acknowledge or resolve
    # coming back, not a person on their phone.
    by_integration: bool = False

    @property
    def state(self) -> str | None:
        return STATES.get(self.event_type)


def signature_valid(secrets: list[str], raw: bytes, header: str) -> bool:
    """Whether any `v1=` signature in the header is the body's HMAC with any secret."""
    given = [
        part.strip().removeprefix("v1=").lower()
        for part in header.split(",")
        if part.strip().startswith("v1=")
    ]
    for secret in secrets:
        expected = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        if any(hmac.compare_digest(g.encode(), expected.encode()) for g in given):
            return True
    return False


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise WebhookPayloadError(f"{where} is not an object")
    return value


def parse(data: Any) -> PagerDutyEvent:
    event = _object(_object(data, "the body").get("event"), "event")
    event_id = event.get("id")
    event_type = event.get("event_type")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookPayloadError("event.id is missing")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookPayloadError("event.event_type is missing")
    resource = event.get("data")
    key = title = ""
    if isinstance(resource, dict):
        if isinstance(resource.get("incident_key"), str):
            key = resource["incident_key"]
        if isinstance(resource.get("title"), str):
            title = resource["title"][:1024]
    agent = event.get("agent")
    who = "PagerDuty"
    by_integration = False
    if isinstance(agent, dict):
        if isinstance(agent.get("summary"), str) and agent["summary"]:
            who = " ".join(agent["summary"].split())[:100]
        by_integration = str(agent.get("type", "")).endswith("integration_reference")
    return PagerDutyEvent(
        id=event_id[:200],
        event_type=event_type,
        incident_key=key,
        title=title,
        who=who,
        by_integration=by_integration,
    )
