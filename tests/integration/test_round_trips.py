"""Database round trips per action: SQL statements and commits, counted, with ceilings.

Every statement is a round trip to the database, and on the way to what people see in Slack
(see docs/performance.md, "Per action"). The counts come from SQLAlchemy's engine events on the
bot's own engine, for one command at a time on an otherwise idle bot, so they are exact and the
same on every run. Each action is counted in two phases, split at the first Web API call that
changes something in Slack (a read such as users.info does not split it):

- change: from the signed request to that call: the acknowledgment, storing the change, and
  whatever the bot does before anything shows;
- delivery: from that call until the bot is idle again.

The ceilings, on the change phase and on the whole action, are the counts measured when this
test was written: work may go down (lower the ceiling with it), never back up unnoticed. Work
moved from before the first write to after it lowers the first and leaves the total as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from app.fake_slack import Call
from tests.support.bot import Bot
from tests.support.constants import ALICE, DAVE
from tests.support.helpers import channel

# Methods that only read; the first call of any other method starts the delivery phase.
READS = frozenset(
    {
        "auth.test",
        "users.info",
        "users.list",
        "users.lookupByEmail",
        "usergroups.list",
        "usergroups.users.list",
        "conversations.list",
        "conversations.info",
        "conversations.history",
        "conversations.replies",
        "conversations.members",
        "chat.getPermalink",
        "pins.list",
    }
)

# (statements, commits) before the first Slack write and in all, as measured when the test
# was written, per database: Postgres sends several rows of one table in one INSERT where
# SQLite sends one each.
CEILINGS: dict[str, dict[str, dict[str, tuple[int, int]]]] = {
    "sqlite": {
        # One more INSERT than before on SQLite: the row that nudges the commander when the
        # first promised update is late.
        "declare": {"change": (9, 4), "total": (46, 27)},
        "update": {"change": (14, 4), "total": (29, 14)},
        "ack": {"change": (19, 8), "total": (28, 14)},
        "role": {"change": (16, 5), "total": (25, 11)},
    },
    "postgresql": {
        "declare": {"change": (10, 4), "total": (42, 27)},
        "update": {"change": (13, 4), "total": (28, 14)},
        "ack": {"change": (18, 8), "total": (27, 14)},
        "role": {"change": (15, 5), "total": (24, 11)},
    },
}
PHASES = ("change", "delivery", "total")


@dataclass
class Phase:
    statements: int = 0
    commits: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, statement: str) -> None:
        self.statements += 1
        verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "?"
        self.kinds[verb] = self.kinds.get(verb, 0) + 1

    def describe(self) -> str:
        verbs = ", ".join(f"{verb} {n}" for verb, n in sorted(self.kinds.items()))
        return f"{self.statements} statements ({verbs or 'none'}), {self.commits} commits"


@dataclass
class Count:
    """Statements and commits of one action, before and after its first Slack write."""

    change: Phase = field(default_factory=Phase)
    delivery: Phase = field(default_factory=Phase)
    writing: bool = False

    @property
    def current(self) -> Phase:
        return self.delivery if self.writing else self.change

    def phase(self, name: str) -> Phase:
        if name == "total":
            both = Phase(
                self.change.statements + self.delivery.statements,
                self.change.commits + self.delivery.commits,
            )
            for kinds in (self.change.kinds, self.delivery.kinds):
                for verb, n in kinds.items():
                    both.kinds[verb] = both.kinds.get(verb, 0) + n
            return both
        return self.change if name == "change" else self.delivery


@contextmanager
def counting(bot: Bot) -> Iterator[Count]:
    """Count the bot's statements and commits, and notice its first Slack write."""
    count = Count()
    engine: Engine = bot.warroom.db.engine.sync_engine

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        count.current.add(text)

    def commit(_conn: Any) -> None:
        count.current.commits += 1

    def slack_call(call: Call) -> bool:
        if call.method not in READS:
            count.writing = True
        return False  # observe only: every call goes through

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "commit", commit)
    bot.fake.before_call = slack_call
    try:
        yield count
    finally:
        bot.fake.before_call = None
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "commit", commit)


async def counted(bot: Bot, text: str, room: str, user: str = ALICE) -> Count:
    """Send one command, let the bot finish everything it does for it, and return the counts."""
    with counting(bot) as count:
        status, _ = await bot.slack.command(text, user=user, channel=room)
        assert status == 200
        await bot.settle()
    assert count.writing, f"/incident {text} changed nothing in Slack"
    return count


async def test_database_round_trips_per_action(bot: Bot) -> None:
    # A first incident warms the caches (the announcement channel's ID, people's names): the
    # counts are those of a bot that has been running for a while.
    await bot.slack.command("declare sev3 Warm-up incident")
    await bot.settle()
    declare = "declare sev2 Checkout API returning 500s"
    measured = {"declare": await counted(bot, declare, "CGENERAL")}
    room = channel(bot.fake, "incident-2").id
    measured["update"] = await counted(bot, "update Rolled back the 14:05 deploy", room)
    measured["ack"] = await counted(bot, "ack", room)
    measured["role"] = await counted(bot, f"role tech-lead <@{DAVE}>", room)

    ceilings = CEILINGS[bot.warroom.db.engine.dialect.name]

    def line(action: str, name: str) -> str:
        said = f"  {action:8} {name:8} {measured[action].phase(name).describe()}"
        if name in ceilings[action]:
            most, commits = ceilings[action][name]
            said += f"  (ceiling: {most} statements, {commits} commits)"
        return said

    report = "\n".join(line(action, name) for action in measured for name in PHASES)
    over = [
        f"{action} {name}"
        for action, count in measured.items()
        for name, (most, commits) in ceilings[action].items()
        if count.phase(name).statements > most or count.phase(name).commits > commits
    ]
    print(report)  # shown with -s: the numbers to lower a ceiling to
    assert not over, f"more database round trips than before in {', '.join(over)}:\n{report}"
