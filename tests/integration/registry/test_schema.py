"""Schema upgrades: SQLite upgrades itself, a shared PostgreSQL registry only on request, and a
Seaway older or newer than the schema says so and what to run (issue 9, item 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import text

import seaway.registry.migrations as migrations
from seaway.cli.main import main
from seaway.errors import RegistryUnavailableError, SchemaMismatchError
from seaway.registry import Registry
from seaway.registry.db import create_registry_engine
from seaway.registry.schema import SchemaState, schema_status


def _at_revision(url: str, revision: str) -> None:
    engine = create_registry_engine(url)
    try:
        with engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(Path(migrations.__file__).parent))
            config.attributes["connection"] = conn
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def _revision(url: str) -> str | None:
    engine = create_registry_engine(url)
    try:
        return schema_status(engine).current
    finally:
        engine.dispose()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return (
        code,
        out if out.lstrip().startswith("{") else " ".join(out.split()),
        " ".join(err.split()),
    )


def test_an_older_schema_upgrades_itself_on_sqlite_and_only_on_request_on_postgres(
    registry_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEAWAY_REGISTRY_URL", registry_url)
    _at_revision(registry_url, "0002")
    code, out, _ = _cli(capsys, "registry", "status", "--json")
    found = json.loads(out)
    assert code == 0
    assert (found["current"], found["head"], found["state"]) == ("0002", migrations.HEAD, "behind")

    if registry_url.startswith("sqlite"):
        assert found["automatic_upgrade"] is True
        with Registry(registry_url, str(tmp_path / "artifacts")) as registry:
            assert registry.list_models() == []
        assert _revision(registry_url) == migrations.HEAD
        return

    assert found["automatic_upgrade"] is False
    # a newer Seaway leaves a shared schema alone: it says so, and what to run
    with pytest.raises(SchemaMismatchError, match=r"revision 0002, older.*seaway registry upgrade"):
        Registry(registry_url, str(tmp_path / "artifacts"))
    assert _revision(registry_url) == "0002"
    code, _, err = _cli(capsys, "models", "list")
    assert code == 1 and "seaway registry upgrade" in err and "Traceback" not in err

    code, out, _ = _cli(capsys, "registry", "upgrade")
    assert code == 0 and f"0002 -> {migrations.HEAD}" in out
    assert _revision(registry_url) == migrations.HEAD
    with Registry(registry_url, str(tmp_path / "artifacts")) as registry:
        assert registry.list_models() == []
    code, out, _ = _cli(capsys, "registry", "upgrade")
    assert code == 0 and "up to date" in out
    code, out, _ = _cli(capsys, "registry", "status")
    assert code == 0 and "up to date" in out and migrations.HEAD in out


def test_a_schema_newer_than_this_seaway_is_refused_on_both_backends(
    registry_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("SEAWAY_REGISTRY_URL", registry_url)
    Registry(registry_url, str(tmp_path / "artifacts")).close()
    engine = create_registry_engine(registry_url)
    with engine.begin() as conn:
        conn.execute(text(f"UPDATE {migrations.VERSION_TABLE} SET version_num = '9999'"))
    engine.dispose()

    with pytest.raises(SchemaMismatchError, match="revision 9999, newer.*upgrade seaway") as info:
        Registry(registry_url, str(tmp_path / "artifacts"))
    assert isinstance(info.value, RegistryUnavailableError)  # servers treat it as unreachable
    assert (info.value.current, info.value.head) == ("9999", migrations.HEAD)
    code, out, _ = _cli(capsys, "registry", "status", "--json")
    assert code == 0 and json.loads(out)["state"] == SchemaState.AHEAD.value
    code, _, err = _cli(capsys, "registry", "upgrade")
    assert code == 1 and "upgrade seaway" in err
    assert _revision(registry_url) == "9999"  # untouched


def test_an_empty_database_gets_the_schema_on_first_use(registry_url: str, tmp_path: Path) -> None:
    assert _revision(registry_url) is None
    with Registry(registry_url, str(tmp_path / "artifacts")) as registry:
        assert registry.list_models() == []
    assert _revision(registry_url) == migrations.HEAD
