"""The fake Opsgenie (`FakeOpsgenie`): the Alert API's create, acknowledge and close, and the
request status lookup, over real HTTP with Opsgenie's authentication, answers and limits.

Every answer carries Opsgenie's envelope (`took`, `requestId`, the `X-Request-ID` header);
errors use its JSON error shape. Accepted requests are processed at once by default, or held
until `process_pending()` to show a bot that a 202 is not yet a created alert (the status
lookup answers 404 with `X-Opsgenie-Errortype: RequestNotProcessed` meanwhile, which Opsgenie's
own SDK waits out).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from .formats import IdMaker
from .opsgenie_alerts import (
    IDENTIFIER_TYPES,
    Alert,
    AlertRequest,
    AlertStore,
    JsonDict,
    validate_action,
    validate_create,
)
from .ratelimit import SlidingWindow
from .server import Answer, Call, FakeHttpServer, retry_after_header

CREATE, STATUS, ACKNOWLEDGE, CLOSE, UNKNOWN = "create", "status", "acknowledge", "close", "unknown"
TOOK = 0.001
THROTTLED_MESSAGE = (
    "You are making too many requests! To avoid errors, we recommend you limit requests."
)


@dataclass(frozen=True)
class ApiKey:
    """An API key. An API integration's key may create and act on alerts; another key (a
    user's or an account's) is refused those with 403, code 40301."""

    key: str
    integration_id: str
    name: str
    integration: bool = True


class FakeOpsgenie(FakeHttpServer):
    """A stateful fake of Opsgenie's Alert API (v2) on a local port."""

    name = "fake Opsgenie"

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        clock: Callable[[], float] | None = None,
        seed: int | None = None,
        process_immediately: bool = True,
    ) -> None:
        super().__init__(clock)
        self.ids = IdMaker(seed)
        self.store = AlertStore(self.ids, self.clock)
        self.keys: dict[str, ApiKey] = {}
        self.limiter = SlidingWindow(requests_per_minute, self.clock)
        self.process_immediately = process_immediately
        self._pending: list[AlertRequest] = []

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/alerts", self.route(CREATE, self._create))
        app.router.add_get("/v2/alerts/requests/{request_id}", self.route(STATUS, self._status))
        app.router.add_post(
            "/v2/alerts/{identifier}/acknowledge", self.route(ACKNOWLEDGE, self._action)
        )
        app.router.add_post("/v2/alerts/{identifier}/close", self.route(CLOSE, self._action))
        app.router.add_route("*", "/{tail:.*}", self.route(UNKNOWN, self._not_found))

    # seeding ----------------------------------------------------------------------------

    def add_key(self, key: str, *, integration: bool = True, name: str = "Warroom") -> ApiKey:
        """Accept `key` in `Authorization: GenieKey <key>`; `integration=False` makes it a key
        that is not an API integration's (alert requests get 403)."""
        api_key = ApiKey(
            key=key, integration_id=self.ids.uuid(), name=name, integration=integration
        )
        self.keys[key] = api_key
        return api_key

    # asynchronous processing -------------------------------------------------------------

    def hold_processing(self) -> None:
        """Accept requests (202) but leave them unprocessed until `process_pending()`."""
        self.process_immediately = False

    def process_pending(self) -> int:
        """Process the held requests in arrival order (and stop holding); how many."""
        pending, self._pending = self._pending, []
        for request in pending:
            self.store.process(request)
        self.process_immediately = True
        return len(pending)

    # people in the Opsgenie app -------------------------------------------------------------

    def acknowledge(self, alias: str, by: str = "Jane Doe") -> Alert:
        """`by` acknowledges the open alert with `alias` (KeyError when there is none)."""
        alert = self._open_alert(alias)
        self.store.acknowledge(alert, by, self.clock())
        return alert

    def close(self, alias: str, by: str = "Jane Doe") -> Alert:
        """`by` closes the open alert with `alias` (KeyError when there is none)."""
        alert = self._open_alert(alias)
        self.store.close(alert, by, self.clock())
        return alert

    def _open_alert(self, alias: str) -> Alert:
        alert = self.store.find(alias, "alias")
        if alert is None or not alert.is_open:
            raise KeyError(f"no open alert with alias {alias!r}")
        return alert

    # inspection ---------------------------------------------------------------------------

    def alerts(self, alias: str | None = None) -> list[Alert]:
        """Alerts in the order they were created, those with `alias` only when given."""
        return [a for a in self.store.alerts if alias is None or a.alias == alias]

    @property
    def requests(self) -> dict[str, AlertRequest]:
        """Every accepted request by its requestId, processed or not."""
        return self.store.requests

    # the Alert API ------------------------------------------------------------------------

    def _authenticate(self, call: Call) -> ApiKey | Answer:
        """The caller's key, or the answer refusing it (401 / 403 / 429)."""
        scheme, _, key = call.headers.get("Authorization", "").partition(" ")
        api_key = self.keys.get(key.strip()) if scheme.lower() == "geniekey" else None
        if api_key is None:
            return self._error(401, "Could not authenticate")
        if call.route != STATUS and not api_key.integration:
            message = "To perform this action, use an API key from an API integration."
            return self._error(403, message, code=40301)
        if not self.limiter.admit(api_key.key):
            return self._throttled(None)
        return api_key

    def _json_body(self, call: Call, required: bool) -> tuple[JsonDict, Answer | None]:
        """The request's JSON object ({} for an optional, absent body) or the refusal."""
        if not call.body.strip() and not required:
            return {}, None
        content_type = call.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type != "application/json":
            return {}, self._error(415, "Unsupported media type: send application/json")
        body = call.json
        if not isinstance(body, dict):
            return {}, self._error(400, "Invalid JSON body")
        return body, None

    def _create(self, call: Call) -> Answer:
        api_key = self._authenticate(call)
        if isinstance(api_key, Answer):
            return api_key
        body, refusal = self._json_body(call, required=True)
        if refusal is not None:
            return refusal
        errors = validate_create(body)
        if errors:
            return self._error(422, "Request has validation errors", errors=errors)
        return self._accept(
            call,
            AlertRequest(
                request_id=self.ids.uuid(),
                action="Create",
                integration_id=api_key.integration_id,
                body=body,
                received_at=self.clock(),
                sender_ip=call.remote,
            ),
        )

    def _action(self, call: Call) -> Answer:
        api_key = self._authenticate(call)
        if isinstance(api_key, Answer):
            return api_key
        identifier_type = call.query.get("identifierType", "id")
        if identifier_type not in IDENTIFIER_TYPES:
            message = f"identifierType must be one of {', '.join(IDENTIFIER_TYPES)}"
            return self._error(
                422, "Request has validation errors", errors={"identifierType": message}
            )
        body, refusal = self._json_body(call, required=False)
        if refusal is not None:
            return refusal
        errors = validate_action(body)
        if errors:
            return self._error(422, "Request has validation errors", errors=errors)
        return self._accept(
            call,
            AlertRequest(
                request_id=self.ids.uuid(),
                action="Acknowledge" if call.route == ACKNOWLEDGE else "Close",
                integration_id=api_key.integration_id,
                body=body,
                received_at=self.clock(),
                identifier=call.segment(2),
                identifier_type=identifier_type,
            ),
        )

    def _accept(self, call: Call, request: AlertRequest) -> Answer:
        self.store.requests[request.request_id] = request
        call.applied = True
        if self.process_immediately:
            self.store.process(request)
        else:
            self._pending.append(request)
        return self._envelope(202, {"result": "Request will be processed"}, request.request_id)

    def _status(self, call: Call) -> Answer:
        api_key = self._authenticate(call)
        if isinstance(api_key, Answer):
            return api_key
        request = self.store.requests.get(call.segment(3))
        if request is None or not request.processed:
            # Opsgenie cannot tell a request not yet processed from one it never had.
            answer = self._error(404, "Request has not been processed yet or does not exist")
            answer.headers["X-Opsgenie-Errortype"] = "RequestNotProcessed"
            return answer
        return self._envelope(200, {"data": request.data()}, self.ids.uuid())

    def _not_found(self, call: Call) -> Answer:
        return self._error(404, "Resource or handler not found")

    # answers ------------------------------------------------------------------------------

    def _envelope(self, status: int, body: JsonDict, request_id: str) -> Answer:
        headers = {"X-Request-ID": request_id, "X-Response-Time": str(TOOK)}
        if status < 400:
            headers["X-RateLimit-State"] = "OK"
        return Answer(status, {**body, "took": TOOK, "requestId": request_id}, headers)

    def _error(
        self,
        status: int,
        message: str,
        *,
        errors: dict[str, str] | None = None,
        code: int | None = None,
    ) -> Answer:
        body: JsonDict = {"message": message}
        if code is not None:
            body = {"code": code, **body}
        if errors:
            body["errors"] = errors
        return self._envelope(status, body, self.ids.uuid())

    def _throttled(self, retry_after: int | None) -> Answer:
        answer = self._error(429, THROTTLED_MESSAGE)
        answer.headers.update({"X-RateLimit-State": "THROTTLED", "X-RateLimit-Period-In-Sec": "60"})
        answer.headers.update(retry_after_header(retry_after))
        return answer

    def fault_answer(self, status: int, retry_after: int | None) -> Answer:
        if status == 429:
            return self._throttled(retry_after)
        reason = web.Response(status=status).reason or "Error"
        answer = self._error(status, reason)
        answer.headers.update(retry_after_header(retry_after))
        return answer

    def too_large_answer(self) -> Answer:
        return self._error(413, "Request body is too large")
