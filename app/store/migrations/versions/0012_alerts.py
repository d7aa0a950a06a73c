"""alerts: alert groups from monitoring sources, and each alert's occurrences

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.store.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEXT = sqlmodel.sql.sqltypes.AutoString
_TIME = app.store.types.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", _TEXT(), nullable=False),
        sa.Column("key_hash", _TEXT(), nullable=False),
        sa.Column("group_key", _TEXT(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("route", sa.Integer(), nullable=False),
        sa.Column("action", _TEXT(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("truncated", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=True),
        sa.Column("card_channel", _TEXT(), nullable=True),
        sa.Column("card_ts", _TEXT(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("card_version", sa.Integer(), nullable=False),
        sa.Column("summary_version", sa.Integer(), nullable=False),
        sa.Column("summary_at", _TIME(timezone=True), nullable=True),
        sa.Column("cleared_said", sa.Boolean(), nullable=False),
        sa.Column("dismissed_by", _TEXT(), nullable=True),
        sa.Column("dismissed_reason", _TEXT(), nullable=True),
        sa.Column("dismissed_at", _TIME(timezone=True), nullable=True),
        sa.Column("owner", _TEXT(), nullable=True),
        sa.Column("lease_until", _TIME(timezone=True), nullable=True),
        sa.Column("first_seen_at", _TIME(timezone=True), nullable=False),
        sa.Column("updated_at", _TIME(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "key_hash", name="uq_alert_groups_key"),
    )
    op.create_index(
        op.f("ix_alert_groups_incident_id"), "alert_groups", ["incident_id"], unique=False
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("source", _TEXT(), nullable=False),
        sa.Column("fingerprint", _TEXT(), nullable=False),
        sa.Column("episode", sa.Integer(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        sa.Column("links", sa.JSON(), nullable=False),
        sa.Column("starts_at", _TIME(timezone=True), nullable=False),
        sa.Column("ends_at", _TIME(timezone=True), nullable=True),
        sa.Column("received_at", _TIME(timezone=True), nullable=False),
        sa.Column("resolved_at", _TIME(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["alert_groups.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "fingerprint", "starts_at", name="uq_alerts_occurrence"),
    )
    op.create_index(op.f("ix_alerts_group_id"), "alerts", ["group_id"], unique=False)
    op.create_index(
        "uq_alerts_open_fingerprint",
        "alerts",
        ["source", "fingerprint"],
        unique=True,
        sqlite_where=sa.text("resolved_at IS NULL"),
        postgresql_where=sa.text("resolved_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_alerts_open_fingerprint", table_name="alerts")
    op.drop_index(op.f("ix_alerts_group_id"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_alert_groups_incident_id"), table_name="alert_groups")
    op.drop_table("alert_groups")
