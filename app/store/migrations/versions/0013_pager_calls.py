"""pager_calls: calls to pager providers (trigger, acknowledge, resolve), delivered in order

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-09 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.types

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = app.store.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "pager_calls",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("target", _TEXT(), nullable=False),
        sa.Column("provider", _TEXT(), nullable=False),
        sa.Column("action", _TEXT(), nullable=False),
        sa.Column("dedup_key", _TEXT(), nullable=False),
        sa.Column("summary", _TEXT(), nullable=False),
        sa.Column("reason", _TEXT(), nullable=False),
        sa.Column("requested_by", _TEXT(), nullable=True),
        sa.Column("message", _TEXT(), nullable=False),
        sa.Column("source_key", _TEXT(), nullable=True),
        sa.Column("state", _TEXT(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", _TIME(timezone=True), nullable=False),
        sa.Column("claimed_by", _TEXT(), nullable=True),
        sa.Column("lease_until", _TIME(timezone=True), nullable=True),
        sa.Column("outcome", _TEXT(), nullable=False),
        sa.Column("told", sa.Boolean(), nullable=False),
        sa.Column("sent_at", _TIME(timezone=True), nullable=True),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.Column("remote_state", _TEXT(), nullable=True),
        sa.Column("remote_by", _TEXT(), nullable=True),
        sa.Column("remote_at", _TIME(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_key", name="uq_pager_calls_source"),
    )
    op.create_index("ix_pager_calls_due", "pager_calls", ["state", "due_at"], unique=False)
    op.create_index(
        op.f("ix_pager_calls_incident_id"), "pager_calls", ["incident_id"], unique=False
    )
    op.create_index(op.f("ix_pager_calls_dedup_key"), "pager_calls", ["dedup_key"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_pager_calls_dedup_key"), table_name="pager_calls")
    op.drop_index(op.f("ix_pager_calls_incident_id"), table_name="pager_calls")
    op.drop_index("ix_pager_calls_due", table_name="pager_calls")
    op.drop_table("pager_calls")
