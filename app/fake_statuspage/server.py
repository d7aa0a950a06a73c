"""The fake Statuspage (`FakeStatuspage`): the REST API v1's incident and component endpoints for
one page, over real HTTP, with Statuspage's authentication, validation, errors and rate limit.

Routes (all under `/v1/pages/{page_id}`): `POST /incidents` (201), `GET /incidents` (`q`,
`limit` up to 100, `page`), `GET /incidents/unresolved` (`page`, `per_page`), `GET`, `PATCH`
and `PUT /incidents/{incident_id}`, `GET /components`, `GET`, `PATCH` and `PUT
/components/{component_id}`. Errors are JSON `{"message": ...}` (the API reference's
`ErrorEntity`): 401 "Could not authenticate" for a missing or unknown key, 404 for an unknown
page, incident or component, 400 for a missing `incident` object, 422 for a field that fails
validation, 420 or 429 with `Retry-After` over the rate limit.

The fault plan of the fake pagers applies (`fail_next`, `drop_next`, `slow_next`,
`random_failures`); `revoke_key` makes a key fail as a key deleted in Statuspage does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from app.fake_pagers.server import Answer, Call, FakeHttpServer, retry_after_header

from .limits import PER_MINUTE, RollingWindow
from .state import COMPONENT_STATUSES, Component, Ids, Incident, IncidentUpdate, PageState
from .validation import check_incident

CREATE, LIST, UNRESOLVED, GET, UPDATE = "create", "list", "unresolved", "get", "update"
COMPONENTS, COMPONENT, COMPONENT_UPDATE, UNKNOWN = (
    "components",
    "component",
    "component_update",
    "unknown",
)
LIST_MAX = 100
NOT_FOUND = "The requested resource could not be found."
THROTTLED = "Rate limit exceeded. Please retry after the time given in Retry-After."


class FakeStatuspage(FakeHttpServer):
    """A stateful fake of Statuspage's REST API (v1) for one page, on a local port."""

    name = "fake Statuspage"

    def __init__(
        self,
        page_id: str = "pg1warroom01",
        *,
        requests_per_minute: int | None = PER_MINUTE,
        rate_limit_status: int = 420,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
    ) -> None:
        super().__init__(clock)
        if rate_limit_status not in (420, 429):
            raise ValueError("Statuspage answers 420 or 429 over its rate limit")
        self.ids = Ids(seed)
        self.page = PageState(page_id, self.ids, self.clock)
        self.keys: set[str] = set()
        self.limiter = RollingWindow(requests_per_minute, self.clock)
        self.rate_limit_status = rate_limit_status
        # (route, field) for every incident field the API would have dropped silently.
        self.ignored_fields: list[tuple[str, str]] = []

    def add_routes(self, app: web.Application) -> None:
        base = "/v1/pages/{page_id}"
        router = app.router
        router.add_post(f"{base}/incidents", self.route(CREATE, self._create))
        router.add_get(f"{base}/incidents", self.route(LIST, self._list))
        router.add_get(f"{base}/incidents/unresolved", self.route(UNRESOLVED, self._unresolved))
        router.add_get(f"{base}/incidents/{{incident_id}}", self.route(GET, self._get))
        for method in ("PATCH", "PUT"):
            router.add_route(
                method, f"{base}/incidents/{{incident_id}}", self.route(UPDATE, self._update)
            )
            router.add_route(
                method,
                f"{base}/components/{{component_id}}",
                self.route(COMPONENT_UPDATE, self._component_update),
            )
        router.add_get(f"{base}/components", self.route(COMPONENTS, self._components))
        router.add_get(
            f"{base}/components/{{component_id}}", self.route(COMPONENT, self._component)
        )
        router.add_route("*", "/{tail:.*}", self.route(UNKNOWN, self._not_found))

    # seeding ------------------------------------------------------------------------------

    @property
    def page_id(self) -> str:
        return self.page.page_id

    def add_key(self, key: str) -> None:
        """Accept `key` (`Authorization: OAuth <key>`) for the page."""
        self.keys.add(key)

    def revoke_key(self, key: str) -> None:
        """Refuse `key` from now on (401), as Statuspage does once a key is deleted."""
        self.keys.discard(key)

    def add_component(self, name: str, component_id: str | None = None) -> Component:
        """A component on the page, operational; its id is made up unless given."""
        return self.page.add_component(name, component_id)

    # inspection ---------------------------------------------------------------------------

    def incidents(self) -> list[Incident]:
        """Every incident, in the order they were created."""
        return list(self.page.incidents)

    def incident(self, incident_id: str) -> Incident:
        """One incident (KeyError when the page has none with that id)."""
        found = self.page.incident(incident_id)
        if found is None:
            raise KeyError(incident_id)
        return found

    def updates(self, incident_id: str) -> list[IncidentUpdate]:
        """An incident's updates, oldest first."""
        return list(self.incident(incident_id).updates)

    def component_status(self, component_id: str) -> str:
        return self.page.components[component_id].status

    def component_statuses(self) -> dict[str, str]:
        return {cid: c.status for cid, c in self.page.components.items()}

    # authentication and page --------------------------------------------------------------

    def _admit(self, call: Call) -> Answer | None:
        """The refusal of a request (401, 404 for another page, 420/429), or None."""
        scheme, _, key = call.headers.get("Authorization", "").partition(" ")
        key = key.strip() if scheme.lower() == "oauth" else call.query.get("api_key", "")
        if not key or key not in self.keys:
            return _error(401, "Could not authenticate")
        wait = self.limiter.wait(key)
        if wait:
            return self._throttled(wait)
        if call.segment(2) != self.page_id:
            return _error(404, NOT_FOUND)
        return None

    def _json(self, call: Call) -> tuple[Any, Answer | None]:
        content_type = call.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            # The real API also takes form-encoded bodies; Warroom sends JSON, so the fake
            # takes JSON only and says so.
            return None, _error(400, "Send a JSON body with Content-Type: application/json")
        body = call.json
        if body is None:
            return None, _error(400, "The body is not valid JSON")
        return body, None

    # incidents ----------------------------------------------------------------------------

    def _create(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        body, refused = self._json(call)
        if refused:
            return refused
        checked = check_incident(body, self.page.components, creating=True)
        if checked.refused:
            return _error(checked.status, checked.message)
        self.ignored_fields.extend((CREATE, name) for name in checked.ignored)
        incident = self.page.create(checked.fields)
        call.applied = True
        return Answer(201, self.page.incident_json(incident))

    def _update(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        incident = self.page.incident(call.segment(4))
        if incident is None:
            return _error(404, NOT_FOUND)
        body, refused = self._json(call)
        if refused:
            return refused
        checked = check_incident(body, self.page.components, creating=False)
        if checked.refused:
            return _error(checked.status, checked.message)
        self.ignored_fields.extend((UPDATE, name) for name in checked.ignored)
        self.page.update(incident, checked.fields)
        call.applied = True
        return Answer(200, self.page.incident_json(incident))

    def _get(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        incident = self.page.incident(call.segment(4))
        if incident is None:
            return _error(404, NOT_FOUND)
        return Answer(200, self.page.incident_json(incident))

    def _list(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        paging = _paging(call, "limit", LIST_MAX)
        if isinstance(paging, Answer):
            return paging
        query = call.query.get("q", "")
        found = [
            i for i in reversed(self.page.incidents) if not query or self.page.matches(i, query)
        ]
        return self._page_of(found, *paging)

    def _unresolved(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        paging = _paging(call, "per_page", LIST_MAX)
        if isinstance(paging, Answer):
            return paging
        found = [i for i in reversed(self.page.incidents) if not i.resolved]
        return self._page_of(found, *paging)

    def _page_of(self, incidents: list[Incident], size: int, number: int) -> Answer:
        chosen = incidents[(number - 1) * size : number * size]
        return Answer(200, [self.page.incident_json(i) for i in chosen])  # type: ignore[arg-type]

    # components ---------------------------------------------------------------------------

    def _components(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        listed = [c.to_json() for c in self.page.components.values()]
        return Answer(200, listed)  # type: ignore[arg-type]

    def _component(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        component = self.page.components.get(call.segment(4))
        if component is None:
            return _error(404, NOT_FOUND)
        return Answer(200, component.to_json())

    def _component_update(self, call: Call) -> Answer:
        refused = self._admit(call)
        if refused:
            return refused
        component = self.page.components.get(call.segment(4))
        if component is None:
            return _error(404, NOT_FOUND)
        body, refused = self._json(call)
        if refused:
            return refused
        fields = body.get("component") if isinstance(body, dict) else None
        if not isinstance(fields, dict) or not fields:
            return _error(400, "param is missing or the value is empty: component")
        status = fields.get("status", component.status)
        if status not in COMPONENT_STATUSES:
            return _error(422, f"Status {status!r} is not one of {', '.join(COMPONENT_STATUSES)}")
        name = fields.get("name", component.name)
        if not isinstance(name, str) or not name.strip():
            return _error(422, "Name can't be blank")
        component.name = name
        self.page.set_component(component, status)
        call.applied = True
        return Answer(200, component.to_json())

    def _not_found(self, call: Call) -> Answer:
        return _error(404, NOT_FOUND)

    # answers to faults --------------------------------------------------------------------

    def _throttled(self, retry_after: int | None) -> Answer:
        answer = _error(self.rate_limit_status, THROTTLED)
        answer.headers.update(retry_after_header(retry_after))
        return answer

    def fault_answer(self, status: int, retry_after: int | None) -> Answer:
        if status in (420, 429):
            answer = _error(status, THROTTLED)
        else:
            answer = _error(status, web.Response(status=status).reason or "Error")
        answer.headers.update(retry_after_header(retry_after))
        return answer

    def too_large_answer(self) -> Answer:
        return _error(413, "Request Entity Too Large")


def _error(status: int, message: str) -> Answer:
    return Answer(status, {"message": message})


def _paging(call: Call, size_name: str, most: int) -> tuple[int, int] | Answer:
    """(page size, page number) from the query, or a 400 for a value that is not a number."""
    try:
        size = int(call.query.get(size_name, most))
        number = int(call.query.get("page", 1))
    except ValueError:
        return _error(400, f"{size_name} and page must be whole numbers")
    return max(1, min(size, most)), max(1, number)
