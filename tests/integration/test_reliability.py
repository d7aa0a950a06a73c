"""Nothing reverted, nothing lost between a change and its follow-up work."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from app.domain.lifecycle import Status
from app.domain.roles import Role
from app.fake_slack import FakeSlack
from app.services.clock import ManualClock
from app.store.models import StatusUpdate
from tests.support.bot import Bot, start_bot
from tests.support.constants import ALICE, BOB, CAROL, DAVE
from tests.support.factories import settings_for
from tests.support.helpers import answers, channel, last_view


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


# The state-changing requests raced below, each sent as the incident's commander (Alice) in
# its room: `/incident` commands, and the resolve form (opened beforehand, submitted in the race).
CHANGES = ("ack", "mitigate", "update", "resolve", "severity", "role")
Send = Callable[[], Awaitable[Any]]


async def _senders(bot: Bot, incident_id: int) -> dict[str, Send]:
    room = channel(bot.fake, f"incident-{incident_id}").id

    def command(text: str) -> Send:
        return lambda: bot.slack.command(text, channel=room)

    await bot.slack.command("resolve", channel=room)
    await bot.settle()
    [form] = [
        v
        for v in bot.fake.views.values()
        if v.get("callback_id") == "resolve_incident"
        and f'"incident":{incident_id}' in v.get("private_metadata", "")
    ]
    return {
        "ack": command("ack"),
        "mitigate": command("mitigate"),
        "update": command("update racing the other change"),
        "resolve": lambda: bot.slack.submit(form, {"root_cause": "Bad deploy"}),
        "severity": command("severity sev2"),
        "role": command(f"role tech-lead <@{DAVE}>"),
    }


async def _outcome(bot: Bot, incident_id: int, refusals: list[str]) -> tuple[object, ...]:
    """What a pair of changes left: the incident's state, the updates stored, and what the
    sender was refused (the incident's number taken out, to compare across incidents)."""
    snap = await bot.warroom.incidents.snapshot(incident_id)
    async with bot.warroom.db.session() as session:
        updates = (
            await session.exec(
                select(StatusUpdate.status)
                .where(StatusUpdate.incident_id == incident_id)
                .order_by(col(StatusUpdate.id))
            )
        ).all()
    return (
        snap.status,
        snap.severity,
        snap.resolved_at is not None,
        snap.acknowledged_at is not None,
        snap.mitigated_at is not None,
        tuple(sorted((r.value, u) for r, u in snap.roles.items())),
        tuple(updates),
        tuple(sorted(re.sub(r"#\d+", "#N", text) for text in refusals)),
    )


@pytest.mark.parametrize("first, second", list(itertools.combinations(CHANGES, 2)))
async def test_two_state_changes_raced_end_as_one_of_their_serial_orders(
    bot: Bot, first: str, second: str
) -> None:
    """Two changes to one incident sent at the same moment end exactly as one of the two
    orders sent one after the other: same status, severity, resolution, roles, updates, and
    the same refusals. So neither is lost, neither reverts the other, and a change that cannot
    apply any more is refused in words, never dropped silently."""
    for n in range(4):
        await bot.slack.command(f"declare sev3 Queue backlog {n}")
    await bot.settle()
    send = {n: await _senders(bot, n) for n in (1, 2, 3, 4)}

    async def run(incident_id: int, *batches: tuple[str, ...]) -> tuple[object, ...]:
        """Send each batch at once, one batch after the other."""
        before = len(bot.fake.responses)
        for batch in batches:
            await asyncio.gather(*(send[incident_id][name]() for name in batch))
            await bot.settle()
        refused = [t for t in answers(bot.fake)[before:] if t.startswith(":no_entry_sign:")]
        return await _outcome(bot, incident_id, refused)

    orders = [await run(2, (first,), (second,)), await run(3, (second,), (first,))]
    # Raced both ways round: which request is recorded and started first matters.
    for incident_id, batch in ((1, (first, second)), (4, (second, first))):
        raced = await run(incident_id, batch)
        assert raced in orders, f"raced {batch}: {raced}; serial orders {orders}"
        if raced[0] is not Status.MITIGATED and "mitigate" in batch:
            assert raced[2], "a mitigation reverted"  # only resolving moves on from Mitigated


async def form_opened_then_mitigated(bot: Bot) -> tuple[str, dict[str, Any]]:
    """Incident #1's war room and an update form opened while it was Investigating, after
    which someone marked it mitigated."""
    await bot.slack.command("declare sev3 Queue backlog")
    await bot.settle()
    room = channel(bot.fake, "incident-1").id
    await bot.slack.click("incident_update", "1", channel=room)
    await bot.settle()
    view = last_view(bot.fake, "post_update")
    await bot.slack.command("mitigate", channel=room)
    await bot.settle()
    return room, view


async def test_an_update_form_opened_before_a_mitigation_never_reverts_it(bot: Bot) -> None:
    """The update form opened while Investigating, `/incident mitigate`, then the form posted
    with the status left as shown: the update keeps the status the incident has, Mitigated."""
    room, view = await form_opened_then_mitigated(bot)
    status, _ = await bot.slack.submit(view, {"investigation": "still watching"})
    await bot.settle()
    assert status == 200
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status is Status.MITIGATED, snap.status
    assert any("still watching" in m.text for m in bot.fake.messages(room))


async def test_a_status_picked_in_a_form_opened_before_a_change_is_refused_in_the_form(
    bot: Bot,
) -> None:
    """A status picked against a status that has changed since the form opened is a choice
    made on old facts: the form says the incident's status now and asks to check and submit
    again, and nothing is stored."""
    room, view = await form_opened_then_mitigated(bot)
    before = len(bot.fake.messages(room))
    status, answer = await bot.slack.submit(
        view, {"status": "identified", "investigation": "found the bad deploy"}
    )
    await bot.settle()
    assert status == 200
    assert answer.get("response_action") == "errors", answer
    assert "is now Mitigated" in answer["errors"]["status"]
    assert "submit again" in answer["errors"]["status"]
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status is Status.MITIGATED
    assert not any("found the bad deploy" in m.text for m in bot.fake.messages(room)[before:])


async def test_a_status_picked_that_the_incident_already_has_is_no_conflict(bot: Bot) -> None:
    """The form opened while Investigating; someone mitigates; the person picks Mitigated too.
    The incident is where they want it, so the update is posted: only a status moved
    somewhere else since the form opened is refused."""
    room, view = await form_opened_then_mitigated(bot)
    status, answer = await bot.slack.submit(
        view, {"status": "mitigated", "investigation": "rolled back, watching"}
    )
    await bot.settle()
    assert status == 200
    assert answer.get("response_action") != "errors", answer
    snap = await bot.warroom.incidents.snapshot(1)
    assert snap.status is Status.MITIGATED
    assert any("rolled back, watching" in m.text for m in bot.fake.messages(room))


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
