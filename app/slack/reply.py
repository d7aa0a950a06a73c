"""Answering the person who asked, wherever they asked from, and turning errors into words."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.messages import blocks
from app.messages.mrkdwn import Mrkdwn, escape
from app.services.errors import ServiceError
from app.services.ports import SlackError, SlackPort

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
        """Run post-ack work; tell the person what went wrong instead of failing silently."""
        try:
            await work()
        except (ServiceError, ValueError) as exc:
            await self.error(exc)
        except SlackError as exc:
            log.warning("slack call failed: %s", exc)
            await self.say(
                f":warning: Slack refused `{escape(exc.method)}` ({escape(exc.code)}). "
                "What was saved stays saved; try again in a moment."
            )
        except Exception:
            log.exception("unexpected error")
            await self.say(":warning: Something went wrong on our side; it has been logged.")


def error_text(exc: Exception) -> str:
    """Error messages may echo user input: escape unless the service marked them safe."""
    message = exc.args[0] if exc.args else str(exc)
    return message if isinstance(message, Mrkdwn) else escape(str(message))
