"""Nothing reverted, nothing lost between a change and its follow-up work."""

from __future__ import annotations

import asyncio

from app.domain.lifecycle import Status
from tests.conftest import Bot
from tests.helpers import channel


async def test_an_update_racing_a_mitigation_never_reverts_it(bot: Bot) -> None:
    """`mitigate` and `update <text>` sent together: whatever the order the incident lock
    serves them in, the update keeps the status it finds, so the mitigation stands."""
    count = 8
    for n in range(count):
        await bot.slack.command(f"declare sev3 Queue backlog {n}")
    await bot.settle()
    rooms = [channel(bot.fake, f"incident-{n + 1}").id for n in range(count)]
    await asyncio.gather(
        *(
            call
            for room in rooms
            for call in (
                bot.slack.command("mitigate", channel=room),
                bot.slack.command("update still watching the queue", channel=room),
            )
        )
    )
    await bot.settle()
    for n in range(count):
        snap = await bot.warroom.incidents.snapshot(n + 1)
        assert snap.status is Status.MITIGATED, f"incident {n + 1} reverted to {snap.status}"
