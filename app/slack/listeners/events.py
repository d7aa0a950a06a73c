"""Events API deliveries, each handled once, and answered before the database is touched.

Slack retries an event that got no 2xx within 3 seconds (immediately, after ~1 min, after
~5 min) and Bolt does not de-duplicate. Bolt acknowledges an event before its listener runs;
the gate (`gate.on_event`) then records the delivery's `event_id` with `first_delivery` and
drops a delivery whose id is already recorded. The answer to Slack never waits on the database
(a slow or locked database would make Slack retry), and a retry still runs once.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from app.store.models import ProcessedEvent

if TYPE_CHECKING:
    from app.slack.context import Bot

log = logging.getLogger(__name__)

# Slack's last retry comes about 5 minutes after the first delivery.
KEEP = timedelta(hours=1)


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
