"""Bolt listeners, one module per Slack surface."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.slack.bot import Warroom


def register(warroom: Warroom) -> None:
    from app.slack.listeners import actions, commands, events, home, modals, pins, review

    events.register(warroom)
    commands.register(warroom)
    home.register(warroom)
    modals.register(warroom)
    actions.register(warroom)
    pins.register(warroom)
    review.register(warroom)
