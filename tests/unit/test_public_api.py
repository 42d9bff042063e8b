"""The public surface changes only on purpose: update this list together with the docs."""

from __future__ import annotations

import seaway

EXPECTED = {
    "Client",
    "InvalidInputError",
    "Model",
    "ModelContext",
    "ModelLoadError",
    "ModelVersion",
    "NotFoundError",
    "PackageIntegrityError",
    "PythonModel",
    "RegisteredModel",
    "Registry",
    "SeawayError",
    "Settings",
    "Signature",
    "TensorSpec",
    "UntrustedPackageError",
    "__version__",
    "load_model",
    "log_model",
    "save_model",
}


def test_all_is_the_expected_surface() -> None:
    assert set(seaway.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    for name in seaway.__all__:
        assert getattr(seaway, name) is not None


def test_errors_are_one_tree() -> None:
    for name in (
        "InvalidInputError",
        "ModelLoadError",
        "NotFoundError",
        "PackageIntegrityError",
        "UntrustedPackageError",
    ):
        assert issubclass(getattr(seaway, name), seaway.SeawayError)
