"""One HTTP client for every pager provider: a bounded timeout, and each failure classified by
what it means for the call (`PagerErrorKind`), never with a key in the message."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from app.services.ports import PagerError, PagerErrorKind

# A provider slower than this is treated as down for this attempt (the call is retried).
TIMEOUT_SECONDS = 10.0
# What of a provider's answer is kept (in the call's outcome, in a Slack message).
ANSWER_EXCERPT = 300


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the JSON answer, or the text when it is not JSON
    text: str


class Http:
    """A client session opened on first use (inside the running event loop) and closed with
    the bot."""

    def __init__(self, timeout: float = TIMEOUT_SECONDS) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST `body`; a lost connection or a timeout is a transient failure (the provider
        may have taken it: every call carries its dedup key, so sending it again is safe)."""
        try:
            async with self._client().post(url, data=body, headers=headers) as response:
                text = await response.text()
        except TimeoutError:
            raise PagerError(PagerErrorKind.TRANSIENT, "no answer in time") from None
        except aiohttp.ClientError as exc:
            raise PagerError(
                PagerErrorKind.TRANSIENT, f"connection failed ({type(exc).__name__})"
            ) from None
        try:
            parsed: Any = json.loads(text) if text else None
        except ValueError:
            parsed = text
        return Answer(response.status, parsed, text)

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def excerpt(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ANSWER_EXCERPT else text[: ANSWER_EXCERPT - 1] + "…"


def by_status(answer: Answer, what: str) -> PagerError:
    """The usual meaning of a failed status: 401/403 the key, 408/429/5xx try again, any other
    4xx a request the provider will never take."""
    detail = f"{what} answered HTTP {answer.status}: {excerpt(answer.text) or 'no details'}"
    if answer.status in (401, 403):
        return PagerError(PagerErrorKind.CREDENTIAL, detail, answer.status)
    if answer.status in (408, 429) or answer.status >= 500:
        return PagerError(PagerErrorKind.TRANSIENT, detail, answer.status)
    return PagerError(PagerErrorKind.INVALID, detail, answer.status)
