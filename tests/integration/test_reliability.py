"""Nothing reverted, nothing lost between a change and its follow-up work."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, CAROL, DAVE
from tests.support.factories import settings_for
from tests.support.helpers import answers, channel


async def test_an_update_racing_a_mitigation_never_reverts_it(bot: Bot) -> None:
    """`mitigate` and `update <text>` sent together: whatever the order the incident lock
    serves them in, the update keeps the status it finds, so the mitigation stands."""
    count = 8
    people = [ALICE, BOB, CAROL, DAVE]  # under the per-person declare limit
    for n in range(count):
        await bot.slack.command(f"declare sev3 Queue backlog {n}", user=people[n % 4])
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


async def test_a_failure_says_whether_the_request_was_saved(
    fake: FakeSlack, database_url: str, clock: ManualClock, tmp_path: Path
) -> None:
    """A failure inside the change (the update's message cannot be rendered) saves nothing
    and says so; a failure after it (the owner's Home tab cannot be rendered once the action
    item is stored) says the request was saved, so nobody sends it twice."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "update.md.j2").write_text(
        "{{ incident.id // 0 if u.investigation == 'boom' else '' }}ok"
    )
    (folder / "home_roles.md.j2").write_text("{{ 1 // 0 }}")
    settings = settings_for(fake, database_url, templates_dir=str(folder))
    async for bot in start_bot(settings, fake, clock):
        await bot.slack.command("declare sev3 Queue backlog")
        await bot.settle()
        room = channel(fake, "incident-1").id
        await bot.slack.command("update boom", channel=room)
        await bot.settle()
        assert "Nothing was saved: send it again" in answers(fake)[-1]
        assert (await bot.warroom.incidents.snapshot(1)).last_update_at is None
        await bot.slack.command("action Add a queue alert <@UBOB>", channel=room)
        await bot.settle()
        assert "Your request was saved" in answers(fake)[-1]
        assert len(await bot.warroom.bot.actions.for_incident(1)) == 1
