"""public_updates: drafts and published updates for status pages; incidents' components

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-22 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.types

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = app.store.types.UTCDateTime


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("components", sa.JSON(), nullable=False, server_default="{}"))
        batch_op.add_column(sa.Column("statuspage_id", _TEXT(), nullable=True))
    op.create_table(
        "public_updates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("state", _TEXT(), nullable=False),
        sa.Column("reason", _TEXT(), nullable=False),
        sa.Column("status", _TEXT(), nullable=False),
        sa.Column("title", _TEXT(), nullable=False),
        sa.Column("body", _TEXT(), nullable=False),
        sa.Column("components", sa.JSON(), nullable=False, server_default="{}"),
        sa.Column("source_key", _TEXT(), nullable=True),
        sa.Column("offered_to", _TEXT(), nullable=True),
        sa.Column("created_at", _TIME(timezone=True), nullable=False),
        sa.Column("decided_by", _TEXT(), nullable=True),
        sa.Column("decided_at", _TIME(timezone=True), nullable=True),
        sa.Column("published_at", _TIME(timezone=True), nullable=True),
        sa.Column("remote_state", _TEXT(), nullable=True),
        sa.Column("remote_attempts", sa.Integer(), nullable=False),
        sa.Column("remote_due_at", _TIME(timezone=True), nullable=True),
        sa.Column("remote_claimed_by", _TEXT(), nullable=True),
        sa.Column("remote_lease_until", _TIME(timezone=True), nullable=True),
        sa.Column("remote_outcome", _TEXT(), nullable=False),
        sa.Column("remote_told", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source_key", name="uq_public_updates_source"),
    )
    with op.batch_alter_table("public_updates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_public_updates_incident_id"), ["incident_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_public_updates_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_public_updates_published_at"), ["published_at"], unique=False
        )
        batch_op.create_index(
            "ix_public_updates_remote", ["remote_state", "remote_due_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("public_updates")
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("statuspage_id")
        batch_op.drop_column("components")
