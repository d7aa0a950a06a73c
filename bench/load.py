"""Load check (not a benchmark row, not a timed test): 50 declares at once, then 200 updates at
once, against the fake with Slack's rate limits on (windows shortened tenfold). Reports whether
everything completed, the slowest acknowledgment, and lost or duplicated work, which must be
zero. Exit status 1 when anything was lost or doubled.

    make load        (or: .venv/bin/python -m bench.load)
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter

from sqlmodel import col, select

from app.fake_slack import FakeSlack
from app.store.models import Incident, OutboxMessage
from bench.harness import (
    ANNOUNCE,
    BOT_USER,
    RunningBot,
    SignedClient,
    client_session,
    command_body,
    ms,
    new_fake,
    percentile,
    quiet_logs,
    running_bot,
    sqlite_url,
)

DECLARES = 50
UPDATES = 200
SCALE = 0.1
DEADLINE = 240.0


async def pending_work(bot: RunningBot) -> int:
    async with bot.warroom.db.session() as session:
        queued = await session.exec(
            select(OutboxMessage.id).where(col(OutboxMessage.state).in_(["pending", "sending"]))
        )
        unbuilt = await session.exec(
            select(Incident.id).where(col(Incident.war_room_ready).is_(False))
        )
        return len(queued.all()) + len(unbuilt.all())


async def drain(bot: RunningBot) -> bool:
    """Let the engine (ticking as in production) finish queued work."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        await bot.settle(60)
        if await pending_work(bot) == 0:
            return True
        await asyncio.sleep(0.5)
    return False


def texts_by_channel(fake: FakeSlack) -> Counter[tuple[str, str]]:
    counted: Counter[tuple[str, str]] = Counter()
    for message in fake.workspace.index.values():
        if message.user == BOT_USER and "load-update-" in message.text:
            token = message.text.split("load-update-", 1)[1].split()[0].strip("*_")
            counted[(message.channel, token)] += 1
    return counted


async def main() -> int:
    quiet_logs()
    fake = new_fake()
    await fake.start()
    fake.enforce_rate_limits(scale=SCALE)
    async with (
        sqlite_url("load") as url,
        running_bot(fake, url, pacing=SCALE) as bot,
        client_session() as http,
    ):
        bot.warroom.engine.start()
        client = SignedClient(http, bot.url)
        started = time.monotonic()
        declares = await asyncio.gather(
            *(
                client.post(
                    command_body(f"declare sev3 Load incident {n}", fake.new_response_url())
                )
                for n in range(1, DECLARES + 1)
            )
        )
        built = await drain(bot)
        declare_seconds = time.monotonic() - started

        async with bot.warroom.db.session() as session:
            rooms = {i.id: i.channel_id for i in (await session.exec(select(Incident))).all()}
        started = time.monotonic()
        updates = await asyncio.gather(
            *(
                client.post(
                    command_body(
                        f"update #{1 + n % DECLARES} load-update-{n} progress",
                        fake.new_response_url(),
                    )
                )
                for n in range(UPDATES)
            )
        )
        drained = await drain(bot)
        update_seconds = time.monotonic() - started
        await bot.warroom.engine.stop()

        channels = Counter(
            c.name.split("-")[1]
            for c in fake.workspace.channels.values()
            if c.name.startswith("incident-")
        )
        announce = fake.channel_by_name(ANNOUNCE)
        assert announce
        headlines = [
            m for m in fake.messages(announce.id) if m.user == BOT_USER and not m.thread_ts
        ]
        seen = texts_by_channel(fake)
        expected_updates = {
            (rooms[1 + n % DECLARES], str(n)) for n in range(UPDATES) if rooms.get(1 + n % DECLARES)
        }
        in_rooms = {key for key in seen if key in expected_updates}
        lost_updates = len(expected_updates - in_rooms)
        doubled = sum(n - 1 for n in seen.values() if n > 1)
        lost_declares = DECLARES - len(channels)
        doubled += sum(n - 1 for n in channels.values() if n > 1)
        doubled += max(0, len(headlines) - DECLARES)
        acks = [seconds for _, seconds, _ in declares + updates]
        refused = sum(1 for c in fake.calls if c.status == 429)

    await fake.stop()
    rows = [
        ("declares acknowledged", f"{sum(1 for s, _, _ in declares if s == 200)}/{DECLARES}"),
        ("updates acknowledged", f"{sum(1 for s, _, _ in updates if s == 200)}/{UPDATES}"),
        ("war rooms complete", f"{len(channels)}/{DECLARES} in {declare_seconds:.1f} s"),
        ("announcements", f"{len(headlines)}/{DECLARES}"),
        ("updates posted in their rooms", f"{len(in_rooms)}/{UPDATES} in {update_seconds:.1f} s"),
        (
            "acknowledgment p50 / p99 / slowest",
            f"{ms(percentile(acks, 50))} / {ms(percentile(acks, 99))} / {ms(max(acks))}",
        ),
        ("Slack calls refused with 429", str(refused)),
        ("lost declares / lost updates", f"{lost_declares} / {lost_updates}"),
        ("duplicated work", str(doubled)),
        ("everything drained", str(built and drained)),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"Load: {DECLARES} declares, then {UPDATES} updates, Slack rate limits on (x{SCALE})")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    ok = lost_declares == 0 and lost_updates == 0 and doubled == 0 and max(acks) < 3.0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
