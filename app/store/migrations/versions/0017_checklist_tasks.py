"""checklist_tasks: the tasks of playbook checklists

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-20 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.types

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = app.store.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "checklist_tasks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("playbook", _TEXT(), nullable=False),
        sa.Column("run_key", _TEXT(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("text", _TEXT(), nullable=False),
        sa.Column("role", _TEXT(), nullable=True),
        sa.Column("due_at", _TIME(timezone=True), nullable=True),
        sa.Column("done_at", _TIME(timezone=True), nullable=True),
        sa.Column("done_by", _TEXT(), nullable=True),
        sa.Column("channel_id", _TEXT(), nullable=True),
        sa.Column("message_ts", _TEXT(), nullable=True),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("incident_id", "run_key", "position", name="uq_checklist_tasks_task"),
    )
    with op.batch_alter_table("checklist_tasks", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_checklist_tasks_incident_id"), ["incident_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("checklist_tasks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checklist_tasks_incident_id"))
    op.drop_table("checklist_tasks")
