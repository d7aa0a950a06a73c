"""Checklists: the tasks a playbook's checklist step posts in the war room.

A checklist is one message with a **Done** button per task, edited in place (`chat.update`) as
tasks are ticked, showing who ticked each and when. Tasks are rows (`checklist_tasks`), so the
progress (`/incident checklist`), the overdue nudges (escalation rows, one per task with a due
time) and the postmortem all read the same thing. Anyone who may see the incident may tick a
task: the gate establishes sight before the button's work runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.domain.playbooks import Task
from app.domain.snapshot import IncidentSnapshot
from app.messages import blocks
from app.messages.blocks import Message
from app.services.context import Services
from app.services.errors import ServiceError
from app.services.escalations import Escalations
from app.store import repo
from app.store.models import ChecklistTask

log = logging.getLogger(__name__)

DONE_BUTTON = "checklist_done"


@dataclass(frozen=True)
class Ticked:
    task: ChecklistTask
    # False: it was done already (by `task.done_by`); nothing changed.
    now: bool


class Checklists:
    def __init__(self, services: Services, escalations: Escalations) -> None:
        self.services = services
        self.escalations = escalations

    # --- reading --------------------------------------------------------------------------

    async def for_incident(self, incident_id: int) -> list[ChecklistTask]:
        async with self.services.db.session() as session:
            result = await session.exec(
                select(ChecklistTask)
                .where(ChecklistTask.incident_id == incident_id)
                .order_by(col(ChecklistTask.id))
            )
            return list(result.all())

    async def of_run(self, incident_id: int, run_key: str) -> list[ChecklistTask]:
        async with self.services.db.session() as session:
            result = await session.exec(
                select(ChecklistTask)
                .where(ChecklistTask.incident_id == incident_id)
                .where(ChecklistTask.run_key == run_key)
                .order_by(col(ChecklistTask.position))
            )
            return list(result.all())

    async def get(self, task_id: int) -> ChecklistTask | None:
        async with self.services.db.session() as session:
            return await session.get(ChecklistTask, task_id)

    # --- the step -------------------------------------------------------------------------

    async def create(
        self, incident_id: int, playbook: str, run_key: str, tasks: list[Task]
    ) -> list[ChecklistTask]:
        """Store the step's tasks (once: running the step again finds them) and plan the
        nudge of each task that has a due time."""
        existing = await self.of_run(incident_id, run_key)
        if not existing:
            now = self.services.clock.now()
            try:
                async with self.services.db.session() as session:
                    for position, task in enumerate(tasks):
                        due = (
                            now + timedelta(minutes=task.due_minutes) if task.due_minutes else None
                        )
                        session.add(
                            ChecklistTask(
                                incident_id=incident_id,
                                playbook=playbook,
                                run_key=run_key,
                                position=position,
                                text=task.text,
                                role=task.role.value if task.role else None,
                                due_at=due,
                                created_at=now,
                            )
                        )
            except IntegrityError:
                pass  # stored at the same moment by another replica: theirs stands
            existing = await self.of_run(incident_id, run_key)
        for row in existing:
            if row.due_at is not None and row.done_at is None and row.id is not None:
                await self.escalations.plan_checklist_nudge(incident_id, row.id, row.due_at)
        return existing

    async def posted(self, tasks: list[ChecklistTask], channel: str, ts: str) -> None:
        async with self.services.db.session() as session:
            await session.exec(
                update(ChecklistTask)
                .where(col(ChecklistTask.id).in_([t.id for t in tasks]))
                .values(channel_id=channel, message_ts=ts)
            )
        for task in tasks:
            task.channel_id, task.message_ts = channel, ts

    def message(self, snap: IncidentSnapshot, tasks: list[ChecklistTask]) -> Message:
        """The checklist's message: a line per task, a Done button for each task not done."""
        renderer = self.services.renderer
        zone = self.services.policy.workspace.timezone
        playbook = tasks[0].playbook if tasks else ""
        head = renderer.render("checklist.md.j2", incident=snap, playbook=playbook, tasks=tasks)
        parts: list[dict[str, Any]] = blocks.sections(head)
        lines = [head]
        for task in tasks:
            line = renderer.render("checklist_task.md.j2", t=task, zone=zone)
            lines.append(line)
            section: dict[str, Any] = {
                "type": "section",
                "text": {"type": "mrkdwn", "text": blocks.trim(line, blocks.MAX_SECTION)},
            }
            if task.done_at is None:
                section["accessory"] = blocks.button(
                    "Done", DONE_BUTTON, f"{snap.id}:{task.id}", "primary"
                )
            parts.append(section)
        return blocks.message("\n".join(lines), parts)

    # --- ticking --------------------------------------------------------------------------

    async def done(self, incident_id: int, task_id: int, by: str) -> Ticked:
        """Tick a task (anyone who may see the incident may). Ticking it again changes
        nothing and says who ticked it."""
        now = self.services.clock.now()
        async with self.services.db.session() as session:
            task = await session.get(ChecklistTask, task_id)
            if task is None or task.incident_id != incident_id:
                raise ServiceError(f"Incident #{incident_id} has no such checklist task.")
            result = await session.exec(
                update(ChecklistTask)
                .where(col(ChecklistTask.id) == task_id)
                .where(col(ChecklistTask.done_at).is_(None))
                .values(done_at=now, done_by=by)
            )
            ticked = bool(result.rowcount)
            if ticked:
                session.add(
                    repo.event(
                        incident_id,
                        now,
                        "checklist_done",
                        f"Checklist ({task.playbook}): {task.text}: done",
                        by,
                        task=task_id,
                    )
                )
        found = await self.get(task_id)
        assert found is not None
        if ticked:
            await self.escalations.cancel(incident_id, "task done", keys={f"checklist:{task_id}"})
        return Ticked(found, ticked)

    async def refresh_message(self, snap: IncidentSnapshot, task: ChecklistTask) -> None:
        """Edit the checklist's message in place to show the tasks as they are now."""
        if not task.channel_id or not task.message_ts:
            return
        tasks = await self.of_run(task.incident_id, task.run_key)
        await self.services.slack.update(
            task.channel_id, task.message_ts, self.message(snap, tasks)
        )

    def progress(self, snap: IncidentSnapshot, tasks: list[ChecklistTask], now: datetime) -> str:
        return self.services.renderer.render(
            "checklist_status.md.j2",
            incident=snap,
            tasks=tasks,
            now=now,
            zone=self.services.policy.workspace.timezone,
        )
