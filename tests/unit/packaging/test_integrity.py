"""A package is verified file by file before anything loads it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import seaway
from seaway.errors import PackageIntegrityError, PackagingError
from seaway.runtime import load_package


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    return seaway.save_model(
        LinearRegression().fit(frame, target), tmp_path / "pkg", sample_input=frame
    ).path


def test_manifest_lists_a_digest_for_every_file(package: Path) -> None:
    manifest = json.loads((package / "manifest.json").read_text())
    on_disk = sorted(p.relative_to(package).as_posix() for p in package.rglob("*") if p.is_file())
    assert sorted(manifest["files"]) == [name for name in on_disk if name != "manifest.json"]
    assert all(len(digest) == 64 for digest in manifest["files"].values())


def test_a_modified_file_is_named(package: Path) -> None:
    with (package / "model" / "model.skops").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(PackageIntegrityError, match="'model/model.skops' has SHA-256"):
        load_package(package)


def test_a_missing_file_is_named(package: Path) -> None:
    (package / "input_example.json").unlink()
    with pytest.raises(PackageIntegrityError, match="incomplete: file 'input_example.json'"):
        load_package(package)


def test_an_added_file_is_named(package: Path) -> None:
    (package / "model" / "evil.py").write_text("import os\n")
    with pytest.raises(PackageIntegrityError, match="'model/evil.py' is not listed"):
        load_package(package)


def test_a_corrupt_manifest_is_refused(package: Path) -> None:
    (package / "manifest.json").write_text("{not json")
    with pytest.raises(PackageIntegrityError, match="corrupt"):
        load_package(package)


def test_a_manifest_from_the_future_asks_for_an_upgrade(package: Path) -> None:
    data = json.loads((package / "manifest.json").read_text())
    data["format_version"] = 99
    (package / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(PackageIntegrityError, match="upgrade seaway"):
        load_package(package)


def test_manifest_pinned_by_the_registry(package: Path) -> None:
    with pytest.raises(PackageIntegrityError, match="manifest.json"):
        load_package(package, manifest_sha256="0" * 64)


def test_save_refuses_to_overwrite_and_leaves_nothing_behind(package: Path, tabular) -> None:
    frame, target = tabular
    with pytest.raises(PackagingError, match="not empty"):
        seaway.save_model(LinearRegression().fit(frame, target), package)
    before = sorted(p.name for p in package.parent.iterdir())
    with pytest.raises(seaway.SeawayError):
        seaway.save_model(
            LinearRegression().fit(frame, target),
            package.parent / "new",
            sample_input=np.zeros((2, 9)),
        )
    assert sorted(p.name for p in package.parent.iterdir()) == before  # no staging folder left


def test_loading_a_copied_package_works(package: Path, tmp_path: Path, tabular) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(package, copy)
    frame, _ = tabular
    assert load_package(copy).predict(frame).shape == (len(frame),)
