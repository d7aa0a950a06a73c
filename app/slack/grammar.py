"""The `/incident` command grammar, parsed without touching Slack or the database.

Incident numbers: commands without free text take a bare number (`status 42`, `ack #42`);
commands with free text (`update`) take it only as `#42`, so that "update 500 errors" stays text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from app.domain.roles import Role, parse_role
from app.domain.severity import looks_like_severity, parse_severity

_MENTION = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")
_RAW_ID = re.compile(r"^@?([UW][A-Z0-9]{5,})$")
_REF = re.compile(r"^#?(\d{1,9})$")
_HASH_REF = re.compile(r"^#(\d{1,9})$")
# A type named before the title: `/incident declare sev2 security: Leaked key in logs`.
_TYPE_WORD = re.compile(r"^([a-z][a-z0-9_-]{0,31}):$", re.IGNORECASE)
_FILTER = re.compile(r"^([a-z][a-z0-9_-]{0,31})=(.+)$", re.IGNORECASE)

STATS_WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# Where a parse error's message shows the subcommand's example (its entry's `example` in the
# command table, which `parse` fills in), so the example is written once, beside the entry.
EXAMPLE = "{example}"


class CommandError(ValueError):
    """The command could not be understood; the message says how to write it.

    `example_of` names the subcommand whose example completes the message, at `EXAMPLE`.
    """

    def __init__(self, message: str, example_of: str | None = None) -> None:
        super().__init__(message)
        self.example_of = example_of


@dataclass(frozen=True)
class Command:
    name: str
    incident: int | None = None
    severity: int | None = None
    role: Role | None = None
    user: str | None = None
    text: str = ""
    due: date | None = None
    days: int | None = None
    force: bool = False
    # `declare`: the word before a colon that may name an incident type (`security:`); the
    # command table's reader decides whether it does (`split_type`).
    kind: str = ""
    # `stats`: custom field filters (`team=payments`), by field name.
    filters: tuple[tuple[str, str], ...] = ()


# Parses the words after the subcommand's word; `text` is the whole command text, for parsers
# that keep the author's spacing.
Parser = Callable[[list[str], str], Command]


class Words(Protocol):
    """Where `parse` finds the parser for a first word, and a subcommand's example (the command
    table)."""

    def parser_for(self, word: str) -> Parser | None: ...

    def example(self, name: str) -> str: ...


def parse(text: str, words: Words) -> Command:
    """Parse the text after `/incident`. Unknown subcommands parse as `help`."""
    tokens = text.split()
    if not tokens:
        return Command("declare")
    parser = words.parser_for(tokens[0])
    if parser is None:
        return Command("help", text=tokens[0])
    try:
        return parser(tokens[1:], text)
    except CommandError as exc:
        if exc.example_of is None:
            raise
        message = str(exc).replace(EXAMPLE, words.example(exc.example_of))
        raise CommandError(message) from None


def _needs(message: str, name: str) -> CommandError:
    """A parse error whose message ends with (or shows) the subcommand's example."""
    return CommandError(message, example_of=name)


def only_number(name: str) -> Parser:
    """Commands that take nothing but an optional incident number (`status 42`, `ack #42`)."""

    def parse_number(args: list[str], text: str) -> Command:
        return Command(name, incident=_only_ref(name, args))

    return parse_number


def nothing(name: str) -> Parser:
    """Commands that take no argument at all (`list`, `help`); extra words are ignored."""

    def parse_nothing(args: list[str], text: str) -> Command:
        return Command(name)

    return parse_nothing


def number_then_text(name: str) -> Parser:
    """`update [#42] <text>`, `note [#42] <text>`: a number only as `#42`, right after the
    word, so that "update 500 errors" stays text."""

    def parse_text(args: list[str], text: str) -> Command:
        incident, rest = _leading_hash_ref(args)
        return Command(name, incident=incident, text=_tail(text, 1 + len(args) - len(rest)))

    return parse_text


