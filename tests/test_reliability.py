"""Nothing reverted, nothing lost between a change and its follow-up work."""

from __future__ import annotations

import asyncio

from app.domain.lifecycle import Status
from app.domain.roles import Role
from tests.conftest import Bot
from tests.helpers import answers, channel


async def test_an_update_racing_a_mitigation_never_reverts_it(bot: Bot) -> None:
    """`mitigate` and `update <text>` sent together: whatever the order the incident lock
    serves them in, the update keeps the status it finds, so the mitigation stands."""
    count = 8
    for n in range(count):
        await bot.slack.command(f"declare sev3 Queue backlog {n}")
    await bot.settle()
    rooms = [channel(bot.fake, f"incident-{n + 1}").id for n in range(count)]
    await asyncio.gather(
        *(
            call
            for room in rooms
            for call in (
                bot.slack.command("mitigate", channel=room),
                bot.slack.command("update still watching the queue", channel=room),
            )
        )
    )
    await bot.settle()
    for n in range(count):
        snap = await bot.warroom.incidents.snapshot(n + 1)
        assert snap.status is Status.MITIGATED, f"incident {n + 1} reverted to {snap.status}"


async def test_roles_go_only_to_people_slack_knows(bot: Bot) -> None:
    """An unknown ID, a deactivated account or a bot is refused, and nothing is stored: no
    role, no brief, no invitation, no topic with a raw ID."""
    await bot.slack.command("declare sev3 Queue backlog")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    bot.fake.add_user("UGONE1234", name="gone")
    bot.fake.workspace.users["UGONE1234"].deleted = True
    bot_user = bot.fake.workspace.bot_user_id
    for who, says in [
        ("UNOBODY123", "There is no Slack user `UNOBODY123` here."),
        ("UGONE1234", "gone's account is deactivated"),
        (bot_user, "is a bot; roles are for people"),
    ]:
        await bot.slack.command(f"role tech-lead <@{who}>", channel=room)
        await bot.settle()
        assert says in answers(bot.fake)[-1]
    snap = await bot.warroom.incidents.snapshot(1)
    assert set(snap.roles) == {Role.COMMANDER}
    assert not any("UNOBODY123" in m.text for m in bot.fake.messages(room))
    assert "UNOBODY123" not in bot.fake.channel(room).topic
