"""Answering the person who asked, wherever they asked from, and turning errors into words."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.messages import blocks
from app.messages.mrkdwn import Mrkdwn, escape
from app.services.errors import ServiceError
from app.services.ports import SlackError, SlackPort
from app.store.db import track_writes

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replier:
    """Sends a private answer: through response_url when there is one, else by DM."""

    slack: SlackPort
    user: str
    response_url: str | None = None

    async def say(self, text: str) -> None:
        await self.send(blocks.simple(text))

    async def send(self, message: blocks.Message) -> None:
        """A private answer with blocks of its own (buttons)."""
        try:
            if self.response_url:
                await self.slack.respond(self.response_url, message)
            else:
                await self.slack.dm(self.user, message)
        except SlackError as exc:
            log.warning("could not answer %s: %s", self.user, exc.code)

    async def error(self, exc: ServiceError | ValueError) -> None:
        await self.say(":no_entry_sign: " + error_text(exc))

    async def run(self, work: Callable[[], Awaitable[None]]) -> None:
        """Run post-ack work; tell the person what went wrong instead of failing silently, and
        whether their request was saved (so they know whether to send it again)."""
        written = track_writes()
        try:
            await work()
        except (ServiceError, ValueError) as exc:
            await self.error(exc)
        except SlackError as exc:
            log.warning("slack call failed: %s", exc)
            refused = f":warning: Slack refused `{escape(exc.method)}` ({escape(exc.code)}). "
            await self.say(refused + _outcome(written.committed))
        except Exception:
            log.exception("unexpected error")
            await self.say(
                ":warning: Something failed on our side (logged). " + _outcome(written.committed)
            )


def _outcome(saved: bool) -> str:
    if saved:
        return (
            "Your request was saved; Warroom retries what is left on its own, so check the "
            "channel before sending it again."
        )
    return "Nothing was saved: send it again in a moment."


def error_text(exc: Exception) -> str:
    """Error messages may echo user input: escape unless the service marked them safe."""
    message = exc.args[0] if exc.args else str(exc)
    return message if isinstance(message, Mrkdwn) else escape(str(message))
