"""Deployments as durable desired state in the registry (issue 12, item 1), on SQLite and
PostgreSQL: numbered revisions that are never edited, refusals that name what is wrong, concurrent
appliers, versions and models protected while a deployment uses them, and migration 0006."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sklearn.linear_model import LogisticRegression
from sqlalchemy import inspect, select

import seaway
import seaway.registry.migrations as migrations
from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.registry import Registry
from seaway.registry import tables as t
from seaway.registry.db import create_registry_engine
from seaway.registry.deployments import Deployment, Revision
from seaway.registry.schema import current_revision, upgrade

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
NEW_TABLES = {
    "seaway_deployments",
    "seaway_deployment_revisions",
    "seaway_deployment_rollouts",
    "seaway_deployment_decisions",
    "seaway_deployment_stats",
    "seaway_leases",
}


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path


@pytest.fixture
def fraud(registry: Registry, package: Path) -> Registry:
    """A registry with model fraud at versions 1, 2 and 4 (3 deleted)."""
    for _ in range(4):
        registry.register(package, "fraud")
    registry.delete_version("fraud", 3)
    return registry


def _spec(*routes: tuple[int, float], **extra: Any) -> dict[str, Any]:
    return {
        "name": "fraud-prod",
        "model": "fraud",
        "routes": [{"version": v, "weight": w} for v, w in routes],
        **extra,
    }


def _clock(start: datetime = T0) -> Any:
    ticks = iter(range(10_000))
    return lambda: start + timedelta(minutes=next(ticks))


def test_every_change_is_a_new_revision_and_none_is_edited(fraud: Registry) -> None:
    store = fraud.deployments
    store.clock = _clock()
    first = store.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
    second = store.apply(
        "fraud-prod", "fraud", _spec((1, 90), (2, 10)), [2, 1, 2], actor="key:k1", message="canary"
    )
    third = store.apply("fraud-prod", "fraud", _spec((2, 100)), [2], actor="user:bo")
    assert [r.revision for r in (first, second, third)] == [1, 2, 3]
    assert second.versions == (1, 2)  # distinct, sorted
    assert (second.actor, second.message, first.message) == ("key:k1", "canary", "apply")

    history = store.history("fraud-prod")
    assert history == [third, second, first]  # newest first, stored whole
    assert store.history("fraud-prod", limit=2) == [third, second]
    assert store.revision("fraud-prod", 1) == first
    assert store.revision("fraud-prod", 1).spec == _spec((1, 100))  # as first applied
    assert first.created_at == T0 and first.created_at.tzinfo is not None

    current = store.get("fraud-prod")
    assert current == Deployment(
        name="fraud-prod",
        model="fraud",
        revision=3,
        spec=_spec((2, 100)),
        versions=(2,),
        created_at=T0,  # when it was first applied
        updated_at=third.created_at,
        actor="user:bo",
    )
    assert current.to_dict()["versions"] == [2]
    assert store.list() == [current]
    assert store.snapshot() == [(current, None)]


def test_a_spec_is_stored_as_plain_json(fraud: Registry) -> None:
    spec = {"routes": ({"version": np.int64(1), "weight": 100.0},), "ab": {"alpha": float("nan")}}
    applied = fraud.deployments.apply("fraud-prod", "fraud", spec, [1], actor="user:ana")
    stored = fraud.deployments.revision("fraud-prod", 1)
    assert applied == stored
    assert stored.spec == {"routes": [{"version": 1, "weight": 100.0}], "ab": {"alpha": None}}
    with pytest.raises(InvalidInputError, match=r"deployment spec\.when: a datetime is not JSON"):
        fraud.deployments.apply("fraud-prod", "fraud", {"when": T0}, [1], actor="user:ana")


def test_what_is_wrong_is_refused_by_name_and_nothing_is_stored(fraud: Registry) -> None:
    store = fraud.deployments
    with pytest.raises(NotFoundError, match=r"model fraud has no version 9 \(versions: 1, 2, 4\)"):
        store.apply("fraud-prod", "fraud", _spec((1, 90), (9, 10)), [1, 9], actor="user:ana")
    with pytest.raises(NotFoundError, match=r"model fraud has no version 3 "):  # deleted
        store.apply("fraud-prod", "fraud", _spec((3, 100)), [3], actor="user:ana")
    with pytest.raises(NotFoundError, match=r"no model named 'churn'.*registered models: fraud"):
        store.apply("fraud-prod", "churn", _spec((1, 100)), [1], actor="user:ana")
    with pytest.raises(InvalidInputError, match=r"not 'prod'; resolve aliases first"):
        store.apply("fraud-prod", "fraud", _spec((1, 100)), [1, "prod"], actor="user:ana")  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="at least one version"):
        store.apply("fraud-prod", "fraud", _spec(), [], actor="user:ana")
    with pytest.raises(InvalidInputError, match="deployment name 'fraud prod' is not valid"):
        store.apply("fraud prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
    with pytest.raises(
        NotFoundError, match=r"no deployment named fraud-prod \(there are none yet\)"
    ):
        store.get("fraud-prod")
    assert store.list() == []

    store.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
    with pytest.raises(
        NotFoundError, match=r"no deployment named fraud \(deployments: fraud-prod\)"
    ):
        store.history("fraud")
    with pytest.raises(NotFoundError, match=r"fraud-prod has no revision 7 \(.*1 to 1\)"):
        store.revision("fraud-prod", 7)


def test_a_deployments_model_cannot_change(fraud: Registry, package: Path) -> None:
    fraud.register(package, "churn")
    fraud.deployments.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
    with pytest.raises(ConflictError, match="serves model fraud, not churn.*cannot change"):
        fraud.deployments.apply("fraud-prod", "churn", _spec((1, 100)), [1], actor="user:ana")
    assert fraud.deployments.get("fraud-prod").revision == 1


def test_expect_revision_refuses_a_change_made_since_it_was_read(fraud: Registry) -> None:
    store = fraud.deployments
    with pytest.raises(ConflictError, match="does not exist"):
        store.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="a", expect_revision=2)
    store.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="a", expect_revision=0)
    store.apply("fraud-prod", "fraud", _spec((2, 100)), [2], actor="b", expect_revision=1)
    with pytest.raises(
        ConflictError,
        match="deployment fraud-prod is at revision 2, not 1: someone changed it; look and retry",
    ):
        store.apply("fraud-prod", "fraud", _spec((4, 100)), [4], actor="a", expect_revision=1)
    with pytest.raises(ConflictError, match="at revision 2, not 0"):
        store.apply("fraud-prod", "fraud", _spec((4, 100)), [4], actor="a", expect_revision=0)
    assert [r.revision for r in store.history("fraud-prod")] == [2, 1]


def test_concurrent_appliers_never_lose_a_revision(fraud: Registry) -> None:
    per_thread = 6
    start = threading.Barrier(2)
    made: list[int] = []
    errors: list[BaseException] = []

    def apply(actor: str, version: int) -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                made.append(
                    fraud.deployments.apply(
                        "fraud-prod", "fraud", _spec((version, 100)), [version], actor=actor
                    ).revision
                )
        except BaseException as exc:  # reported below, with the thread's failure
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(f"user:{v}", v)) for v in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(made) == list(range(1, 2 * per_thread + 1))  # distinct, none lost
    history = fraud.deployments.history("fraud-prod")
    assert [r.revision for r in history] == list(range(2 * per_thread, 0, -1))
    assert sorted(r.actor for r in history) == ["user:1"] * per_thread + ["user:2"] * per_thread


def test_a_version_in_use_cannot_be_deleted_even_by_force(fraud: Registry) -> None:
    store = fraud.deployments
    spec = _spec((1, 100), shadow={"version": 4})
    store.apply("fraud-prod", "fraud", spec, [1, 4], actor="user:ana")
    store.apply("fraud-shadow", "fraud", _spec((1, 100)), [1], actor="user:ana")
    fraud.set_alias("fraud", "production", 1)
    for version, users in (
        (1, "deployments fraud-prod (revision 1), fraud-shadow (revision 1)"),
        (4, "deployment fraud-prod (revision 1)"),  # a shadow counts
    ):
        expected = f"version {version} of model fraud is used by {users}: change or delete the "
        with pytest.raises(ConflictError, match=re.escape(expected + "deployment first")):
            fraud.delete_version("fraud", version, force=True)
    with pytest.raises(
        ConflictError, match=r"model fraud is used by deployments fraud-prod \(revision 1\)"
    ):
        fraud.delete_model("fraud", force=True)
    assert [v.version for v in fraud.list_versions("fraud")] == [1, 2, 4]

    # the deployment moves off version 4: an older revision using it does not hold it
    store.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
    assert fraud.delete_version("fraud", 4).version == 4
    store.delete("fraud-prod", actor="user:ana")
    store.delete("fraud-shadow", actor="user:ana")
    assert fraud.delete_model("fraud", force=True).name == "fraud"


def test_deleting_a_deployment_takes_everything_of_it(fraud: Registry) -> None:
    store = fraud.deployments
    store.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
    store.apply("fraud-prod", "fraud", _spec((1, 90), (2, 10)), [1, 2], actor="user:ana")
    store.apply("other", "fraud", _spec((1, 100)), [1], actor="user:ana")
    store.set_rollout("fraud-prod", 2, {"phase": "progressing"})
    store.record_decision("fraud-prod", 2, {"action": "start"}, actor="user:ana")
    store.put_stats("fraud-prod", 2, "server-a", {"arms": {}})
    deleted = store.delete("fraud-prod", actor="user:ana")
    assert (deleted.name, deleted.revision) == ("fraud-prod", 2)
    with pytest.raises(NotFoundError, match="no deployment named fraud-prod"):
        store.get("fraud-prod")
    with pytest.raises(NotFoundError, match="no deployment named fraud-prod"):
        store.delete("fraud-prod", actor="user:ana")
    engine = fraud._engine
    with engine.connect() as conn:
        for table in (
            t.deployment_revisions,
            t.deployment_rollouts,
            t.deployment_decisions,
            t.deployment_stats,
        ):
            left = set(conn.execute(select(table.c.deployment)).scalars())
            assert left <= {"other"}, table.name
    # applied again, it starts over
    again = store.apply("fraud-prod", "fraud", _spec((2, 100)), [2], actor="user:ana")
    assert again.revision == 1 and store.rollout("fraud-prod") is None
    assert [d.name for d in store.list()] == ["fraud-prod", "other"]


def test_revisions_are_frozen(fraud: Registry) -> None:
    revision = fraud.deployments.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="a")
    assert isinstance(revision, Revision)
    with pytest.raises(AttributeError):
        revision.revision = 5  # type: ignore[misc]


# ---- migration 0006 ----------------------------------------------------------------------------


def _alembic(url: str, action: str, revision: str) -> None:
    engine = create_registry_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(Path(migrations.__file__).parent))
            config.attributes["connection"] = conn
            getattr(command, action)(config, revision)
    finally:
        engine.dispose()


def _state(url: str) -> tuple[str | None, set[str]]:
    engine = create_registry_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn), set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_a_registry_with_models_at_0005_upgrades_and_reverses(
    registry_url: str, tmp_path: Path, package: Path
) -> None:
    root = str(tmp_path / "artifacts")
    with Registry(registry_url, root) as registry:
        registry.register(package, "fraud")
        registry.set_alias("fraud", "production", 1)
        registry.deployments.apply("gone", "fraud", _spec((1, 100)), [1], actor="user:ana")
    _alembic(registry_url, "downgrade", "0005")  # 0006 reverses: its tables go, models stay
    revision, tables = _state(registry_url)
    assert revision == "0005" and not NEW_TABLES & tables and "seaway_models" in tables

    engine = create_registry_engine(registry_url)
    try:  # as the owner of a shared registry would (SQLite would also do it on open)
        assert upgrade(engine) == ("0005", migrations.HEAD)
    finally:
        engine.dispose()
    assert _state(registry_url) == (migrations.HEAD, tables | NEW_TABLES)
    with Registry(registry_url, root) as registry:
        assert registry.get_model("fraud").aliases == {"production": 1}
        assert registry.deployments.list() == []
        registry.deployments.apply("fraud-prod", "fraud", _spec((1, 100)), [1], actor="user:ana")
        assert registry.deployments.get("fraud-prod").versions == (1,)
        with registry._engine.connect() as conn:
            differences = [
                d
                for d in compare_metadata(MigrationContext.configure(conn), t.metadata)
                if any(name in repr(d) for name in NEW_TABLES)
            ]
        assert differences == []
