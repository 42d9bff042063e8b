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
