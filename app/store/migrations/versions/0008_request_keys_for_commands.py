"""action items remember the request that added them, so the same command sent twice adds one

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 10:00:00.000000

Notes, the retrospective agenda and "retrospective held" carry the request's key in the
existing `timeline_events.source_key` (unique already); status updates in
`status_updates.request_key` (unique per incident already).
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("request_key", sqlmodel.sql.sqltypes.AutoString(), nullable=True)
        )
        batch_op.create_unique_constraint("uq_action_items_request_key", ["request_key"])


def downgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_constraint("uq_action_items_request_key", type_="unique")
        batch_op.drop_column("request_key")
