"""`--engine ray` without a running Ray: the engine starts its own instance and always stops it.

Kept apart from test_ray_engine.py, whose module-wide Ray instance would be used instead.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray
import raycases

import seaway
from seaway.batch.local import WorkerSpec
from seaway.batch.ray_engine import run_ray
from seaway.errors import PackageIntegrityError

pytestmark = pytest.mark.slow  # each test starts Ray actors or worker processes


@pytest.fixture
def registry() -> Iterator[seaway.Registry]:
    """On SQLite only: the engines are under test here, not the databases."""
    with seaway.Registry.from_settings() as reg:
        yield reg


def test_the_engine_stops_the_ray_it_started_even_on_errors(
    registry: seaway.Registry, tmp_path: Path
) -> None:
    assert not ray.is_initialized()
    raycases.register_model(registry)
    record = registry.resolve("models:/churn/1")
    spec = WorkerSpec(
        package_path=str(registry.fetch(record)),
        manifest_sha256="0" * 64,  # not the package's: every actor fails to load it
        trusted=False,
        model_name=record.name,
        model_version=record.version,
        keep=(),
        proba=False,
        features=(),
        columns=tuple(raycases.FEATURES),
        output_url=str(tmp_path / "out"),
        output_format="parquet",
        on_error="skip",
    )
    heard: list[object] = []
    sigterm = signal.getsignal(signal.SIGTERM)

    with pytest.raises(PackageIntegrityError):
        run_ray(iter([]), spec, 1, lambda *args: heard.append(args))

    assert heard == []
    assert not ray.is_initialized()
    assert raycases.ray_processes_gone(os.getpid()) == []
    assert signal.getsignal(signal.SIGTERM) is sigterm  # ray.init's own handler is gone
