"""Alert events: each time a served model's alert fires or resolves.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seaway_alert_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("severity", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("version", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_seaway_alert_events"),
    )
    op.create_index("ix_seaway_alert_events_model_time", "seaway_alert_events", ["model", "time"])
    op.create_index("ix_seaway_alert_events_time", "seaway_alert_events", ["time"])


def downgrade() -> None:
    op.drop_index("ix_seaway_alert_events_time", table_name="seaway_alert_events")
    op.drop_index("ix_seaway_alert_events_model_time", table_name="seaway_alert_events")
    op.drop_table("seaway_alert_events")
