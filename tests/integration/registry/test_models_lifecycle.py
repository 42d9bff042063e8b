"""Version numbers that are never reused, deleting whole models, and model-level metadata, on
SQLite and PostgreSQL (issue 10, items 11 and 12)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from alembic import command
from alembic.config import Config
from sklearn.linear_model import LogisticRegression

import seaway
import seaway.registry.migrations as migrations
from seaway.errors import ConflictError, NotFoundError
from seaway.registry import Registry
from seaway.registry.db import create_registry_engine
from seaway.registry.schema import upgrade


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path


def test_deleting_the_latest_version_does_not_free_its_number(
    registry: Registry, package: Path
) -> None:
    for _ in range(2):
        registry.register(package, "fraud")
    registry.delete_version("fraud", 2)
    assert registry.register(package, "fraud").version == 3
    registry.delete_version("fraud", 3)
    registry.delete_version("fraud", 1)  # no versions left at all
    assert registry.get_model("fraud").latest_version is None
    assert registry.register(package, "fraud").version == 4
    assert registry.register(package, "churn").version == 1  # per model


def test_a_deleted_model_registered_again_continues_its_numbers(
    registry: Registry, package: Path
) -> None:
    for _ in range(2):
        registry.register(package, "fraud")
    registry.delete_model("fraud")
    assert registry.register(package, "fraud").version == 3


def test_the_migration_starts_counters_at_the_highest_existing_version(
    registry_url: str, tmp_path: Path, package: Path
) -> None:
    with Registry(registry_url, str(tmp_path / "artifacts")) as registry:
        for _ in range(2):
            registry.register(package, "fraud")
    engine = create_registry_engine(registry_url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(Path(migrations.__file__).parent))
            config.attributes["connection"] = conn
            command.downgrade(config, "0003")
        assert upgrade(engine) == ("0003", migrations.HEAD)
    finally:
        engine.dispose()
    with Registry(registry_url, str(tmp_path / "artifacts")) as registry:
        registry.delete_version("fraud", 2)
        assert registry.register(package, "fraud").version == 3


def test_a_model_is_deleted_whole_refused_while_aliased_unless_forced(
    registry: Registry, package: Path
) -> None:
    first = registry.register(package, "fraud")
    registry.register(package, "fraud")
    registry.register(package, "churn")
    registry.set_alias("fraud", "production", 1)
    registry.set_alias("fraud", "staging", 2)
    with pytest.raises(ConflictError, match=r"production -> 1, staging -> 2.*--force"):
        registry.delete_model("fraud")
    assert registry.get_model("fraud").version_count == 2  # nothing was deleted
    removed = registry.delete_model("fraud", force=True)
    assert removed.aliases == {"production": 1, "staging": 2}
    assert removed.version_count == 2
    assert [m.name for m in registry.list_models()] == ["churn"]
    with pytest.raises(NotFoundError, match="no model named 'fraud'"):
        registry.get_model("fraud")
    local = registry.store.local_path(first.artifact_uri)
    assert local is not None and not local.exists()
    with pytest.raises(NotFoundError, match="no model named 'nope'.*churn"):
        registry.delete_model("nope")


def test_delete_version_force_reports_the_aliases_it_removed(
    registry: Registry, package: Path
) -> None:
    registry.register(package, "fraud")
    registry.set_alias("fraud", "production", 1)
    registry.set_alias("fraud", "canary", 1)
    assert registry.delete_version("fraud", 1, force=True).aliases == ("canary", "production")


def test_model_description_and_tags_are_set_at_registration_and_updated(
    registry: Registry, package: Path
) -> None:
    version = registry.register(
        package,
        "fraud",
        description="v1 only",
        tags={"run": "a"},
        model_description="card fraud scoring",
        model_tags={"team": "risk", "tier": "1"},
    )
    model = registry.get_model("fraud")
    assert (model.description, model.tags) == ("card fraud scoring", {"team": "risk", "tier": "1"})
    assert (version.description, version.tags) == ("v1 only", {"run": "a"})
    registry.register(package, "fraud", model_tags={"tier": "2"})  # merged, description kept
    assert registry.get_model("fraud").tags == {"team": "risk", "tier": "2"}
    assert registry.get_model("fraud").description == "card fraud scoring"

    updated = registry.update_model(
        "fraud", description="fraud v2", tags={"owner": "ana"}, remove_tags=["tier"]
    )
    assert (updated.description, updated.tags) == ("fraud v2", {"team": "risk", "owner": "ana"})
    assert registry.get_version("fraud", 1).tags == {"run": "a"}  # versions keep their own
    with pytest.raises(NotFoundError, match="no model named 'nope'"):
        registry.update_model("nope", description="x")


def test_log_model_sets_model_level_description_and_tags(
    registry: Registry, tabular: tuple[pd.DataFrame, np.ndarray]
) -> None:
    frame, target = tabular
    seaway.log_model(
        LogisticRegression().fit(frame, target),
        "fraud",
        sample_input=frame.head(),
        description="this version",
        model_description="the fraud model",
        model_tags={"team": "risk"},
        registry=registry,
    )
    model = registry.get_model("fraud")
    assert (model.description, model.tags) == ("the fraud model", {"team": "risk"})
    assert registry.get_version("fraud", 1).description == "this version"


def test_a_missing_alias_says_how_to_set_it(registry: Registry, package: Path) -> None:
    registry.register(package, "fraud")
    with pytest.raises(NotFoundError, match=r"seaway models alias fraud production 1"):
        registry.resolve("models:/fraud@production")
