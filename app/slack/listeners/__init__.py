"""Bolt listeners, one module per Slack surface."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    from app.slack.listeners import (
        actions,
        alert_cards,
        checklist,
        commands,
        gate,
        home,
        modals,
        pins,
        review,
        rooms,
        status_page,
    )

    commands.register(bot)
    home.register(bot)
    modals.register(bot)
    actions.register(bot)
    alert_cards.register(bot)
    pins.register(bot)
    review.register(bot)
    checklist.register(bot)
    rooms.register(bot)
    status_page.register(bot)
    gate.verify(bot.app)  # every listener above went through the gate
