"""Shared fixtures. Every test gets its own SEAWAY_HOME; registry fixtures run on SQLite and,
where SEAWAY_TEST_POSTGRES_URL is set (CI sets it), on a fresh PostgreSQL database per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seaway.config import Settings
from seaway.registry import Registry

POSTGRES_URL = os.environ.get("SEAWAY_TEST_POSTGRES_URL")
_SEAWAY_ENV = (
    "SEAWAY_HOME",
    "SEAWAY_REGISTRY_URL",
    "SEAWAY_ARTIFACT_ROOT",
    "SEAWAY_CACHE_DIR",
    "SEAWAY_CONFIG",
)


@pytest.fixture(autouse=True)
def seaway_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Isolate every test from the developer's environment and from each other."""
    for var in _SEAWAY_ENV:
        monkeypatch.delenv(var, raising=False)
    for var in [name for name in os.environ if name.startswith("SEAWAY_SERVE_")]:
        monkeypatch.delenv(var)
    home = tmp_path / "seaway-home"
    monkeypatch.setenv("SEAWAY_HOME", str(home))
    return home


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    if not POSTGRES_URL:
        pytest.skip(
            "SEAWAY_TEST_POSTGRES_URL is not set (CI sets it; locally point it at a PostgreSQL server)"
        )
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"seaway_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def registry_url(request: pytest.FixtureRequest, seaway_home: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{seaway_home / 'registry.db'}"


@pytest.fixture
def registry(
    registry_url: str, seaway_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    """A registry on each database backend; the environment points at it too (for the CLI)."""
    monkeypatch.setenv("SEAWAY_REGISTRY_URL", registry_url)
    settings = Settings.resolve()
    with Registry.from_settings(settings) as reg:
        yield reg


@pytest.fixture
def tabular() -> tuple[pd.DataFrame, np.ndarray]:
    """A small binary classification problem with named float features."""
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=["age", "income", "score", "tenure"])
    target = ((frame["age"] + 0.5 * frame["score"]) > 0).astype(np.int64).to_numpy()
    return frame, target
