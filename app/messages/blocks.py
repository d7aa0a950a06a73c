"""Block Kit for every message the bot posts, always with an escaped text fallback.

Builders keep within Slack's limits (50 blocks, 3,000 characters a section, 40,000 of fallback)
by splitting and trimming here, once, rather than trusting every caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.domain.lifecycle import Status
from app.domain.snapshot import IncidentSnapshot
from app.messages.mrkdwn import Mrkdwn

MAX_SECTION = 3000
MAX_BLOCKS = 50
MAX_TEXT = 40_000
MAX_HEADER = 150


@dataclass(frozen=True)
class Message:
    """What goes to chat.postMessage / chat.update: fallback text and blocks."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)

    def as_kwargs(self) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks}


SEVERITY_EMOJI = {1: ":red_circle:", 2: ":large_orange_circle:", 3: ":large_yellow_circle:"}


def severity_emoji(level: int) -> str:
    return SEVERITY_EMOJI.get(level, ":white_circle:")


def _safe_cut(text: str, limit: int) -> int:
    """An index <= limit that does not split an `&amp;` entity or a `<...>` token."""
    cut = text.rfind("\n", 0, limit + 1)
    if cut > limit // 2:
        return cut
    cut = limit
    amp = text.rfind("&", max(0, cut - 5), cut)
    if amp != -1 and ";" not in text[amp:cut]:
        cut = amp
    lt = text.rfind("<", max(0, cut - 200), cut)
    if lt != -1 and ">" not in text[lt:cut]:
        cut = lt
    return cut or limit


def split_text(text: str, limit: int = MAX_SECTION) -> list[str]:
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = _safe_cut(rest, limit)
        chunks.append(rest[:cut].rstrip("\n"))
        rest = rest[cut:].lstrip("\n")
    if rest or not chunks:
        chunks.append(rest)
    return chunks


def trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: _safe_cut(text, limit - 1)] + "…"


def sections(text: str) -> list[dict[str, Any]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": chunk}}
        for chunk in split_text(text)
        if chunk.strip()
    ]


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": trim(text, MAX_HEADER)}}


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": trim(text, MAX_SECTION)}]}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text[:75]},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    return element


def message(text: Mrkdwn | str, blocks: list[dict[str, Any]]) -> Message:
    """Assemble a message, keeping within the block and fallback limits."""
    if len(blocks) > MAX_BLOCKS:
        blocks = [*blocks[: MAX_BLOCKS - 1], context("_Message shortened: too long for Slack._")]
    return Message(text=trim(text, MAX_TEXT), blocks=blocks)


def incident_actions(incident: IncidentSnapshot) -> dict[str, Any]:
    """Acknowledge / Post update / Resolve, carrying the incident number as the value."""
    value = str(incident.id)
    elements = []
    if incident.acknowledged_at is None:
        elements.append(button("Acknowledge", "incident_ack", value, "primary"))
    elements.append(button("Post update", "incident_update", value))
    elements.append(button("Resolve", "incident_resolve", value, "danger"))
    return {"type": "actions", "block_id": "incident_actions", "elements": elements}


def initial_notification(incident: IncidentSnapshot, body: str) -> Message:
    title = f"Incident #{incident.id} · Sev{incident.severity}"
    if incident.is_drill:
        title = f"DRILL · {title}"
    blocks = [header(title), *sections(body)]
    if incident.status.is_open:
        blocks.append(incident_actions(incident))
    return message(body, blocks)


def announcement(incident: IncidentSnapshot, headline: str, body: str) -> Message:
    blocks = [*sections(headline), *sections(body)]
    if incident.status.is_open:
        blocks.append(incident_actions(incident))
    elif incident.status is Status.RESOLVED:
        blocks.append(context(":white_check_mark: Resolved. Details in the thread."))
    return message(f"{headline}\n{body}", blocks)


def simple(body: str) -> Message:
    """A message that is just mrkdwn text."""
    return message(body, sections(body))