def _tail(text: str, skip: int) -> str:
    """The original text after `skip` words, keeping the author's spacing and newlines."""
    match = re.match(r"\s*(?:\S+\s+){" + str(skip) + r"}(.*)\Z", text, re.DOTALL)
    return match.group(1).strip() if match else ""


def _only_ref(name: str, args: list[str]) -> int | None:
    if not args:
        return None
    match = _REF.match(args[0])
    if len(args) > 1 or not match:
        raise CommandError(f"`/incident {name}` takes only an incident number, like `{name} 42`.")
    return int(match.group(1))


def _leading_hash_ref(args: list[str]) -> tuple[int | None, list[str]]:
    if args and (match := _HASH_REF.match(args[0])):
        return int(match.group(1)), args[1:]
    return None, args


def declare(args: list[str], text: str) -> Command:
    return _declaring("declare", args, text, "Or type `/incident` alone for the form.")


def drill(args: list[str], text: str) -> Command:
    """`drill [<sev> <title>]`: a practice incident, declared like `declare`."""
    return _declaring("drill", args, text, "Or type `/incident drill` alone for the form.")


def _declaring(name: str, args: list[str], text: str, form_hint: str) -> Command:
    """`<sev> [<type>:] <title>`, or `<type>: <title>` when the type has a default severity.
    The title keeps the `<type>:` word; `split_type` takes it off when it names a type."""
    if not args:
        return Command(name)
    severity = parse_severity(args[0]) if looks_like_severity(args[0]) else None
    rest = args[1:] if severity is not None else args
    match = _TYPE_WORD.match(rest[0]) if rest else None
    kind = match.group(1).lower() if match else ""
    if severity is None and not kind:
        raise _needs(f"Start with the severity, then the title: `{EXAMPLE}`. {form_hint}", name)
    title = _tail(text, 2 if severity is not None else 1)
    if not title:
        raise _needs(f"Add a title after the severity: `{EXAMPLE}`.", name)
    return Command(name, severity=severity, text=title, kind=kind)


def split_type(command: Command, types: Collection[str]) -> tuple[str, str]:
    """The type a declare names (one of `types`), and its title without the `<type>:` word.
    An unknown `word:` is part of the title."""
    if command.kind and command.kind in types:
        return command.kind, _tail(command.text, 1)
    return "", command.text


def severity(args: list[str], text: str = "") -> Command:
    incident, args = _leading_hash_ref(args)
    if len(args) == 2 and (last := _REF.match(args[-1])):
        incident = int(last.group(1))
        args = args[:1]
    if len(args) != 1:
        raise _needs(f"Say the new severity: `{EXAMPLE}`.", "severity")
    try:
        severity = parse_severity(args[0])
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return Command("severity", incident=incident, severity=severity)


def parse_user(token: str) -> str | None:
    match = _MENTION.match(token) or _RAW_ID.match(token)
    return match.group(1) if match else None


def role(args: list[str], text: str = "") -> Command:
    incident, args = _leading_hash_ref(args)
    if len(args) == 3 and _REF.match(args[2]):
        incident = int(args[2].lstrip("#"))
        args = args[:2]
    if len(args) != 2:
        raise _needs(f"Name the role and the person: `{EXAMPLE}`.", "role")
    try:
        role = parse_role(args[0])
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    user = parse_user(args[1])
    if user is None:
        raise CommandError(
            f"Mention the person with @ (for example `/incident role {args[0]} @alex`)."
        )
    return Command("role", incident=incident, role=role, user=user)


def handover(args: list[str], text: str = "") -> Command:
    """`handover [#42] @person [role] [42]`: the role defaults to commander; the incident is
    `#42` first, or a number last."""
    incident, args = _leading_hash_ref(args)
    if len(args) >= 2 and _REF.match(args[-1]):
        incident = int(args[-1].lstrip("#"))
        args = args[:-1]
    if not args or len(args) > 2:
        raise _needs(f"Name the person, then the role if not commander: `{EXAMPLE}`.", "handover")
    user = parse_user(args[0])
    if user is None:
        raise CommandError(
            "Mention the person with @ (for example `/incident handover @alex` or "
            "`/incident handover @alex tech-lead`)."
        )
    try:
        role = parse_role(args[1]) if len(args) == 2 else Role.COMMANDER
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return Command("handover", incident=incident, role=role, user=user)


