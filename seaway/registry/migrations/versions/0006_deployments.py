"""Deployments: named endpoints with numbered revisions, their rollouts, decision log, traffic
counters per server, and leases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-16
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def _deployment_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["deployment"],
        ["seaway_deployments.name"],
        name=f"fk_{table}_deployment",
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "seaway_deployments",
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("rollout_generation", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model"], ["seaway_models.name"], name="fk_seaway_deployments_model"
        ),
        sa.PrimaryKeyConstraint("name", name="pk_seaway_deployments"),
    )
    op.create_index("ix_seaway_deployments_model", "seaway_deployments", ["model"])
    op.create_table(
        "seaway_deployment_revisions",
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("versions", sa.JSON(), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _deployment_fk("seaway_deployment_revisions"),
        sa.PrimaryKeyConstraint("deployment", "revision", name="pk_seaway_deployment_revisions"),
    )
    op.create_table(
        "seaway_deployment_rollouts",
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("state", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _deployment_fk("seaway_deployment_rollouts"),
        sa.PrimaryKeyConstraint("deployment", name="pk_seaway_deployment_rollouts"),
    )
    op.create_table(
        "seaway_deployment_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("decision", sa.JSON(), nullable=False),
        _deployment_fk("seaway_deployment_decisions"),
        sa.PrimaryKeyConstraint("id", name="pk_seaway_deployment_decisions"),
    )
    op.create_index(
        "ix_seaway_deployment_decisions_deployment_id",
        "seaway_deployment_decisions",
        ["deployment", "id"],
    )
    op.create_table(
        "seaway_deployment_stats",
        sa.Column("deployment", sa.String(128), nullable=False),
        sa.Column("revision", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("server", sa.String(200), nullable=False),
        sa.Column("stats", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _deployment_fk("seaway_deployment_stats"),
        sa.PrimaryKeyConstraint(
            "deployment", "revision", "server", name="pk_seaway_deployment_stats"
        ),
    )
    op.create_table(
        "seaway_leases",
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("holder", sa.String(200), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_seaway_leases"),
    )


def downgrade() -> None:
    op.drop_table("seaway_leases")
    op.drop_table("seaway_deployment_stats")
    op.drop_index(
        "ix_seaway_deployment_decisions_deployment_id", table_name="seaway_deployment_decisions"
    )
    op.drop_table("seaway_deployment_decisions")
    op.drop_table("seaway_deployment_rollouts")
    op.drop_table("seaway_deployment_revisions")
    op.drop_index("ix_seaway_deployments_model", table_name="seaway_deployments")
    op.drop_table("seaway_deployments")
