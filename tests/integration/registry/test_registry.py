"""The registry on SQLite and PostgreSQL: versions, aliases, deletion, lineage, failures."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.errors import ConflictError, InvalidURIError, NotFoundError, RegistryUnavailableError
from seaway.registry import Registry


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path


def test_versions_are_numbered_per_model(registry: Registry, package: Path) -> None:
    first = registry.register(
        package, "fraud", description="v1", tags={"team": "risk"}, metrics={"auc": 0.91}
    )
    second = registry.register(package, "fraud")
    other = registry.register(package, "churn")
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert first.uri == "models:/fraud/1"
    assert (
        first.description == "v1"
        and first.tags == {"team": "risk"}
        and first.metrics == {"auc": 0.91}
    )
    assert [m.name for m in registry.list_models()] == ["churn", "fraud"]
    model = registry.get_model("fraud")
    assert (model.latest_version, model.version_count) == (2, 2)
    assert [v.version for v in registry.list_versions("fraud")] == [1, 2]


def test_aliases_move_and_resolve(registry: Registry, package: Path) -> None:
    for _ in range(3):
        registry.register(package, "fraud")
    registry.set_alias("fraud", "production", 1)
    registry.set_alias("fraud", "staging", 3)
    assert registry.resolve("models:/fraud@production").version == 1
    registry.set_alias("fraud", "production", 2)
    assert registry.resolve("models:/fraud@production").version == 2
    assert registry.resolve("models:/fraud/latest").version == 3
    assert registry.resolve("models:/fraud/1").version == 1
    assert registry.get_version("fraud", 2).aliases == ("production",)
    assert registry.get_model("fraud").aliases == {"production": 2, "staging": 3}
    registry.delete_alias("fraud", "staging")
    with pytest.raises(NotFoundError, match="no alias 'staging'.*production"):
        registry.resolve("models:/fraud@staging")


def test_unknown_names_versions_and_aliases_are_named(registry: Registry, package: Path) -> None:
    registry.register(package, "fraud")
    with pytest.raises(NotFoundError, match=r"no model named 'nope'.*fraud"):
        registry.resolve("models:/nope/1")
    with pytest.raises(NotFoundError, match="no version 7 .*latest is 1"):
        registry.resolve("models:/fraud/7")
    with pytest.raises(NotFoundError, match="no version 9"):
        registry.set_alias("fraud", "production", 9)
    with pytest.raises(InvalidURIError, match="latest.*reserved"):
        registry.set_alias("fraud", "latest", 1)
    with pytest.raises(InvalidURIError, match="model name"):
        registry.register(package, "bad/name")


def test_delete_is_refused_while_aliased_unless_forced(registry: Registry, package: Path) -> None:
    first = registry.register(package, "fraud")
    registry.register(package, "fraud")
    registry.set_alias("fraud", "production", 1)
    with pytest.raises(ConflictError, match="production"):
        registry.delete_version("fraud", 1)
    registry.delete_version("fraud", 1, force=True)
    assert [v.version for v in registry.list_versions("fraud")] == [2]
    assert registry.get_model("fraud").aliases == {}
    assert registry.store.local_path(first.artifact_uri) is not None
    assert not registry.store.local_path(first.artifact_uri).exists()  # type: ignore[union-attr]
    # numbers are never reused: the next version is 3
    assert registry.register(package, "fraud").version == 3


def test_lineage_records_user_git_and_training_data(
    registry: Registry, tmp_path: Path, tabular
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    (repo / "train.py").write_text("print('hi')\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "train"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    frame, target = tabular
    import os

    cwd = os.getcwd()
    os.chdir(repo)
    try:
        record = seaway.log_model(
            LogisticRegression().fit(frame, target),
            "fraud",
            training_data="s3://data/train.parquet",
            registry=registry,
        )
    finally:
        os.chdir(cwd)
    assert record.lineage["git"]["commit"] == commit
    assert record.lineage["git"]["dirty"] is False
    assert record.lineage["training_data"] == "s3://data/train.parquet"
    assert record.lineage["user"]


def test_registering_a_folder_that_is_not_a_package_fails_clearly(
    registry: Registry, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(seaway.PackageIntegrityError, match="no manifest.json"):
        registry.register(tmp_path / "empty", "fraud")
    assert registry.list_models() == []


def test_a_failed_commit_removes_the_upload(registry: Registry, package: Path, monkeypatch) -> None:
    def boom(*args: object, **kwargs: object) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(registry, "_insert_version", boom)
    with pytest.raises(RuntimeError):
        registry.register(package, "fraud")
    assert registry.store.entries() == []


_CRASH = textwrap.dedent(
    """
    import os, sys
    from seaway.registry import Registry
    url, root, package = sys.argv[1:4]
    registry = Registry(url, root)
    registry._insert_version = lambda *a, **k: os._exit(3)  # die after the upload, before the commit
    registry.register(package, "fraud")
    """
)


def test_a_crash_mid_registration_leaves_no_version_and_gc_removes_the_orphan(
    registry: Registry, package: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CRASH, registry.url, registry.store.root, str(package)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert registry.list_models() == []
    [orphan] = registry.store.entries()
    assert registry.collect_garbage() == []  # too young: its registration might still be running
    assert registry.collect_garbage(older_than=timedelta(0)) == [orphan.uri]
    assert registry.store.entries() == []


_REGISTER_MANY = textwrap.dedent(
    """
    import sys
    from seaway.registry import Registry
    url, root, package, count = sys.argv[1:5]
    with Registry(url, root) as registry:
        for _ in range(int(count)):
            print(registry.register(package, "fraud").version)
    """
)


def test_concurrent_processes_get_distinct_version_numbers(
    registry: Registry, package: Path
) -> None:
    processes, each = 4, 5
    # a deleted latest version's number stays spent, for concurrent writers too (issue 10, item 11)
    registry.register(package, "fraud")
    registry.delete_version("fraud", 1)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                _REGISTER_MANY,
                registry.url,
                registry.store.root,
                str(package),
                str(each),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = [proc.communicate(timeout=240) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    numbers = sorted(int(line) for out, _ in outputs for line in out.split())
    assert numbers == list(range(2, processes * each + 2))
    assert [v.version for v in registry.list_versions("fraud")] == numbers
    assert len({v.artifact_uri for v in registry.list_versions("fraud")}) == processes * each


def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailableError, match=r"127\.0\.0\.1:1.*SEAWAY_REGISTRY_URL"):
        Registry("postgresql+psycopg://nobody@127.0.0.1:1/x", str(tmp_path / "artifacts"))


def test_a_remote_store_is_fetched_into_the_cache_and_verified(
    tmp_path: Path, package: Path
) -> None:
    root = f"memory://seaway-test-{tmp_path.name}"
    with Registry(f"sqlite:///{tmp_path / 'r.db'}", root, cache_dir=tmp_path / "cache") as registry:
        record = registry.register(package, "fraud")
        assert record.artifact_uri.startswith("memory://")
        model = seaway.load_model("models:/fraud/1", registry=registry)
        assert model.info.version == 1
        local = registry.fetch(record)
        assert local.parent == tmp_path / "cache"
        (local / "model" / "model.skops").write_bytes(b"tampered")
        with pytest.raises(seaway.PackageIntegrityError, match="model/model.skops"):
            seaway.load_model("models:/fraud/1", registry=registry)