def retro(args: list[str], text: str = "") -> Command:
    """`retro` posts the agenda; `retro done` records that it was held."""
    done = bool(args) and args[0].lower() in {"done", "held"}
    rest = args[1:] if done else args
    return Command("retro_done" if done else "retro", incident=_only_ref("retro", rest))


def action(args: list[str], text: str) -> Command:
    """`action [#42] <text> [@owner] [due YYYY-MM-DD]`: owner and deadline are read from the
    end, in either order, so the text itself may mention anything."""
    incident, rest = _leading_hash_ref(args)
    words = list(rest)
    owner: str | None = None
    due: date | None = None
    while words:
        if len(words) >= 2 and words[-2].lower() == "due" and due is None:
            due = _parse_date(words[-1])
            words = words[:-2]
        elif owner is None and (found := parse_user(words[-1])):
            owner = found
            words = words[:-1]
        else:
            break
    body = _tail(text, 1 + len(args) - len(rest))
    kept = " ".join(words)
    # Keep the author's spacing for the text part: cut the original at the kept words.
    if kept and body.startswith(words[0]):
        body = body[: _end_of_words(body, len(words))]
    else:
        body = kept
    if not body.strip():
        raise _needs(f"Say what needs doing: `{EXAMPLE}`.", "action")
    return Command("action", incident=incident, text=body.strip(), user=owner, due=due)


def _end_of_words(text: str, count: int) -> int:
    match = re.match(r"\s*(?:\S+\s+){" + str(count - 1) + r"}\S+", text)
    return match.end() if match else len(text)


def _parse_date(token: str) -> date:
    if not _DATE.match(token):
        raise _needs(
            f"Write the due date as YYYY-MM-DD, like `due 2025-12-01` ({EXAMPLE}).", "action"
        )
    try:
        return date.fromisoformat(token)
    except ValueError:
        raise CommandError(f"{token} is not a date; write it as YYYY-MM-DD.") from None


def actions(args: list[str], text: str = "") -> Command:
    """`actions [42]` lists an incident's items; `actions mine` the caller's open ones."""
    if args and args[0].lower() in {"mine", "me", "my"}:
        if len(args) > 1:
            raise CommandError("`/incident actions mine` takes nothing after `mine`.")
        return Command("actions_mine")
    return Command("actions", incident=_only_ref("actions", args))


def stats(args: list[str], text: str = "") -> Command:
    """`stats [7d|30d|90d] [field=value …]`: a window (30 days by default) and custom field
    filters, each a field and one value."""
    days = STATS_WINDOWS["30d"]
    window = False
    filters: list[tuple[str, str]] = []
    for arg in args:
        if arg.lower() in STATS_WINDOWS and not window:
            days, window = STATS_WINDOWS[arg.lower()], True
        elif match := _FILTER.match(arg):
            filters.append((match.group(1).lower(), match.group(2)))
        else:
            raise _needs(f"Pick a window: `{EXAMPLE}`.", "stats")
    return Command("stats", days=days, filters=tuple(filters))


def set_field(args: list[str], text: str) -> Command:
    """`set [#42] <field> <value>`: the value is the rest of the text, as written (an empty
    value clears the field)."""
    incident, rest = _leading_hash_ref(args)
    if not rest:
        raise _needs(f"Name the field and its value: `{EXAMPLE}`.", "set")
    body = _tail(text, 1 + len(args) - len(rest))
    value = _tail(body, 1)
    return Command("set", incident=incident, kind=rest[0].lower(), text=value)


def close(args: list[str], text: str = "") -> Command:
    force = any(a.lower() in {"--force", "force", "-f"} for a in args)
    rest = [a for a in args if a.lower() not in {"--force", "force", "-f"}]
    return Command("close", incident=_only_ref("close", rest), force=force)
