"""Artifacts outlive what uses them: garbage collection spares uploads of unknown age, concurrent
fetches share one cache folder without pulling it from under each other, and a served version's
files survive its deletion (issue 9, items 10 and 11)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import fsspec
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
import seaway.registry.registry as registry_module
from seaway.packaging.reader import open_package
from seaway.registry import Registry
from seaway.registry.store import ArtifactStore


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[Registry]:
    """A registry whose artifacts live in fsspec's memory store (no modification times)."""
    root = f"memory://seaway-test-{tmp_path.name}"
    registry = Registry(f"sqlite:///{tmp_path / 'r.db'}", root, cache_dir=tmp_path / "cache")
    yield registry
    registry.close()
    fsspec.filesystem("memory").rm(root.removeprefix("memory://"), recursive=True)


def test_gc_keeps_an_upload_whose_age_the_store_cannot_tell(
    remote: Registry, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registered = remote.register(package, "fraud")
    in_flight = remote.store.upload(package, "fraud")  # a registration about to commit
    # the memory store, like S3 prefixes, gives package folders no time at all
    assert all(
        entry.get("type") == "directory" and "created" not in entry
        for entry in remote.store._fs.ls(remote.store._path + "/fraud", detail=True)
    )

    assert remote.collect_garbage() == []
    assert {e.uri for e in remote.store.entries()} == {registered.artifact_uri, in_flight}

    # its files' times decide: once they are old enough, the orphan goes
    later = registry_module._now() + timedelta(hours=2)
    monkeypatch.setattr(registry_module, "_now", lambda: later)
    assert remote.collect_garbage() == [in_flight]
    assert [e.uri for e in remote.store.entries()] == [registered.artifact_uri]


def test_an_upload_with_a_file_of_unknown_age_has_no_age(
    tmp_path: Path, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(f"memory://seaway-test-{tmp_path.name}")
    uri = store.upload(package, "fraud")
    fs = store._fs
    find = fs.find

    def find_without_times(path: str, **kwargs: object) -> dict[str, dict[str, object]]:
        found = find(path, **kwargs)
        return {
            name: {k: v for k, v in info.items() if k != "created"} for name, info in found.items()
        }

    def no_time(path: str) -> None:
        raise NotImplementedError

    monkeypatch.setattr(fs, "find", find_without_times)  # a store that gives files no time
    monkeypatch.setattr(fs, "modified", no_time)
    assert uri.startswith("memory://")
    try:
        [entry] = store.entries()
        assert entry.modified is None  # unknown: Registry.collect_garbage counts it as young
    finally:
        monkeypatch.undo()
        fs.rm(store._path, recursive=True)


def test_two_fetches_of_one_version_at_once_share_the_cache_folder(
    remote: Registry, package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """B misses the cache and starts downloading; A fetches the same version and starts using
    it; then B's download completes. B must not remove or replace the folder A is using."""
    record = remote.register(package, "fraud")
    download = remote.store.download
    b_downloading, a_using = threading.Event(), threading.Event()

    def slow_for_b(uri: str, dest: Path) -> None:
        download(uri, dest)
        if threading.current_thread().name == "B":
            b_downloading.set()
            assert a_using.wait(timeout=60)

    monkeypatch.setattr(remote.store, "download", slow_for_b)
    results: dict[str, Path | BaseException] = {}

    def fetch_b() -> None:
        try:
            results["B"] = remote.fetch(record)
        except BaseException as exc:  # handed to the test thread
            results["B"] = exc

    b = threading.Thread(target=fetch_b, name="B")
    b.start()
    try:
        assert b_downloading.wait(timeout=60)
        path_a = remote.fetch(record)  # A: downloads too (the cache is empty), and wins
        in_use = (path_a / "model" / "model.skops").stat().st_ino
        package_a = open_package(path_a, manifest_sha256=record.manifest_sha256)
    finally:
        a_using.set()
        b.join(timeout=60)
    assert results["B"] == path_a
    assert (path_a / "model" / "model.skops").stat().st_ino == in_use  # not replaced under A
    open_package(package_a.path, manifest_sha256=record.manifest_sha256)
    assert [p.name for p in (remote.cache_dir).iterdir()] == [
        record.manifest_sha256
    ]  # no leftovers


def test_a_served_version_deleted_with_force_stays_loadable(tmp_path: Path, package: Path) -> None:
    """The local store too hands out a snapshot in the cache, not its own folder, so a replica
    restart after ``seaway models delete --force`` still finds every file."""
    with Registry(
        f"sqlite:///{tmp_path / 'r.db'}", str(tmp_path / "artifacts"), cache_dir=tmp_path / "cache"
    ) as registry:
        record = registry.register(package, "fraud")
        registry.set_alias("fraud", "production", 1)
        served = registry.fetch(registry.resolve("models:/fraud@production"))
        assert not served.is_relative_to(tmp_path / "artifacts")
        registry.delete_version("fraud", 1, force=True)
        assert not registry.store.local_path(record.artifact_uri).exists()  # type: ignore[union-attr]
        again = open_package(served, manifest_sha256=record.manifest_sha256)  # a replica restart
        assert (
            seaway.load_model(again.path).predict(
                pd.DataFrame(np.zeros((1, 4)), columns=["age", "income", "score", "tenure"])
            )
            is not None
        )
