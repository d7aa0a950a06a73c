"""The HTTP client of the status page providers: a bounded timeout, JSON in and out, and each
failure to get an answer classified as `StatusPageError` (never with a key in the message).

A request that never reached the provider (no connection) is certainly not carried out. One
whose connection was lost after it was sent, or whose answer did not come in time, may have
been: that failure is `uncertain`, so a create is looked for before it is sent again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.services.ports import StatusPageError, StatusPageErrorKind

# A provider slower than this is treated as down for this attempt (the call is retried).
TIMEOUT_SECONDS = 10.0
# What of a provider's answer is kept in an error's detail.
ANSWER_EXCERPT = 300


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the JSON answer, or the text when it is not JSON
    text: str
    retry_after: str = ""


class StatusHttp:
    """A client session opened on first use (inside the running event loop), closed with the
    bot."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Answer:
        """Send one request (`body` as JSON when given) and return the answer, whatever its
        status; raises TRANSIENT when no answer came."""
        data = json.dumps(body).encode() if body is not None else None
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        try:
            async with self._client().request(
                method, url, data=data, headers=headers, params=params
            ) as response:
                text = await response.text()
                retry_after = response.headers.get("Retry-After", "")
        except aiohttp.ClientConnectorError as exc:
            raise StatusPageError(
                StatusPageErrorKind.TRANSIENT, f"could not connect ({type(exc).__name__})"
            ) from None
        except TimeoutError:
            raise StatusPageError(
                StatusPageErrorKind.TRANSIENT, "no answer in time", uncertain=method != "GET"
            ) from None
        except aiohttp.ClientError as exc:
            raise StatusPageError(
                StatusPageErrorKind.TRANSIENT,
                f"connection lost before the answer ({type(exc).__name__})",
                uncertain=method != "GET",
            ) from None
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Answer(response.status, parsed, text, retry_after)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ANSWER_EXCERPT else text[: ANSWER_EXCERPT - 1] + "…"
