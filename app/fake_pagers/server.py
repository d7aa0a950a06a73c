"""What both fake providers share: a real HTTP server on 127.0.0.1, the call log, bounded
request bodies, and the faults applied before (or after) a request is handled.

The bot talks to a fake with its own aiohttp client exactly as it would to the provider, so the
fake must be a real server: serialisation, status codes, lost connections and slow answers are
then exercised for real, while tests read the provider's state from the Python object.
"""

from __future__ import annotations

import abc
import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Self
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

from .faults import DEFAULT_SLOW_SECONDS, Fault, FaultPlan

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
# PagerDuty documents 512 KB as the most an event may weigh; the same bound serves Opsgenie.
MAX_BODY_BYTES = 512 * 1024


@dataclass
class Answer:
    """A response to send: status, JSON body (None for an empty body) and headers."""

    status: int
    body: JsonDict | None = None
    headers: dict[str, str] = field(default_factory=dict)
    reason: str | None = None


@dataclass
class Call:
    """One request as the fake saw it, recorded even when it was refused, faulted or dropped.

    `status` is the HTTP status answered (0 when the connection was dropped instead), `fault`
    the injected fault's label ("503", "drop", "drop_after", "slow") if any, and `applied`
    whether the provider took the request in (its effects, if any, are in the fake's state),
    which stays True when the answer was then lost ("drop_after").
    """

    method: str
    path: str
    raw_path: str
    route: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    at: float
    remote: str = ""
    status: int = 0
    response: JsonDict | None = None
    fault: str | None = None
    applied: bool = False

    def segment(self, index: int) -> str:
        """Path segment `index` (0 is the first after the leading `/`), percent-decoded: an
        id or alias may itself hold `/`, `?` or spaces, sent encoded."""
        parts = self.raw_path.split("?", 1)[0].split("/")[1:]
        return unquote(parts[index]) if index < len(parts) else ""

    @property
    def json(self) -> Any:
        """The request body decoded as JSON, or None when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None


Handler = Callable[[Call], Answer]


def json_response(answer: Answer) -> web.Response:
    """Serialise an answer as the providers do: compact UTF-8 JSON."""
    if answer.body is None:
        return web.Response(status=answer.status, reason=answer.reason, headers=answer.headers)
    return web.Response(
        status=answer.status,
        reason=answer.reason,
        body=json.dumps(answer.body, separators=(",", ":")).encode(),
        headers=answer.headers,
        content_type="application/json",
        charset="utf-8",
    )


class FakeHttpServer(abc.ABC):
    """The lifecycle, call log and fault plan of one fake provider; subclasses add routes and
    shape the provider's answers to faults."""

    name = "fake provider"

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.clock: Callable[[], float] = clock or time.time
        self.faults = FaultPlan()
        self._calls: list[Call] = []
        self._runner: web.AppRunner | None = None
        self._url = ""

    # lifecycle ------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on host:port (0 picks a free port) and return the base URL."""
        if self._runner is not None:
            raise RuntimeError(f"{self.name} is already started")
        app = web.Application(client_max_size=MAX_BODY_BYTES + 1)
        self.add_routes(app)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        bound_host, bound_port = runner.addresses[0][:2]
        self._runner = runner
        self._url = f"http://{bound_host}:{bound_port}"
        return self._url

    async def stop(self) -> None:
        """Stop serving; requests still waiting (slow faults) are cut off."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, once started."""
        if not self._url:
            raise RuntimeError(f"{self.name} is not started")
        return self._url

    @abc.abstractmethod
    def add_routes(self, app: web.Application) -> None:
        """Register the provider's endpoints (subclasses)."""

    # faults ---------------------------------------------------------------------------

    def fail_next(
        self,
        n: int = 1,
        status: int = 500,
        retry_after: int | None = None,
        *,
        route: str | None = None,
    ) -> None:
        """The next `n` requests (to `route` only, when given) answer `status` with the
        provider's error body and are not applied; `retry_after` adds a Retry-After header."""
        if status < 400:
            raise ValueError("a failure status is 400 or more")
        self.faults.add(Fault("http", status=status, retry_after=retry_after), n, route)

    def drop_next(
        self, n: int = 1, after_processing: bool = False, *, route: str | None = None
    ) -> None:
        """Close the connection of the next `n` requests without answering. With
        `after_processing` each request is applied first: the provider accepted it, but the
        answer was lost."""
        self.faults.add(Fault("drop", after_processing=after_processing), n, route)

    def slow_next(
        self, n: int = 1, seconds: float = DEFAULT_SLOW_SECONDS, *, route: str | None = None
    ) -> None:
        """The next `n` requests wait `seconds`, then are handled normally (a client with a
        shorter timeout gives up while the request is still going to be applied)."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        self.faults.add(Fault("slow", seconds=seconds), n, route)

    def random_failures(
        self,
        rate: float = 0.2,
        seed: int = 1,
        kinds: Iterable[str] = ("500", "503", "429", "drop"),
        *,
        retry_after: int | None = None,
        slow_seconds: float = DEFAULT_SLOW_SECONDS,
        routes: Iterable[str] | None = None,
    ) -> None:
        """Fail each request (to `routes` only, when given) with probability `rate`, the kind
        drawn from `kinds` ("500", "502", "503", "504", "429", "drop", "drop_after", "slow");
        the same seed replays the same plan. Rate 0 turns random failures off."""
        self.faults.set_random(
            rate, seed, kinds, retry_after=retry_after, slow_seconds=slow_seconds, routes=routes
        )

    def reset_faults(self) -> None:
        """No more scripted or random faults."""
        self.faults.reset()

    # inspection -----------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request, in arrival order, including refused, faulted and dropped ones."""
        return self._calls

    def calls_to(self, route: str) -> list[Call]:
        """The requests to one route."""
        return [call for call in self._calls if call.route == route]

    # request handling -----------------------------------------------------------------

    def route(self, name: str, handler: Handler) -> Callable[[web.Request], Any]:
        """An aiohttp handler for one named route: records the call, applies faults, and
        answers with `handler`'s answer."""

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, name, handler)

        return handle

    async def _serve(
        self, request: web.Request, route: str, handler: Handler
    ) -> web.StreamResponse:
        call = Call(
            method=request.method,
            path=request.path,
            raw_path=request.raw_path,
            route=route,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            body=b"",
            at=self.clock(),
            remote=request.remote or "",
        )
        self._calls.append(call)
        try:
            call.body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._finish(call, self.too_large_answer())
        fault = self.faults.take(route)
        if fault is not None:
            call.fault = fault.label
            if fault.kind == "slow" and fault.seconds > 0:
                await asyncio.sleep(fault.seconds)
            if fault.kind == "drop" and not fault.after_processing:
                return self._drop(request, call)
            if fault.kind == "http":
                return self._finish(call, self.fault_answer(fault.status, fault.retry_after))
        try:
            answer = handler(call)
        except Exception:  # a bug in the fake must surface as an answer, not hang the client
            logger.exception("%s: handler for %s failed", self.name, route)
            answer = Answer(500, {"message": "fake provider bug (see the test log)"})
        response = self._finish(call, answer)
        if fault is not None and fault.kind == "drop":
            return self._drop(request, call)
        return response

    def _finish(self, call: Call, answer: Answer) -> web.Response:
        call.status = answer.status
        call.response = answer.body
        return json_response(answer)

    @staticmethod
    def _drop(request: web.Request, call: Call) -> web.Response:
        """Abort the TCP connection so the client sees a disconnect, not an answer."""
        call.status = 0
        call.response = None
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=204)

    @abc.abstractmethod
    def fault_answer(self, status: int, retry_after: int | None) -> Answer:
        """The provider's answer to an injected failure (subclasses shape the body)."""

    @abc.abstractmethod
    def too_large_answer(self) -> Answer:
        """The provider's answer to a body over MAX_BODY_BYTES (subclasses)."""


def retry_after_header(retry_after: int | None) -> dict[str, str]:
    """A Retry-After header when a delay is given."""
    return {"Retry-After": str(retry_after)} if retry_after is not None else {}
