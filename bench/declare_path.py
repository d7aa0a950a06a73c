"""Row 2: the declare's critical path, counted in Slack round trips.

On a real workspace every Web API call costs a round trip to Slack, typically around 100 ms.
What the declarer waits for is the announcement in #incidents: the fake adds 100 ms to every
call, so the time from the signed command to that message, divided by 0.1 s, says how many
round trips stand in line before it. Calls that do not depend on each other should overlap,
leaving the channel creation and the announcement itself (plus a channel lookup on a cold
cache) on the path.

The first declare after start-up is reported apart from the later ones, because the bot caches
the announcement channel's ID and people's names after first use.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.fake_slack import FakeSlack
from app.fake_slack.state import Call
from bench.harness import (
    ANNOUNCE,
    Row,
    SignedClient,
    bot_messages,
    client_session,
    command_body,
    ms,
    new_fake,
    run_benchmark,
    running_bot,
    sqlite_url,
    wait_until,
)

ROUND_TRIP = 0.1
TARGET_TRIPS = 3.0
WARM_DECLARES = 5


@dataclass
class Declare:
    """One measured declare: time to the announcement, the whole run, and its Slack calls."""

    to_announcement: float
    whole: float
    calls: list[Call]
    started_at: float
    announce_channel: str

    @property
    def trips(self) -> float:
        return self.to_announcement / ROUND_TRIP

    def path(self) -> list[list[str]]:
        """The calls that stood in line before the announcement, as waves: calls that reached
        Slack within half a round trip of each other were in flight together."""
        waves: list[tuple[float, list[str]]] = []
        for call in sorted(self.calls, key=lambda c: c.at):
            if not waves or call.at - waves[-1][0] > ROUND_TRIP / 2:
                waves.append((call.at, []))
            waves[-1][1].append(call.method)
            if call.method == "chat.postMessage" and call.args.get("channel") == (
                self.announce_channel
            ):
                break
        return [methods for _, methods in waves]

    def own_time(self) -> float:
        """What the bot itself adds on the path: everything but the round trips in line."""
        return self.to_announcement - len(self.path()) * ROUND_TRIP

    def first_call(self) -> float:
        """Seconds from the command to the first Slack call: the ack and the database work
        that comes before the channel can be created."""
        return min(c.at for c in self.calls) - self.started_at

    def explain(self) -> str:
        waves = self.path()
        steps = " -> ".join(_wave(w, last=i == len(waves) - 1) for i, w in enumerate(waves))
        return (
            f"{steps}; {ms(self.own_time())} of the bot's own time, {ms(self.first_call())} "
            "of it before the first call"
        )


def _wave(methods: list[str], last: bool) -> str:
    """The call that holds up the announcement in each wave (the others ran alongside)."""
    if last:
        return f"chat.postMessage #{ANNOUNCE}"
    for method in ("conversations.create", "conversations.list", "conversations.join"):
        if method in methods:
            return method
    return methods[-1]


async def declare_once(
    client: SignedClient, fake: FakeSlack, n: int, settle: Callable[[float], Awaitable[bool]]
) -> Declare:
    """Declare, wait for the announcement, then for the rest of the work; the next declare
    starts on a quiet bot so each one's path is its own."""
    seen = len(bot_messages(fake, ANNOUNCE))
    before = len(fake.calls)
    body = command_body(f"declare sev2 Checkout API returning 500s ({n})", fake.new_response_url())
    wall, started = time.time(), time.perf_counter()
    status, _, _ = await client.post(body)
    if status != 200:
        raise RuntimeError(f"declare answered HTTP {status}")
    if not await wait_until(lambda: len(bot_messages(fake, ANNOUNCE)) > seen, timeout=30):
        raise RuntimeError("the announcement never came")
    to_announcement = time.perf_counter() - started
    if not await settle(60):
        raise RuntimeError("the declare did not finish")
    whole = time.perf_counter() - started
    channel = fake.channel_by_name(ANNOUNCE)
    assert channel is not None
    return Declare(to_announcement, whole, fake.calls[before:], wall, channel.id)


async def measure() -> list[Row]:
    fake = new_fake()
    await fake.start()
    try:
        async with sqlite_url("declare") as url, running_bot(fake, url) as bot:
            fake.delay("*", ROUND_TRIP)  # after start-up: auth.test is not part of a declare
            async with client_session() as session:
                client = SignedClient(session, bot.url)
                declares = [
                    await declare_once(client, fake, n, bot.settle)
                    for n in range(1 + WARM_DECLARES)
                ]
    finally:
        await fake.stop()
    return rows(declares)


def rows(declares: list[Declare]) -> list[Row]:
    first, later = declares[0], declares[1:]
    typical = sorted(later, key=lambda d: d.to_announcement)[len(later) // 2]
    out: list[Row] = []
    for label, run in (("first after start-up", first), (f"median of next {len(later)}", typical)):
        ok = run.trips <= TARGET_TRIPS
        out.append(
            Row(
                f"Declare -> announcement, 100 ms/call ({label})",
                f"{ms(run.to_announcement)} = {run.trips:.2f} round trips: {run.explain()}",
                f"<= {TARGET_TRIPS:.0f} round trips",
                ok,
                "" if ok else why_slow(run),
            )
        )
    first_calls = Counter(c.method for c in first.calls)
    later_calls = Counter(c.method for c in typical.calls)
    out.append(
        Row(
            "Declare: Slack calls of the whole declare",
            f"{sum(first_calls.values())} first, {sum(later_calls.values())} later "
            f"({_top(later_calls)}); all done after {ms(first.whole)} first, "
            f"{ms(statistics.median(d.whole for d in later))} later",
        )
    )
    return out


def why_slow(run: Declare) -> str:
    waves = run.path()
    reason = f"{len(waves)} Slack calls in sequence before the announcement"
    if any("conversations.list" in w for w in waves):
        reason += (
            f" (the #{ANNOUNCE} channel ID is looked up with conversations.list only after the "
            "incident channel exists, on the first declare; later declares use the cached ID)"
        )
    return (
        f"{reason}, and {ms(run.own_time())} of the bot's own time on the path, "
        f"{ms(run.first_call())} of it before the first Slack call (the acknowledgment, then about "
        "a dozen database sessions one after the other: storing the incident, one transaction "
        "per planned escalation step, the repair lease)"
    )


def _top(calls: Counter[str]) -> str:
    return ", ".join(f"{method} {n}" for method, n in calls.most_common())


if __name__ == "__main__":
    run_benchmark(measure)
