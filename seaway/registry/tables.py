"""The registry's tables (SQLAlchemy Core). Prefixed ``seaway_`` so a shared database stays tidy.

Change them only together with a new Alembic migration in ``migrations/versions``.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData(
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ix": "ix_%(table_name)s_%(column_0_name)s",
    }
)

models = Table(
    "seaway_models",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

model_versions = Table(
    "seaway_model_versions",
    metadata,
    Column(
        "name", String(128), ForeignKey("seaway_models.name", ondelete="CASCADE"), primary_key=True
    ),
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("flavor", String(64), nullable=False),
    Column("artifact_uri", Text, nullable=False),
    Column("manifest_sha256", String(64), nullable=False),
    Column("manifest", JSON, nullable=False),
    Column("description", Text, nullable=True),
    Column("tags", JSON, nullable=False),
    Column("metrics", JSON, nullable=False),
    Column("lineage", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: The highest version number ever given to a name. Kept when versions, or the whole model, are
#: deleted: numbers are never reused (migration 0004).
version_counters = Table(
    "seaway_version_counters",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("last_version", Integer, nullable=False),
)

aliases = Table(
    "seaway_aliases",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("alias", String(64), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    ForeignKeyConstraint(
        ["name", "version"],
        ["seaway_model_versions.name", "seaway_model_versions.version"],
        name="fk_seaway_aliases_version",
        ondelete="CASCADE",
    ),
)

api_keys = Table(
    "seaway_api_keys",
    metadata,
    Column("key_id", String(16), primary_key=True),
    Column("name", String(200), nullable=True),
    Column("scope", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),  # SHA-256 hex; never the key
    Column("rate_limit", Float, nullable=True),  # requests per second; NULL: the server's default
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

batch_jobs = Table(
    "seaway_batch_jobs",
    metadata,
    Column("job_id", String(32), primary_key=True),
    Column("model_uri", Text, nullable=False),  # as asked: models:/fraud@production
    Column("model_name", String(128), nullable=False),
    Column("model_version", Integer, nullable=False),  # as resolved when the job started
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("status", String(16), nullable=False),
    Column("rows_in", BigInteger, nullable=False),
    Column("rows_out", BigInteger, nullable=False),
    Column("rows_rejected", BigInteger, nullable=False),
    Column("error", Text, nullable=True),
    Column("schedule", String(128), nullable=True),
    Column("created_by", String(128), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=True),
    Column("finished_at", DateTime(timezone=True), nullable=True),
    Column("heartbeat_at", DateTime(timezone=True), nullable=True),
    Column("duration_s", Float, nullable=True),  # running time summed over every attempt
)

batch_schedules = Table(
    "seaway_batch_schedules",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("cron", String(128), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("model_uri", Text, nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=False),
    Column("params", JSON, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(128), nullable=True),
)

#: One row per schedule occurrence that a scheduler claimed: the primary key is the lock, so two
#: schedulers can never both run one occurrence.
batch_runs = Table(
    "seaway_batch_runs",
    metadata,
    Column(
        "schedule",
        String(128),
        ForeignKey("seaway_batch_schedules.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("occurrence", DateTime(timezone=True), primary_key=True),
    Column("job_id", String(32), nullable=True),
    Column("claimed_at", DateTime(timezone=True), nullable=False),
    Column("claimed_by", String(200), nullable=False),
)

#: Alerts that fired or resolved (migration 0005), written by the server's alert evaluator.
alert_events = Table(
    "seaway_alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("model", String(128), nullable=False),
    Column("version", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # firing or resolved
    Column("value", Float, nullable=True),
    Column("threshold", Float, nullable=True),
    Column("message", Text, nullable=False),
    Column("time", DateTime(timezone=True), nullable=False),
    Index("ix_seaway_alert_events_model_time", "model", "time"),
    Index("ix_seaway_alert_events_time", "time"),
)

# ---- deployments (migration 0006): desired state that every server reconciles -----------------

#: A named endpoint over versions of one model. ``revision`` is its current (highest) revision;
#: what that revision says lives in ``seaway_deployment_revisions``. ``rollout_generation`` is the
#: last generation handed to its rollout record: kept when the record is cleared, so a generation is
#: never given twice and a stale compare-and-set can never match a newer rollout.
deployments = Table(
    "seaway_deployments",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("model", String(128), ForeignKey("seaway_models.name"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("rollout_generation", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_seaway_deployments_model", "model"),
)

#: Every change to a deployment is a new row here; rows are never edited.
deployment_revisions = Table(
    "seaway_deployment_revisions",
    metadata,
    Column(
        "deployment",
        String(128),
        ForeignKey("seaway_deployments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("model", String(128), nullable=False),
    Column("spec", JSON, nullable=False),
    Column("versions", JSON, nullable=False),  # every version the spec uses, numbers, sorted
    Column("actor", String(200), nullable=False),
    Column("message", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

#: The progressive rollout of a deployment, at most one: its state as the rollout logic keeps it.
deployment_rollouts = Table(
    "seaway_deployment_rollouts",
    metadata,
    Column(
        "deployment",
        String(128),
        ForeignKey("seaway_deployments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("revision", Integer, nullable=False),
    Column("state", JSON, nullable=False),
    Column("generation", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: The decision log: every rollout step advanced, held or rolled back, and every manual action.
deployment_decisions = Table(
    "seaway_deployment_decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "deployment",
        String(128),
        ForeignKey("seaway_deployments.name", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("revision", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("decision", JSON, nullable=False),
    Index("ix_seaway_deployment_decisions_deployment_id", "deployment", "id"),
)

#: Traffic counters of one revision as one server saw them, replaced at each flush.
deployment_stats = Table(
    "seaway_deployment_stats",
    metadata,
    Column(
        "deployment",
        String(128),
        ForeignKey("seaway_deployments.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("revision", Integer, primary_key=True, autoincrement=False),
    Column("server", String(200), primary_key=True),
    Column("stats", JSON, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

#: Leases: a decision that must be taken by one server at a time is taken by the holder of its
#: key's unexpired lease. The primary key is the lock.
leases = Table(
    "seaway_leases",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("acquired_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
)
