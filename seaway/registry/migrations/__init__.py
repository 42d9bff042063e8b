"""Alembic migrations of the registry schema. ``HEAD`` must name the newest revision."""

HEAD = "0006"
VERSION_TABLE = "seaway_alembic_version"
