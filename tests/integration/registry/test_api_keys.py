"""API keys in the registry, on SQLite and PostgreSQL: create, list, revoke, storage, migration."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, insert, inspect, select

import seaway.registry.migrations as migrations
from seaway import apikeys
from seaway.apikeys import ApiKey, Scope, hash_api_key, parse_api_key
from seaway.errors import InvalidInputError, NotFoundError, SchemaMismatchError
from seaway.registry import Registry
from seaway.registry import tables as t
from seaway.registry.db import create_registry_engine
from seaway.registry.lineage import current_user
from seaway.registry.schema import current_revision, upgrade

KEY = re.compile(r"sw_([a-z0-9]{8})_[A-Za-z0-9_-]{43}")


@pytest.fixture
def engine(registry: Registry) -> Iterator[Engine]:
    """A second, plain engine on the registry's database, to read the table as it is stored."""
    engine = create_registry_engine(registry.url)
    yield engine
    engine.dispose()


def test_create_returns_the_record_and_the_key_once(registry: Registry) -> None:
    before = datetime.now(UTC)
    record, key = registry.create_api_key("predict", name="  fraud batch job ", rate_limit=25)
    match = KEY.fullmatch(key)
    assert match is not None, key
    assert record.key_id == match.group(1) == parse_api_key(key)
    assert record.scope is Scope.PREDICT
    assert record.name == "fraud batch job"
    assert record.rate_limit == 25.0
    assert record.created_by == current_user()
    assert before - timedelta(seconds=1) <= record.created_at <= datetime.now(UTC)
    assert record.created_at.tzinfo is not None
    assert record.revoked_at is None and not record.revoked
    assert record.key_hash == hashlib.sha256(key.encode()).hexdigest() == hash_api_key(key)
    assert record.matches(key) and not record.matches(key + "x")
    # the record never carries the key; its hash stays out of repr and JSON
    assert key not in repr(record) and record.key_hash not in repr(record)
    assert set(record.to_dict()) == {
        "key_id",
        "name",
        "scope",
        "rate_limit",
        "created_at",
        "created_by",
        "revoked",
        "revoked_at",
    }
    assert registry.get_api_key(record.key_id) == record


def test_admin_keys_and_explicit_creator(registry: Registry) -> None:
    record, key = registry.create_api_key(Scope.ADMIN, created_by="ci-pipeline")
    assert (record.scope, record.name, record.rate_limit, record.created_by) == (
        Scope.ADMIN,
        None,
        None,
        "ci-pipeline",
    )
    other, other_key = registry.create_api_key("admin")
    assert other.key_id != record.key_id and other_key != key


def test_only_the_hash_is_stored(registry: Registry, engine: Engine) -> None:
    record, key = registry.create_api_key("predict", name="stored")
    secret = key.split("_", 2)[2]
    with engine.connect() as conn:
        rows = conn.execute(select(t.api_keys)).mappings().all()
    [row] = rows
    assert row["key_id"] == record.key_id
    assert row["key_hash"] == hashlib.sha256(key.encode("utf-8")).hexdigest()
    for column, value in row.items():
        assert key not in str(value) and secret not in str(value), column


def test_list_revoke_and_active_keys(registry: Registry) -> None:
    assert registry.list_api_keys() == [] and registry.active_api_keys() == []
    first, _ = registry.create_api_key("predict", name="first")
    second, second_key = registry.create_api_key("admin", name="second")
    third, _ = registry.create_api_key("predict", name="third", rate_limit=0.5)
    assert [k.key_id for k in registry.list_api_keys()] == [
        first.key_id,
        second.key_id,
        third.key_id,
    ]

    revoked = registry.revoke_api_key(second.key_id)
    assert revoked.key_id == second.key_id and revoked.revoked
    assert revoked.revoked_at is not None and revoked.revoked_at >= second.created_at
    assert [k.key_id for k in registry.list_api_keys()] == [first.key_id, third.key_id]
    assert [k.key_id for k in registry.list_api_keys(include_revoked=True)] == [
        first.key_id,
        second.key_id,
        third.key_id,
    ]
    active = registry.active_api_keys()
    assert [(k.key_id, k.key_hash, k.rate_limit) for k in active] == [
        (first.key_id, first.key_hash, None),
        (third.key_id, third.key_hash, 0.5),
    ]
    assert not any(k.matches(second_key) for k in active)
    # idempotent: revoking again changes nothing, the first revocation time stays
    assert registry.revoke_api_key(second.key_id) == revoked
    assert registry.get_api_key(second.key_id) == revoked
    # a leaked key may be all one has: the whole key names its id
    assert registry.revoke_api_key(second_key) == revoked


