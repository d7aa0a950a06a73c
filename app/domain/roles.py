"""The three war-room roles from the response process, and the words people type for them."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    COMMANDER = "commander"
    TECH_LEAD = "tech_lead"
    COMMS = "comms"


_ALIASES: dict[str, Role] = {
    "commander": Role.COMMANDER,
    "ic": Role.COMMANDER,
    "incident-commander": Role.COMMANDER,
    "lead": Role.TECH_LEAD,
    "tech-lead": Role.TECH_LEAD,
    "tech_lead": Role.TECH_LEAD,
    "techlead": Role.TECH_LEAD,
    "tl": Role.TECH_LEAD,
    "comms": Role.COMMS,
    "communications": Role.COMMS,
    "communication": Role.COMMS,
    "communications-lead": Role.COMMS,
    "comms-lead": Role.COMMS,
}


def parse_role(text: str) -> Role:
    try:
        return _ALIASES[text.strip().lower()]
    except KeyError:
        raise ValueError(
            f"Unknown role {text.strip()!r}; use commander, tech-lead or comms."
        ) from None
