"""Socket Mode: the app opens a WebSocket (its URL from `apps.connections.open`, called with the
app-level token) and Slack sends commands, interactions and events over it as envelopes, each
acknowledged by the app with its `envelope_id` (and, for a command or a form, a response
payload).

A driver (a test, the sandbox) sends an envelope with `FakeSlack.send_envelope` and gets the
app's acknowledgment back, as Slack would use it.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from typing import Any

from aiohttp import WSMsgType, web

from .state import JsonDict

ACK_TIMEOUT = 3.0  # Slack's own limit for an acknowledgment


class NotConnected(RuntimeError):
    """No app is connected over Socket Mode."""


class SocketHub:
    """The app's WebSocket connections and the envelopes waiting for their acknowledgment."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self._tickets: set[str] = set()
        self._connections: list[web.WebSocketResponse] = []
        self._waiting: dict[str, asyncio.Future[JsonDict]] = {}
        self._connected = asyncio.Event()

    def new_url(self, base_url: str) -> str:
        """A WebSocket URL for one connection (its ticket works once)."""
        ticket = secrets.token_urlsafe(12)
        self._tickets.add(ticket)
        return "ws" + base_url.removeprefix("http") + f"/link/?ticket={ticket}"

    @property
    def connected(self) -> bool:
        return any(not ws.closed for ws in self._connections)

    async def wait_connected(self, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while not self.connected:
                self._connected.clear()
                await self._connected.wait()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """One connection: `hello`, then the app's acknowledgments until it goes away."""
        ticket = request.query.get("ticket", "")
        if ticket not in self._tickets:
            return web.Response(status=404, text="invalid ticket")
        self._tickets.discard(ticket)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._connections.append(ws)
        self._connected.set()
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": len(self._connections),
                    "debug_info": {"host": "fake-slack", "approximate_connection_time": 3600},
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._acknowledged(message.data)
        finally:
            self._connections.remove(ws)
        return ws

    def _acknowledged(self, raw: str) -> None:
        try:
            data = json.loads(raw)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        waiting = self._waiting.pop(str(data.get("envelope_id")), None)
        if waiting is not None and not waiting.done():
            payload = data.get("payload")
            waiting.set_result(payload if isinstance(payload, dict) else {})

    async def send(self, kind: str, payload: JsonDict, timeout: float = ACK_TIMEOUT) -> JsonDict:
        """Send an envelope (`slash_commands`, `interactive` or `events_api`) and return the
        app's acknowledgment payload ({} when it acknowledged with nothing). Raises
        NotConnected, or TimeoutError when no acknowledgment comes in time."""
        open_ones = [ws for ws in self._connections if not ws.closed]
        if not open_ones:
            raise NotConnected("no app is connected over Socket Mode")
        envelope_id = str(uuid.uuid4())
        waiting: asyncio.Future[JsonDict] = asyncio.get_running_loop().create_future()
        self._waiting[envelope_id] = waiting
        envelope: dict[str, Any] = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": kind != "events_api",
            "retry_attempt": 0,
            "retry_reason": "",
        }
        try:
            await open_ones[-1].send_json(envelope)
            return await asyncio.wait_for(waiting, timeout)
        finally:
            self._waiting.pop(envelope_id, None)

    async def close(self) -> None:
        for ws in list(self._connections):
            await ws.close()
