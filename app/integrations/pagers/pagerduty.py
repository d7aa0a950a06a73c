"""PagerDuty's Events API v2: `POST /v2/enqueue`, one event per call.

202 = accepted. 400 = the event is invalid: our bug, not retried, except when PagerDuty says
the routing key is wrong (a set-up problem people must fix: told, and retried slowly). 429 and
5xx = retried with backoff. A trigger for a dedup key whose alert is open is appended to it,
so a trigger sent twice pages once.
"""

from __future__ import annotations

import json
from typing import Any

from app.domain.paging import PAGERDUTY_SEVERITY, PAGERDUTY_SUMMARY_MAX, PagerDutyTarget, clip
from app.integrations.pagers.http import Http, by_status, excerpt
from app.services.ports import PageCall, PagerError, PagerErrorKind

CLIENT = "Warroom"


def event(call: PageCall, routing_key: str) -> dict[str, Any]:
    """The Events API v2 body for one call."""
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": call.action,
        "dedup_key": call.dedup_key,
    }
    if call.action != "trigger":
        return body
    details: dict[str, str] = {"incident": f"#{call.incident_id}", **dict(call.details)}
    if call.message:
        details["message"] = call.message
    body["payload"] = {
        "summary": clip(call.summary, PAGERDUTY_SUMMARY_MAX),
        "source": "warroom",
        "severity": PAGERDUTY_SEVERITY.get(call.severity, "critical"),
        "class": f"Sev{call.severity}",
        "custom_details": details,
    }
    body["client"] = CLIENT
    if call.links:
        body["client_url"] = call.links[0][0]
        body["links"] = [{"href": href, "text": text} for href, text in call.links]
    return body


class PagerDuty:
    def __init__(self, target: PagerDutyTarget, routing_key: str, http: Http) -> None:
        self.target = target
        self.routing_key = routing_key
        self.http = http

    async def send(self, call: PageCall) -> str:
        body = json.dumps(event(call, self.routing_key)).encode()
        answer = await self.http.post(
            f"{self.target.base_url}/v2/enqueue", body, {"Content-Type": "application/json"}
        )
        if answer.status == 202:
            return "accepted by PagerDuty"
        if answer.status == 400:
            errors = answer.body.get("errors", []) if isinstance(answer.body, dict) else []
            said = "; ".join(str(e) for e in errors) or excerpt(answer.text)
            if "routing_key" in said or "routing key" in said.lower():
                raise PagerError(
                    PagerErrorKind.CREDENTIAL,
                    f"PagerDuty refuses the routing key in {self.target.routing_key_env}: {said}",
                    400,
                )
            raise PagerError(PagerErrorKind.INVALID, f"PagerDuty refused the event: {said}", 400)
        raise by_status(answer, "PagerDuty")
