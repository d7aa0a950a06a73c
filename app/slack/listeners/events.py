"""Events API deliveries, each handled once.

Slack retries an event that got no 2xx within 3 seconds (immediately, after ~1 min, after
~5 min) and Bolt does not de-duplicate; the `event_id` of every delivery is recorded first, and a
delivery whose id is already recorded is acknowledged and dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from slack_bolt.response import BoltResponse
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.store.models import ProcessedEvent

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)

# Slack's last retry comes about 5 minutes after the first delivery.
KEEP = timedelta(hours=1)


def register(bot: Bot) -> None:
    @bot.app.middleware
    async def once_per_event(
        body: dict[str, Any], next: Callable[[], Awaitable[None]]
    ) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not await first_delivery(bot, str(event_id)):
            log.info("event %s delivered again; ignored", event_id)
            return BoltResponse(status=200, body="")
        await next()
        return None


async def first_delivery(bot: Bot, event_id: str) -> bool:
    now = bot.services.clock.now()
    try:
        async with bot.db.session() as session:
            session.add(ProcessedEvent(event_id=event_id, received_at=now))
    except IntegrityError:
        return False
    return True


async def forget_old_events(bot: Bot) -> None:
    """Keep the table small: ids older than any retry can be dropped."""
    cutoff = bot.services.clock.now() - KEEP
    async with bot.db.session() as session:
        await session.exec(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < cutoff))
