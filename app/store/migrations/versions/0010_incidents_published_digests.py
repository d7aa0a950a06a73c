"""incidents remember what Slack accepted of the topic, pinned notification and announcement

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ("published_topic", "published_notification", "published_announcement")


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name in COLUMNS:
            batch_op.add_column(sa.Column(name, sqlmodel.sql.sqltypes.AutoString(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        for name in reversed(COLUMNS):
            batch_op.drop_column(name)
