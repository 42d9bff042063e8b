"""Alembic environment: always run programmatically by ``seaway.registry.db.migrate``,
which passes an open connection inside its own (locked) transaction."""

from __future__ import annotations

from alembic import context

from seaway.registry.migrations import VERSION_TABLE
from seaway.registry.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,  # SQLite can only ALTER through table copies
)
with context.begin_transaction():
    context.run_migrations()
