"""Playbook checklists: the **Done** button on each task of a checklist message.

Anyone who may see the incident may tick a task (the gate establishes sight first); the
checklist's message is then edited in place to show who ticked it and when.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.services.checklists import DONE_BUTTON
from app.services.errors import ServiceError
from app.services.ports import SlackError
from app.slack.listeners import gate
from app.slack.listeners.gate import Seen
from app.slack.reply import Replier

if TYPE_CHECKING:
    from app.slack.context import Bot


def register(bot: Bot) -> None:
    gate.on_button(
        bot,
        DONE_BUTTON,
        gate.INCIDENT_BUTTON_PREFIX,  # value "42:7": incident 42, task 7
        lambda seen, body, reply: tick(bot, seen, body, reply),
    )


def _task_id(body: dict[str, Any]) -> int:
    _, _, task = str(gate.value_of(body) or "").partition(":")
    if not task.isdigit():
        raise ServiceError("That checklist task is not known.")
    return int(task)


async def tick(bot: Bot, seen: Seen, body: dict[str, Any], reply: Replier) -> None:
    ticked = await bot.checklists.done(seen.incident_id, _task_id(body), reply.user)
    task = ticked.task
    if not ticked.now:
        who = f"<@{task.done_by}>" if task.done_by else "someone"
        await reply.say(f"Already done by {who}: {task.text}")
        return
    try:
        await bot.checklists.refresh_message(await bot.incidents.snapshot(seen.incident_id), task)
    except SlackError as exc:
        if exc.retryable:
            raise
    await reply.say(f":white_check_mark: Done: {task.text}")


async def progress(bot: Bot, incident_id: int) -> str:
    snap = await bot.incidents.snapshot(incident_id)
    tasks = await bot.checklists.for_incident(incident_id)
    return bot.checklists.progress(snap, tasks, bot.services.clock.now())
