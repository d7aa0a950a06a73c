"""Property-based tests over the parser, the input checks and the rendering of user text."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.lifecycle import Status
from app.domain.policy import Policy
from app.domain.roles import Role
from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks
from app.messages.render import Renderer
from app.services.announcements import Announcements
from app.services.errors import InvalidInput
from app.services.incidents import DeclareRequest, validate_declare
from app.slack.grammar import Command, CommandError
from app.slack.listeners.commands import parse

# Every `<…>` the bot may write itself; anything else in output came from user text.
TRUSTED = re.compile(
    r"<(@[UW][A-Z0-9]+|#C[A-Z0-9]+|!date\^\d+\^[^|>]+\|[^>]+|!subteam\^S[A-Z0-9]+|https?://[^|>\s]+(\|[^>]*)?)>"
)
NOW = datetime(2026, 1, 1, tzinfo=UTC)
ANNOUNCE = Announcements(Policy(), Renderer())
PROFILE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

fragment = st.one_of(
    st.text(max_size=6),
    st.sampled_from(
        ["<", ">", "&", "<!channel>", "<@U1>", "{{", "}}", "{%", "|", "\n", "*", "\u202e"]
    ),
)
nasty = st.lists(fragment, max_size=60).map("".join)


@PROFILE
@given(nasty)
def test_parser_answers_or_explains(text: str) -> None:
    try:
        command = parse(text)
    except CommandError as exc:
        assert str(exc)
        return
    assert isinstance(command, Command)
    assert command.name in {
        "declare",
        "ack",
        "role",
        "roles",
        "update",
        "severity",
        "status",
        "mitigate",
        "resolve",
        "list",
        "help",
        "escalations",
        "retro",
        "retro_done",
    }


@PROFILE
@given(title=nasty, description=nasty, service=nasty, severity=st.integers(-5, 9))
def test_declare_input_is_cleaned_or_refused(
    title: str, description: str, service: str, severity: int
) -> None:
    req = DeclareRequest(
        title=title, severity=severity, declared_by="U1", description=description, service=service
    )
    try:
        clean = validate_declare(req, NOW)
    except InvalidInput as exc:
        assert exc.field in {"title", "severity", "description", "service", "detected_at"}
        return
    assert 1 <= len(clean.title) <= 80
    assert not any(ord(c) < 32 and c not in "\n\t" for c in clean.title + clean.description)
    assert severity in (1, 2, 3, 4)


def untrusted_tokens(text: str) -> list[str]:
    return [t for t in re.findall(r"<[^<>]*>", TRUSTED.sub("", text))]


@PROFILE
@given(title=nasty, description=nasty, service=nasty, root=nasty)
def test_rendered_messages_never_carry_user_markup(
    title: str, description: str, service: str, root: str
) -> None:
    snap = IncidentSnapshot(
        id=7,
        title=title,
        severity=2,
        status=Status.RESOLVED,
        description=description,
        service=service,
        is_private=False,
        declared_by="UALICE",
        detected_at=NOW,
        declared_at=NOW,
        resolved_at=NOW,
        root_cause=root,
        impact_summary=root,
        next_steps=description,
        channel_id="CROOM",
        roles={Role.COMMANDER: "UBOB"},
    )
    messages = [ANNOUNCE.notification(snap), ANNOUNCE.announcement(snap)]
    messages += [o.message for o in ANNOUNCE.resolved(snap)]
    for message in messages:
        assert untrusted_tokens(message.text) == []
        for block in message.blocks:
            if block["type"] == "section":
                assert len(block["text"]["text"]) <= 3000
                assert untrusted_tokens(block["text"]["text"]) == []
        assert len(message.blocks) <= 50


@PROFILE
@given(
    st.lists(st.sampled_from(["a", " ", "\n", "&amp;", "&lt;", "<@U1>", "é"]), max_size=3000).map(
        "".join
    )
)
def test_split_text_keeps_limits_and_entities(text: str) -> None:
    chunks = blocks.split_text(text)
    assert all(len(c) <= 3000 for c in chunks)
    for chunk in chunks:
        # No chunk ends or starts inside an entity or a mention.
        assert not re.search(r"&[a-z]{0,3}$", chunk)
        assert not re.search(r"<@?U?1?$", chunk)
