"""Counts listener runs still working after their acknowledgment.

Bolt answers Slack as soon as `ack()` is called and lets the listener go on; shutdown (and the
tests) need to know when that remaining work is finished.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class InFlight:
    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def count(self) -> int:
        return self._count

    def track(self, listener: F) -> F:
        """Wrap a listener so the whole run, before and after ack, is counted."""

        @functools.wraps(listener)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._count += 1
            self._idle.clear()
            try:
                return await listener(*args, **kwargs)
            finally:
                self._count -= 1
                if self._count == 0:
                    self._idle.set()

        return wrapper  # type: ignore[return-value]

    async def wait_idle(self, timeout: float | None = None) -> bool:
        """True when nothing is running (within `timeout` seconds)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
