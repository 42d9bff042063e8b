"""The registry database: engines, schema migration, and translation of driver errors.

SQLite is the embedded default. Its transactions start with ``BEGIN IMMEDIATE`` (and wait up to
``busy_timeout``), which serialises writers across processes so version numbers never collide.
PostgreSQL serialises version allocation with a row lock and migrations with an advisory lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)

from seaway.errors import ConfigError, MissingDependencyError, RegistryUnavailableError
from seaway.registry.migrations import HEAD, VERSION_TABLE

SQLITE_BUSY_TIMEOUT_MS = 30_000
_MIGRATION_LOCK_KEY = 0x5EA_0A1


def safe_url(url: str) -> str:
    """The URL with any password hidden, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def create_registry_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(
            f"registry URL {url!r} is not a database URL; use sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST/DB (SEAWAY_REGISTRY_URL)"
        ) from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(parsed, pool_pre_ping=backend != "sqlite")
    except NoSuchModuleError as exc:
        raise ConfigError(
            f"registry URL {safe_url(url)}: unknown database dialect ({exc})"
        ) from exc
    except ModuleNotFoundError as exc:
        if backend == "postgresql":
            raise MissingDependencyError("psycopg", "postgres", "A PostgreSQL registry") from exc
        raise ConfigError(
            f"registry URL {safe_url(url)} needs a driver that is not installed: {exc}"
        ) from exc
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # let the "begin" hook emit BEGIN itself
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver failures into errors that say which database and what to check."""
    try:
        yield
    except OperationalError as exc:
        raise RegistryUnavailableError(
            f"cannot use the registry database at {safe_url(url)}: {_first_line(exc)}. "
            "Check that it is running and reachable, and SEAWAY_REGISTRY_URL"
        ) from exc
    except ProgrammingError as exc:
        raise RegistryUnavailableError(
            f"the registry database at {safe_url(url)} rejected a query ({_first_line(exc)}); "
            "is it a Seaway registry of a compatible version?"
        ) from exc


def _first_line(exc: DBAPIError) -> str:
    return str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)


def current_revision(conn: Connection) -> str | None:
    try:
        with conn.begin_nested():
            row = conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).first()
    except (OperationalError, ProgrammingError):
        return None  # no version table yet: a new database
    return None if row is None else str(row[0])


def migrate(engine: Engine) -> None:
    """Bring the schema to ``HEAD``; cheap when it is already there, safe when racing."""
    url = engine.url.render_as_string(hide_password=False)
    with translate_errors(url):
        with engine.connect() as conn:
            revision = current_revision(conn)
            conn.rollback()
        if revision == HEAD:
            return
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(
                    text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
                )
            revision = current_revision(conn)
            if revision == HEAD:
                return
            if revision is not None and not _is_known(revision):
                raise RegistryUnavailableError(
                    f"the registry database at {safe_url(url)} has schema revision {revision}, "
                    "newer than this Seaway knows; upgrade seaway"
                )
            config = Config()
            config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")


def _is_known(revision: str) -> bool:
    versions = Path(__file__).parent / "migrations" / "versions"
    return any(path.name.startswith(f"{revision}_") for path in versions.glob("*.py"))
