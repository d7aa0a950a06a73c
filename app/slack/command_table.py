"""The `/incident` command table: every subcommand declared once, with its handler.

An entry says what a person types (word, aliases, usage), what `help` and the README say about
it, how it finds its incident, which permission action it is subject to, and what runs. Parsing,
dispatch, `help` and the README's command table all read this table, so adding a subcommand is
one decorated handler (plus a parser in `grammar` when its arguments are unusual; its error
messages show the entry's example).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

from app.slack.grammar import Command, Parser, only_number

if TYPE_CHECKING:
    from app.slack.context import Bot
    from app.slack.reply import Replier


class Section(Enum):
    """Where an entry sits in `help`, with the hint printed after the section's title."""

    DECLARE = ("Declare", "")
    INCIDENT = (
        "In an incident channel",
        "(elsewhere add the number: `/incident status 42`, or `#42` before free text)",
    )
    AFTER = (
        "After the fire",
        "(pin a message or react with :pushpin: to put it on the timeline)",
    )
    ANYWHERE = ("Anywhere", "")

    @property
    def title(self) -> str:
        return self.value[0]

    @property
    def hint(self) -> str:
        return self.value[1]


@dataclass(frozen=True)
class Call:
    """One run of a subcommand, after the acknowledgment."""

    bot: Bot
    command: Command
    body: dict[str, Any]
    user: str
    reply: Replier
    # The incident the command is about (from `#42` / `42` or the channel); None for entries
    # that need none.
    incident_id: int | None = None

    @property
    def incident(self) -> int:
        assert self.incident_id is not None, "entry declared without an incident"
        return self.incident_id

    @property
    def request_key(self) -> str | None:
        return request_key(self.body)


def request_key(body: dict[str, Any]) -> str | None:
    """The request's identity, the idempotency key of what it stores (`command:<trigger_id>`).

    Slack gives every slash command a trigger ID of its own; the same request sent again (a
    retry, a double submission, a replayed signed body) carries the same one, and finds the
    first one's result instead of storing it twice.
    """
    trigger = body.get("trigger_id")
    return f"command:{trigger}" if trigger else None


Handler = Callable[[Call], Awaitable[None]]


@dataclass(frozen=True)
class Subcommand:
    name: str  # what dispatch looks up (`retro_done`); also the first word unless `word` says
    usage: str  # what follows `/incident`, for help and the README
    summary: str  # one line for help and the README
    section: Section
    handler: Handler
    word: str  # the first word typed
    # What parse errors show as an example (`/incident role commander|tech-lead|comms @person`);
    # the usage line unless the entry gives one.
    example: str
    aliases: tuple[str, ...] = ()
    # How the incident is named: None = the command needs no incident; otherwise an example of
    # naming it from outside its channel.
    elsewhere: str | None = None
    # The permission action (app.domain.permissions) the command is subject to, if any.
    action: str | None = None
    # Parses the words after the first; entries sharing a word (retro / retro done) let the
    # first one registered parse, and it picks the entry by the Command's name.
    parser: Parser | None = None
    # May answer with a form: its work goes before other queued work (Slack opens a form only
    # within 3 seconds of the command; see app.slack.inflight).
    opens_form: bool = False

    @property
    def needs_incident(self) -> bool:
        return self.elsewhere is not None


class CommandTable:
    def __init__(self) -> None:
        self._entries: dict[str, Subcommand] = {}
        self._words: dict[str, Parser] = {}

    def command(
        self,
        name: str,
        *,
        usage: str,
        summary: str,
        section: Section,
        word: str | None = None,
        example: str | None = None,
        aliases: tuple[str, ...] = (),
        elsewhere: str | None = None,
        action: str | None = None,
        parser: Parser | None = None,
        opens_form: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a subcommand; the decorated coroutine is its handler."""

        def register(handler: Handler) -> Handler:
            if name in self._entries:
                raise ValueError(f"subcommand {name!r} is declared twice")
            entry = Subcommand(
                name=name,
                usage=usage,
                summary=summary,
                section=section,
                handler=handler,
                word=word or name,
                example=example or f"/incident {usage}",
                aliases=aliases,
                elsewhere=elsewhere,
                action=action,
                parser=parser,
                opens_form=opens_form,
            )
            self._entries[name] = entry
            for typed in (entry.word, *aliases):
                if typed in self._words and parser is not None:
                    raise ValueError(f"the word {typed!r} has two parsers")
                if parser is not None:
                    self._words[typed] = parser
                elif typed not in self._words:
                    self._words[typed] = only_number(name)
            return handler

        return register

    def __getitem__(self, name: str) -> Subcommand:
        return self._entries[name]

    def __iter__(self) -> Iterator[Subcommand]:
        return iter(self._entries.values())

    def parser_for(self, word: str) -> Parser | None:
        return self._words.get(word.lower())

    def example(self, name: str) -> str:
        return self._entries[name].example

    def sections(self) -> list[tuple[Section, list[Subcommand]]]:
        """Entries grouped for `help`, in section order, each in declaration order."""
        return [(s, [e for e in self if e.section is s]) for s in Section]

    def markdown(self) -> str:
        """The README's command table (between its `commands:start/end` markers)."""
        lines = ["| Command | What it does |", "| --- | --- |"]
        for entry in self:
            also = ", ".join(f"`{a}`" for a in entry.aliases)
            summary = entry.summary + (f" Also: {also}." if also else "")
            lines.append(f"| `/incident {entry.usage}` | {summary} |")
        return "\n".join(lines)
