"""Atlassian Statuspage's REST API (v1), behind `StatusPagePort`.

Facts used, from Statuspage's published API reference (developer.statuspage.io, its OpenAPI
document): the key goes in `Authorization: OAuth <key>`; `POST /pages/{page_id}/incidents`
creates (201) from `{"incident": {"name", "status", "body", "components": {<component id>:
<status>}, "component_ids": [...], "deliver_notifications", "metadata"}}`, `name` required;
`PATCH /pages/{page_id}/incidents/{incident_id}` adds an update (200) from the same object;
`GET /pages/{page_id}/incidents/unresolved` and `GET /pages/{page_id}/incidents?q=` (name,
status and updates searched; at most 100 a page) list incidents, each with its `metadata`
(top-level values must be objects). Errors carry `{"message": ...}` (older answers
`{"error": ...}`; both are read): 401 a refused key, 404 an unknown page or incident, 422 a
field refused. Each key may make 1 request a second over a 60-second window; over it the API
answers 420 (historically) or 429 with `Retry-After`.

Setting a component's status through the incident's `components` map is how an incident moves
a component; Statuspage does not move components back when an incident is resolved through the
API, so a resolution sets every component it names to "operational" in the same request.
"""

from __future__ import annotations

from typing import Any

from app.domain.statuspage import AtlassianPolicy
from app.integrations.statuspages.http import Answer, StatusHttp, excerpt
from app.services.ports import StatusCall, StatusPageError, StatusPageErrorKind

MARKER_KEY = "warroom"
RESOLVED = "resolved"
OPERATIONAL = "operational"
LIST_LIMIT = "100"


class AtlassianStatuspage:
    """Publishes Warroom's public updates to one Statuspage page."""

    def __init__(self, policy: AtlassianPolicy, api_key: str, http: StatusHttp) -> None:
        self.policy = policy
        self._key = api_key
        self.http = http

    def configured(self) -> bool:
        return bool(self._key)

    async def publish(self, call: StatusCall) -> str:
        incident = self._incident(call)
        if call.remote_id is None:
            incident["metadata"] = {MARKER_KEY: {"marker": call.marker}} if call.marker else {}
            answer = await self._send("POST", "/incidents", incident)
            if answer.status in (200, 201) and isinstance(answer.body, dict):
                remote_id = answer.body.get("id")
                if isinstance(remote_id, str) and remote_id:
                    return remote_id
            if answer.status in (200, 201):
                raise StatusPageError(
                    StatusPageErrorKind.TRANSIENT,
                    "Statuspage created the incident but its answer named no id",
                    answer.status,
                    uncertain=True,
                )
            raise self._failure(answer, "creating the incident")
        answer = await self._send("PATCH", f"/incidents/{call.remote_id}", incident)
        if answer.status == 200:
            return call.remote_id
        raise self._failure(answer, f"updating incident {call.remote_id}")

    async def find(self, call: StatusCall) -> str | None:
        """The incident a lost create made: an unresolved one carrying the call's marker, else
        a recent one found by its name (it may have been created resolved)."""
        if not call.marker:
            return None
        answer = await self._send("GET", "/incidents/unresolved", params={"per_page": LIST_LIMIT})
        found = self._marked(answer, call.marker, "listing unresolved incidents")
        if found is not None:
            return found
        answer = await self._send("GET", "/incidents", params={"q": call.name, "limit": LIST_LIMIT})
        return self._marked(answer, call.marker, "searching incidents")

    async def close(self) -> None:
        await self.http.close()

    # requests -----------------------------------------------------------------------------

    def _incident(self, call: StatusCall) -> dict[str, Any]:
        """The `incident` object of a create or an update."""
        statuses: dict[str, str] = {}
        for component, impact in call.components:
            remote = self.policy.component_ids.get(component)
            if remote is not None:
                statuses[remote] = OPERATIONAL if call.status == RESOLVED else impact
        incident: dict[str, Any] = {
            "name": call.name,
            "status": call.status,
            "body": call.body,
            "deliver_notifications": True,
        }
        if statuses:
            incident["components"] = statuses
            incident["component_ids"] = list(statuses)
        return incident

    async def _send(
        self,
        method: str,
        path: str,
        incident: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        if not self._key:
            raise StatusPageError(
                StatusPageErrorKind.CREDENTIAL,
                f"{self.policy.api_key_env} is not set in Warroom's environment",
            )
        url = f"{self.policy.base_url}/pages/{self.policy.page_id}{path}"
        headers = {"Authorization": f"OAuth {self._key}", "Accept": "application/json"}
        body = {"incident": incident} if incident is not None else None
        try:
            return await self.http.request(method, url, headers, body, params)
        except StatusPageError as exc:
            exc.detail = self._scrub(f"Statuspage: {exc.detail}")
            exc.args = (exc.detail,)
            raise

    def _marked(self, answer: Answer, marker: str, what: str) -> str | None:
        if answer.status != 200 or not isinstance(answer.body, list):
            raise self._failure(answer, what)
        for incident in answer.body:
            if not isinstance(incident, dict):
                continue
            metadata = incident.get("metadata")
            mark = metadata.get(MARKER_KEY) if isinstance(metadata, dict) else None
            if isinstance(mark, dict) and mark.get("marker") == marker:
                remote_id = incident.get("id")
                return remote_id if isinstance(remote_id, str) else None
        return None

    # failures -----------------------------------------------------------------------------

    def _failure(self, answer: Answer, doing: str) -> StatusPageError:
        """What a failed answer means: 401/403 the key, 420/429/408/5xx try again later, any
        other 4xx a request Statuspage will never take (its message kept, never the key)."""
        said = _message(answer) or "no details"
        status = answer.status
        if status in (401, 403):
            detail = (
                f"Statuspage refused the API key in {self.policy.api_key_env} "
                f"(HTTP {status}): {said}"
            )
            kind = StatusPageErrorKind.CREDENTIAL
        elif status in (408, 420, 429) or status >= 500:
            wait = f"; retry after {answer.retry_after}s" if answer.retry_after else ""
            detail = f"Statuspage answered HTTP {status} {doing}: {said}{wait}"
            kind = StatusPageErrorKind.TRANSIENT
        elif status == 404:
            detail = (
                f"Statuspage answered 404 {doing}: page {self.policy.page_id} or the "
                f"incident is not there ({said})"
            )
            kind = StatusPageErrorKind.INVALID
        else:
            detail = f"Statuspage refused {doing} (HTTP {status}): {said}"
            kind = StatusPageErrorKind.INVALID
        return StatusPageError(kind, self._scrub(detail), status)

    def _scrub(self, text: str) -> str:
        """Never let the key through, even if an answer echoed it."""
        return text.replace(self._key, "[API key]") if self._key else text


def _message(answer: Answer) -> str:
    body = answer.body
    if isinstance(body, dict):
        for field in ("message", "error", "errors"):
            value = body.get(field)
            if isinstance(value, list):
                value = "; ".join(str(v) for v in value)
            if value:
                return excerpt(str(value))
    return excerpt(answer.text)
