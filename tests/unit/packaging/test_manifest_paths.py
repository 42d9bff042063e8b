"""A manifest may only name files inside its package folder (issue 9, item 15).

Each tampered manifest below lists the outside file with its true digest, so without the check
the package verifies and loads: what is refused is the path itself.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression

import seaway
from seaway.errors import PackageIntegrityError
from seaway.packaging.checksums import sha256_file, verify_tree
from seaway.packaging.manifest import FrameworkInfo, Manifest
from seaway.packaging.reader import open_package
from seaway.runtime import load_package


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    return seaway.save_model(
        LinearRegression().fit(frame, target), tmp_path / "pkg", sample_input=frame
    ).path


def _edit_manifest(package: Path, edit: Any) -> None:
    path = package / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


def _outside(package: Path) -> Path:
    """A copy of the model file next to the package, outside its folder."""
    outside = package.parent / "outside.skops"
    shutil.copyfile(package / "model" / "model.skops", outside)
    return outside


@pytest.mark.parametrize(
    "name",
    ["../outside.skops", "model/../../outside.skops", "ABSOLUTE", "./model.skops", "a\\b"],
)
def test_a_listed_file_outside_the_folder_is_refused_by_name(package: Path, name: str) -> None:
    outside = _outside(package)
    rel = str(outside) if name == "ABSOLUTE" else name
    _edit_manifest(package, lambda data: data["files"].update({rel: sha256_file(outside)}))
    with pytest.raises(PackageIntegrityError, match="names file") as info:
        open_package(package)
    assert repr(rel) in str(info.value)
    with pytest.raises(PackageIntegrityError, match="names file"):
        load_package(package)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("input_example", "../outside.json"),
        ("reference_profile", "/etc/passwd"),
        ("flavor_options", {"file": "../../outside.skops"}),
        ("flavor_options", {"artifacts": {"weights": "/etc/passwd"}}),
        ("flavor_options", {"code": ["code", "../elsewhere"]}),
    ],
)
def test_other_paths_outside_the_folder_are_refused(package: Path, key: str, value: Any) -> None:
    def edit(data: dict[str, Any]) -> None:
        data[key] = {**data[key], **value} if isinstance(value, dict) else value

    _edit_manifest(package, edit)
    with pytest.raises(PackageIntegrityError, match="outside|inside its own folder"):
        open_package(package)


def test_a_link_to_a_file_outside_the_folder_is_refused(package: Path) -> None:
    outside = _outside(package)
    (package / "model" / "model.skops").unlink()
    (package / "model" / "model.skops").symlink_to(outside)  # same bytes, same digest
    with pytest.raises(PackageIntegrityError, match="'model/model.skops' is a link to"):
        open_package(package)


def test_verify_tree_refuses_an_absolute_path_itself(package: Path) -> None:
    outside = _outside(package)
    with pytest.raises(PackageIntegrityError, match="is absolute"):
        verify_tree(package, {str(outside): sha256_file(outside)})


def test_a_manifest_naming_a_file_outside_cannot_be_written() -> None:
    with pytest.raises(PackageIntegrityError, match=r"'\.\./x\.bin'.*has an empty, '\.' or '\.\.'"):
        Manifest(
            flavor="sklearn",
            framework=FrameworkInfo(name="sklearn", version="1"),
            python_version="3.11.0",
            seaway_version="0",
            created_at=datetime.now(UTC),
            files={"model/model.skops": "0" * 64, "../x.bin": "0" * 64},
        )


def test_ordinary_nested_paths_still_verify(package: Path) -> None:
    assert open_package(package).manifest.files  # model/model.skops and friends
