"""Registry transactions: reads never take SQLite's write lock, and a constraint lost to a
concurrent writer is a ConflictError (or retried), never a driver traceback (issue 9, item 14)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sqlalchemy import event, insert, text
from sqlalchemy.exc import IntegrityError

import seaway
from seaway.errors import ConflictError, RegistryUnavailableError
from seaway.registry import Registry
from seaway.registry import db as registry_db
from seaway.registry import tables as t
from seaway.registry.db import create_registry_engine, translate_errors


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path


@pytest.fixture
def locked_sqlite(
    tmp_path: Path, package: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    """A SQLite registry with one version, whose write lock another connection holds.

    The busy timeout is 0, so a transaction that wants the write lock fails at once instead of
    waiting: what a read would meet, were it to ask for the lock, is an error, not a delay.
    """
    path = tmp_path / "r.db"
    with Registry(f"sqlite:///{path}", str(tmp_path / "artifacts")) as setup:
        setup.register(package, "fraud")
        setup.set_alias("fraud", "production", 1)
    monkeypatch.setattr(registry_db, "SQLITE_BUSY_TIMEOUT_MS", 0)
    registry = Registry(f"sqlite:///{path}", str(tmp_path / "artifacts"))
    writer = sqlite3.connect(path, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        yield registry
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        registry.close()


def test_reads_do_not_take_the_sqlite_write_lock(locked_sqlite: Registry) -> None:
    registry = locked_sqlite
    assert [m.name for m in registry.list_models()] == ["fraud"]
    assert registry.get_model("fraud").aliases == {"production": 1}
    assert [v.version for v in registry.list_versions("fraud")] == [1]
    assert registry.get_version("fraud", 1).aliases == ("production",)
    assert registry.resolve("models:/fraud@production").version == 1
    assert registry.list_api_keys() == []
    assert registry.jobs.list() == [] and registry.schedules.list() == []
    # writes still take it, and so are refused while another writer holds it
    with pytest.raises(RegistryUnavailableError, match="locked"):
        registry.set_alias("fraud", "staging", 1)


def test_an_integrity_error_becomes_a_conflict_naming_the_constraint() -> None:
    with (
        pytest.raises(ConflictError, match="UNIQUE constraint failed") as info,
        translate_errors("sqlite:///x.db"),
    ):
        raise IntegrityError("INSERT ...", {}, Exception("UNIQUE constraint failed: t.k"))
    assert isinstance(info.value.__cause__, IntegrityError)


@pytest.mark.postgres
def test_an_alias_created_concurrently_is_moved_not_a_traceback(
    postgres_url: str, tmp_path: Path, package: Path
) -> None:
    """PostgreSQL does not serialise writers: between set_alias's UPDATE (no row yet) and its
    INSERT, another client creates the same alias. The insert's unique-key violation is retried
    (the retry's UPDATE moves the alias), not leaked."""
    with Registry(postgres_url, str(tmp_path / "artifacts")) as registry:
        registry.register(package, "fraud")
        registry.register(package, "fraud")
        other = create_registry_engine(postgres_url)
        raced: list[str] = []

        @event.listens_for(registry._engine, "before_cursor_execute")
        def _race(_conn, _cursor, statement: str, *_args: object) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO SEAWAY_ALIASES") and not raced:
                raced.append(statement)
                with other.begin() as conn:
                    conn.execute(
                        insert(t.aliases).values(
                            name="fraud",
                            alias="production",
                            version=1,
                            updated_at=seaway.registry.registry._now(),
                        )
                    )

        try:
            registry.set_alias("fraud", "production", 2)
        finally:
            event.remove(registry._engine, "before_cursor_execute", _race)
            other.dispose()
        assert raced  # the race did happen
        assert registry.get_model("fraud").aliases == {"production": 2}
        with registry._engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM seaway_aliases")).scalar() == 1
