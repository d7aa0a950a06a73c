"""Sight and rights on every surface."""

from __future__ import annotations

from app.domain.snapshot import IncidentSnapshot
from tests.conftest import ALICE, BOB, Bot
from tests.helpers import answers, last_view

OUTSIDER = BOB


async def declare_private_incident(
    bot: Bot, title: str = "Secret breach", sev: str = "2"
) -> IncidentSnapshot:
    """Alice declares a private incident through the form."""
    await bot.slack.command("declare")
    await bot.settle()
    view = last_view(bot.fake, "declare_incident")
    await bot.slack.submit(view, {"title": title, "severity": sev, "private": ["private"]})
    await bot.settle()
    return max(await bot.warroom.incidents.not_closed(), key=lambda i: i.id)


def stats_row(text: str, label: str) -> list[str]:
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    return rows.get(label, [])


async def test_stats_count_a_private_incident_only_for_those_who_may_see_it(bot: Bot) -> None:
    await bot.slack.command("declare sev2 Checkout errors")
    await bot.settle()
    await declare_private_incident(bot, sev="4")
    for user in (ALICE, OUTSIDER):
        await bot.slack.command("stats", user=user)
        await bot.settle()
    alice, outsider = answers(bot.fake)[-2:]
    assert stats_row(alice, "All")[1] == "2" and stats_row(alice, "Sev4")[1] == "1"
    assert stats_row(outsider, "All")[1] == "1" and stats_row(outsider, "Sev4")[1] == "0"
    assert "Secret breach" not in alice + outsider
