"""Opsgenie's Alert API v2 (Jira Service Management's has the same shape): create an alert
with `POST /v2/alerts`, acknowledge and close it by its alias. Authenticated with
`Authorization: GenieKey <key>`.

202 = accepted (processed asynchronously). 401/403 = the key. 422 and other 4xx = the request.
429 and 5xx = retried with backoff. Creating an alert whose alias is open adds to its count
instead of paging again, so a create sent twice pages once.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from app.domain.paging import (
    OPSGENIE_DESCRIPTION_MAX,
    OPSGENIE_MESSAGE_MAX,
    OPSGENIE_PRIORITY,
    OpsgenieTarget,
    clip,
)
from app.integrations.pagers.http import Http, by_status
from app.services.ports import PageCall

SOURCE = "Warroom"


def alert(call: PageCall, target: OpsgenieTarget) -> dict[str, Any]:
    """The create-alert body for a trigger."""
    lines = [call.summary]
    if call.message:
        lines.append(call.message)
    lines += [f"{text}: {href}" for href, text in call.links]
    details = {"incident": f"#{call.incident_id}", **dict(call.details)}
    body: dict[str, Any] = {
        "message": clip(call.summary, OPSGENIE_MESSAGE_MAX),
        "alias": call.dedup_key,
        "description": "\n".join(lines)[:OPSGENIE_DESCRIPTION_MAX],
        "priority": OPSGENIE_PRIORITY.get(call.severity, "P1"),
        "source": SOURCE,
        "details": details,
        "tags": ["warroom", f"sev{call.severity}", *target.tags],
    }
    if target.responders:
        body["responders"] = [
            r.model_dump(exclude_defaults=True, include={"type", "name", "id", "username"})
            | {"type": r.type}
            for r in target.responders
        ]
    return body


class Opsgenie:
    def __init__(self, target: OpsgenieTarget, api_key: str, http: Http) -> None:
        self.target = target
        self.api_key = api_key
        self.http = http

    async def send(self, call: PageCall) -> str:
        headers = {"Content-Type": "application/json", "Authorization": f"GenieKey {self.api_key}"}
        base = f"{self.target.base_url}/v2/alerts"
        if call.action == "trigger":
            url, body = base, alert(call, self.target)
        else:
            verb = "acknowledge" if call.action == "acknowledge" else "close"
            url = f"{base}/{quote(call.dedup_key, safe='')}/{verb}?identifierType=alias"
            body = {"source": SOURCE, "note": clip(call.message or call.summary, 1000)}
        answer = await self.http.post(url, json.dumps(body).encode(), headers)
        if answer.status in (200, 201, 202):
            request = answer.body.get("requestId", "") if isinstance(answer.body, dict) else ""
            return f"accepted by Opsgenie (request {request})" if request else "accepted"
        raise by_status(answer, "Opsgenie")
