"""Open a package folder: read its manifest and verify every file before anything loads it."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from seaway.errors import PackageIntegrityError
from seaway.packaging.calibration import Calibration
from seaway.packaging.checksums import sha256_bytes, verify_tree
from seaway.packaging.flavors import LoadContext, Predictor, get_flavor
from seaway.packaging.manifest import MANIFEST_NAME, Manifest
from seaway.packaging.profile import ReferenceProfile
from seaway.packaging.signature import example_from_json
from seaway.packaging.writer import MODEL_DIR, Package


def open_package(path: str | os.PathLike[str], *, manifest_sha256: str | None = None) -> Package:
    """Verify and open a package; ``manifest_sha256`` (from the registry) pins the manifest too."""
    root = Path(path)
    manifest = Manifest.read(root)
    if manifest_sha256 is not None:
        actual = sha256_bytes((root / MANIFEST_NAME).read_bytes())
        if actual != manifest_sha256:
            raise PackageIntegrityError(
                f"package {root} was modified: file {MANIFEST_NAME!r} does not match the digest the "
                "registry recorded; refusing to load it"
            )
    verify_tree(root, manifest.files, exclude=frozenset({MANIFEST_NAME}))
    return Package(path=root, manifest=manifest)


def manifest_digest(path: str | os.PathLike[str]) -> str:
    return sha256_bytes((Path(path) / MANIFEST_NAME).read_bytes())


def load_predictor(package: Package, *, trusted: bool = False) -> Predictor:
    manifest = package.manifest
    flavor = get_flavor(manifest.flavor)
    context = LoadContext(
        package_dir=package.path,
        model_dir=package.path / MODEL_DIR,
        options=manifest.flavor_options,
        trusted=trusted,
    )
    return flavor.load(context)


def read_input_example(package: Package) -> Any:
    manifest = package.manifest
    if manifest.input_example is None or manifest.signature is None:
        return None
    data = json.loads((package.path / manifest.input_example).read_text(encoding="utf-8"))
    return example_from_json(data, manifest.signature)


def read_reference_profile(package: Package) -> dict[str, Any] | None:
    if package.manifest.reference_profile is None:
        return None
    data: dict[str, Any] = json.loads(
        (package.path / package.manifest.reference_profile).read_text("utf-8")
    )
    return data


def read_reference_predictions(package: Package) -> ReferenceProfile | None:
    """The profile of the model's outputs on its reference data, if the package has one."""
    if package.manifest.reference_predictions is None:
        return None
    text = (package.path / package.manifest.reference_predictions).read_text("utf-8")
    return ReferenceProfile.model_validate_json(text)


def read_calibration(package: Package) -> Calibration | None:
    """The classifier's calibration (from reference labels), if the package has one."""
    if package.manifest.calibration is None:
        return None
    return Calibration.model_validate_json(
        (package.path / package.manifest.calibration).read_text("utf-8")
    )