def test_unknown_key_ids_are_named(registry: Registry) -> None:
    registry.create_api_key("predict")
    with pytest.raises(NotFoundError, match=r"no API key with id 'nope1234'.*seaway keys list"):
        registry.revoke_api_key("nope1234")
    with pytest.raises(NotFoundError, match="no API key with id 'nope1234'"):
        registry.get_api_key("nope1234")
    _, key = apikeys.new_api_key()
    with pytest.raises(NotFoundError) as caught:
        registry.revoke_api_key(key)  # well-formed, but never stored
    with pytest.raises(NotFoundError) as caught_long:
        registry.revoke_api_key(key[:-1])  # not even well-formed
    for error in (caught.value, caught_long.value):
        assert key.split("_", 2)[2][:20] not in str(error)  # no secret in the message
    assert len(registry.active_api_keys()) == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scope": "read"}, r"unknown API key scope 'read'; use one of: predict, admin"),
        ({"scope": "Predict"}, r"scope 'Predict'.*predict, admin"),
        ({"scope": "predict", "rate_limit": 0}, "rate limit 0 must be a positive number"),
        ({"scope": "predict", "rate_limit": -2.5}, "rate limit -2.5 must be a positive number"),
        ({"scope": "predict", "rate_limit": float("inf")}, "rate limit inf"),
        ({"scope": "predict", "rate_limit": float("nan")}, "rate limit nan"),
        ({"scope": "predict", "name": "   "}, "name '   ' must be 1 to 200 characters"),
        ({"scope": "predict", "name": "x" * 201}, "must be 1 to 200 characters"),
        ({"scope": "predict", "created_by": "u" * 129}, "longer than 128 characters"),
    ],
)
def test_bad_arguments_are_refused_and_store_nothing(
    registry: Registry, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        registry.create_api_key(**kwargs)  # type: ignore[arg-type]
    assert registry.list_api_keys(include_revoked=True) == []


def test_a_taken_key_id_is_drawn_again(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    first, _ = registry.create_api_key("predict")
    draws = iter(
        [
            (first.key_id, f"sw_{first.key_id}_{'a' * 43}"),  # id taken: must be redrawn
            ("zzzz9999", f"sw_zzzz9999_{'b' * 43}"),
        ]
    )
    monkeypatch.setattr(apikeys, "new_api_key", lambda: next(draws))
    second, key = registry.create_api_key("admin", name="second")
    assert (second.key_id, key) == ("zzzz9999", f"sw_zzzz9999_{'b' * 43}")
    assert registry.get_api_key(first.key_id) == first  # untouched
    assert [k.key_id for k in registry.list_api_keys()] == [first.key_id, "zzzz9999"]


# ---- migration ---------------------------------------------------------------------------------


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


def _open_older(url: str, root: Path) -> Registry:
    """Open a registry whose schema is older: by itself on SQLite, after an upgrade on PostgreSQL."""
    if url.startswith("postgresql"):
        with pytest.raises(SchemaMismatchError, match="seaway registry upgrade"):
            Registry(url, str(root))
        engine = create_registry_engine(url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    return Registry(url, str(root))


def _state(url: str) -> tuple[str | None, set[str]]:
    engine = create_registry_engine(url)
    try:
        with engine.connect() as conn:
            return current_revision(conn), set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_a_registry_from_before_api_keys_upgrades_and_keeps_its_models(
    registry_url: str, tmp_path: Path
) -> None:
    _alembic(registry_url, "upgrade", "0001")
    assert _state(registry_url) == (
        "0001",
        {"seaway_alembic_version", "seaway_models", "seaway_model_versions", "seaway_aliases"},
    )
    engine = create_registry_engine(registry_url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(t.models).values(
                name="fraud",
                description="old",
                tags={"team": "risk"},
                created_at=now,
                updated_at=now,
            )
        )
    engine.dispose()

    with _open_older(registry_url, tmp_path / "artifacts") as registry:
        assert _state(registry_url)[0] == migrations.HEAD
        [model] = registry.list_models()
        assert (model.name, model.description, model.tags) == ("fraud", "old", {"team": "risk"})
        record, key = registry.create_api_key("predict")
        assert registry.active_api_keys()[0].matches(key)

    # a second open finds the schema current; the key is still there
    with Registry(registry_url, str(tmp_path / "artifacts")) as registry:
        assert [k.key_id for k in registry.list_api_keys()] == [record.key_id]

    # and the migrations reverse: down to 0001 drops the keys table (and later ones), not the models
    _alembic(registry_url, "downgrade", "0001")
    revision, tables = _state(registry_url)
    assert revision == "0001" and "seaway_api_keys" not in tables and "seaway_models" in tables
    with _open_older(registry_url, tmp_path / "artifacts") as registry:
        assert registry.list_api_keys() == [] and len(registry.list_models()) == 1


def test_records_are_frozen(registry: Registry) -> None:
    record, _ = registry.create_api_key("predict")
    assert isinstance(record, ApiKey)
    with pytest.raises(AttributeError):
        record.scope = Scope.ADMIN  # type: ignore[misc]


def test_a_registry_from_before_batch_jobs_upgrades_and_reverses(
    registry_url: str, tmp_path: Path
) -> None:
    batch_tables = {"seaway_batch_jobs", "seaway_batch_schedules", "seaway_batch_runs"}
    _alembic(registry_url, "upgrade", "0002")
    with _open_older(registry_url, tmp_path / "artifacts") as registry:
        # upgraded on open (or by hand); go back to 0002 with a key in place to upgrade for real
        record, _ = registry.create_api_key("admin")
    _alembic(registry_url, "downgrade", "0002")
    revision, tables = _state(registry_url)
    assert revision == "0002" and not batch_tables & tables and "seaway_api_keys" in tables

    with _open_older(registry_url, tmp_path / "artifacts") as registry:
        later = {"seaway_version_counters", "seaway_alert_events"}  # 0004, 0005
        later |= {"seaway_leases"} | {
            f"seaway_deployment{s}"
            for s in ("s", "_revisions", "_rollouts", "_decisions", "_stats")
        }  # 0006
        assert _state(registry_url) == (migrations.HEAD, tables | batch_tables | later)
        assert [k.key_id for k in registry.list_api_keys()] == [record.key_id]
        assert registry.jobs.list() == [] and registry.schedules.list() == []
