"""A per-name version counter, so a deleted version's number is never handed out again.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

The counter outlives the model's row (deleting a whole model keeps it), so ``models:/rf/2`` in an
old batch job record can never come to mean another model. Existing names start from their
highest remaining version: a number deleted before this revision cannot be known any more.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "seaway_version_counters",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("last_version", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_seaway_version_counters"),
    )
    op.execute(
        "INSERT INTO seaway_version_counters (name, last_version) "
        "SELECT name, MAX(version) FROM seaway_model_versions GROUP BY name"
    )


def downgrade() -> None:
    op.drop_table("seaway_version_counters")
