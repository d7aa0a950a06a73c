"""The command table is the one place a subcommand is declared: parsing, dispatch, help and the
README all follow from it."""

from __future__ import annotations

import re

import pytest

from app.slack import grammar
from app.slack.command_table import Call, CommandTable, Section, Subcommand
from app.slack.listeners.commands import TABLE, parse


async def _noop(call: Call) -> None:
    return None


def test_a_new_subcommand_is_parsed_listed_and_documented_from_its_declaration() -> None:
    table = CommandTable()
    table.command(
        "page",
        usage="page [42] @person",
        summary="Page someone into the incident.",
        section=Section.INCIDENT,
        aliases=("summon",),
        elsewhere="/incident page 42 @person",
        action="roles",
    )(_noop)
    assert grammar.parse("summon 7", table).name == "page"
    assert grammar.parse("page #7", table).incident == 7
    assert grammar.parse("frobnicate", table) == grammar.Command("help", text="frobnicate")
    [(section, entries)] = [(s, e) for s, e in table.sections() if e]
    assert section is Section.INCIDENT and entries[0].handler is _noop
    assert (
        "| `/incident page [42] @person` | Page someone into the incident. Also: `summon`. |"
        in (table.markdown())
    )


def test_a_subcommand_cannot_be_declared_twice() -> None:
    table = CommandTable()
    declare = table.command("x", usage="x", summary="x", section=Section.ANYWHERE)
    declare(_noop)
    with pytest.raises(ValueError, match="declared twice"):
        declare(_noop)


def typed_example(entry: Subcommand) -> str:
    """What a person would type for the entry's example: optional parts left out, the first of
    alternatives (`commander|tech-lead|comms`), a word for each placeholder, a Slack mention for
    each `@person`."""
    text = entry.example.removeprefix("/incident").strip()
    while (shorter := re.sub(r"\[[^\[\]]*\]", "", text)) != text:
        text = shorter
    text = re.sub(r"([\w-]+)(?:\|[\w-]+)+", r"\1", text)
    text = re.sub(r"<[^<>@]+>", "x", text)
    text = re.sub(r"@\w+", "<@U12345678>", text)
    return " ".join(text.split())


@pytest.mark.parametrize("entry", list(TABLE), ids=lambda e: e.name)
def test_every_entry_is_reachable_from_its_example(entry: Subcommand) -> None:
    typed = typed_example(entry)
    assert typed.split()[0] == entry.word
    assert parse(typed).name == entry.name
    for alias in entry.aliases:
        assert parse(typed.replace(entry.word, alias, 1)).name == entry.name


def test_parse_errors_show_the_entrys_example() -> None:
    table = CommandTable()
    table.command(
        "severity",
        usage="severity <sev>",
        summary="Change severity.",
        section=Section.INCIDENT,
        example="/incident severity sev3",
        parser=grammar.severity,
    )(_noop)
    with pytest.raises(grammar.CommandError, match="`/incident severity sev3`"):
        grammar.parse("severity", table)


def test_restricted_entries_name_a_known_permission_action() -> None:
    from app.domain.permissions import ACTIONS

    for entry in TABLE:
        assert entry.action is None or entry.action in ACTIONS, entry.name
        assert entry.needs_incident or entry.section in {Section.ANYWHERE, Section.DECLARE}
