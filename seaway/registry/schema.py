"""The registry schema: where a database stands against this Seaway's migrations, and upgrades.

The embedded SQLite registry belongs to one installation, so :func:`check_schema` upgrades it on
open. A PostgreSQL registry is shared by servers and CLIs of possibly different Seaway versions: an
upgrade there changes the schema under every running server, so it happens only when someone runs
``seaway registry upgrade`` (:func:`upgrade`). Until then a newer Seaway refuses to use an older
schema, and an older Seaway a newer one, each saying what to run. An empty database (no Seaway
tables yet) has no older servers to break, so it is created on first use on either backend.
PostgreSQL serialises concurrent upgrades with an advisory lock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError, ProgrammingError

from seaway.errors import SchemaMismatchError
from seaway.registry.db import safe_url, translate_errors
from seaway.registry.migrations import HEAD, VERSION_TABLE

_MIGRATION_LOCK_KEY = 0x5EA_0A1
_MIGRATIONS = Path(__file__).parent / "migrations"


class SchemaState(StrEnum):
    CURRENT = "current"  # at this Seaway's head revision
    EMPTY = "empty"  # no Seaway schema yet
    BEHIND = "behind"  # an older revision: needs an upgrade
    AHEAD = "ahead"  # a revision this Seaway does not know: a newer Seaway upgraded it


@dataclass(frozen=True)
class SchemaStatus:
    url: str  # password hidden
    backend: str
    current: str | None
    head: str

    @property
    def state(self) -> SchemaState:
        if self.current == self.head:
            return SchemaState.CURRENT
        if self.current is None:
            return SchemaState.EMPTY
        return SchemaState.BEHIND if is_known(self.current) else SchemaState.AHEAD

    @property
    def upgrades_automatically(self) -> bool:
        """Whether opening a ``Registry`` upgrades this database by itself."""
        return self.backend == "sqlite" or self.state is SchemaState.EMPTY

    def to_dict(self) -> dict[str, str | None]:
        return {
            "url": self.url,
            "backend": self.backend,
            "current": self.current,
            "head": self.head,
            "state": self.state.value,
        }


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    except (OperationalError, ProgrammingError):
        return None  # no version table yet: a new database
    return None if row is None else str(row[0])


def is_known(revision: str) -> bool:
    return any(
        path.name.startswith(f"{revision}_") for path in (_MIGRATIONS / "versions").glob("*.py")
    )


def schema_status(engine: Engine) -> SchemaStatus:
    url = engine.url.render_as_string(hide_password=False)
    with translate_errors(url), engine.connect() as conn:
        revision = current_revision(conn)
        conn.rollback()
    return SchemaStatus(safe_url(url), engine.dialect.name, revision, HEAD)


def check_schema(engine: Engine) -> SchemaStatus:
    """What ``Registry()`` runs: upgrade where that is automatic, else refuse a mismatch clearly."""
    status = schema_status(engine)
    if status.state is SchemaState.CURRENT:
        return status
    if status.state is SchemaState.AHEAD:
        raise _ahead(status)
    if not status.upgrades_automatically:
        raise SchemaMismatchError(
            f"the registry database at {status.url} has schema revision {status.current}, older "
            f"than this Seaway's ({status.head}); a shared PostgreSQL registry is upgraded only on "
            "request: run 'seaway registry upgrade' (with SEAWAY_REGISTRY_URL pointing at it) "
            "once every server using it runs this Seaway or newer, or use the Seaway that "
            f"matches revision {status.current}",
            current=status.current,
            head=status.head,
        )
    upgrade(engine)
    return schema_status(engine)


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str | None]:
    """Migrate the schema to ``revision`` (the newest by default); the revisions before and after.

    Cheap when there is nothing to do, safe when several processes race (the loser finds the
    schema upgraded). Refuses a schema newer than this Seaway knows.
    """
    url = engine.url.render_as_string(hide_password=False)
    target = HEAD if revision == "head" else revision
    with translate_errors(url), engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY})
        before = current_revision(conn)
        if before == target:
            return before, before
        if before is not None and not is_known(before):
            raise _ahead(SchemaStatus(safe_url(url), engine.dialect.name, before, HEAD))
        config = Config()
        config.set_main_option("script_location", str(_MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        after = current_revision(conn)
    return before, after


def _ahead(status: SchemaStatus) -> SchemaMismatchError:
    return SchemaMismatchError(
        f"the registry database at {status.url} has schema revision {status.current}, newer than "
        f"this Seaway knows (its newest is {status.head}): a newer Seaway upgraded it; upgrade "
        "seaway (pip install -U seaway) to use it",
        current=status.current,
        head=status.head,
    )
