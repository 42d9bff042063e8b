"""The registry database: engines, and translation of driver errors.

SQLite is the embedded default. Its write transactions start with ``BEGIN IMMEDIATE`` (and wait up
to ``busy_timeout``), which serialises writers across processes so version numbers never collide;
read transactions (connections carrying the :data:`READ_ONLY` execution option) start with a plain
deferred ``BEGIN``, so readers never queue behind a writer (WAL gives them a snapshot).
PostgreSQL serialises version allocation with a row lock. Schema migration lives in
``seaway.registry.schema``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
)

from seaway.errors import (
    ConfigError,
    ConflictError,
    MissingDependencyError,
    RegistryUnavailableError,
)

SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Execution option marking a connection whose transactions only read (SQLite: deferred BEGIN).
READ_ONLY = "seaway_read_only"


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
        if parsed.drivername.split("+", 1)[0] in ("postgres", "pg", "psql", "pgsql"):
            # Heroku-style and libpq-style URLs say "postgres"; SQLAlchemy only "postgresql"
            fixed = safe_url(url).replace(parsed.drivername, "postgresql+psycopg", 1)
            raise ConfigError(
                f"registry URL {safe_url(url)}: SQLAlchemy does not know the scheme "
                f"{parsed.drivername}://; write PostgreSQL URLs as {fixed}"
            ) from exc
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
        # a deferred BEGIN that later writes cannot wait for the lock (SQLITE_BUSY at once), so
        # only connections that promise to read get one
        read_only = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


@contextlib.contextmanager
def translate_errors(url: str) -> Iterator[None]:
    """Turn driver failures into errors that say which database and what to check."""
    try:
        yield
    except IntegrityError as exc:
        # a constraint lost to a concurrent writer (PostgreSQL does not serialise like SQLite)
        raise ConflictError(
            f"the registry changed while this operation ran ({_first_line(exc)}); "
            "check the current state and retry"
        ) from exc
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
    text = str(exc.orig).strip() if exc.orig is not None else str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
