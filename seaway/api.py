"""The top-level functions users type: ``log_model``, ``load_model`` (and ``save_model``).

They compose packaging, the registry and the runtime; each takes an optional ``registry`` and
otherwise opens the one the settings describe (``SEAWAY_HOME``, ``SEAWAY_REGISTRY_URL``, ...).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from seaway.errors import NotFoundError
from seaway.packaging.manifest import ServingConfig
from seaway.packaging.writer import save_model
from seaway.registry import ModelVersion, Registry
from seaway.registry.lineage import collect_lineage
from seaway.registry.uri import is_model_uri, parse_model_uri
from seaway.runtime import Model, ModelInfo, load_package


def log_model(
    model: Any,
    name: str,
    *,
    sample_input: Any = None,
    reference_data: Any = None,
    reference_labels: Any = None,
    metrics: Mapping[str, float] | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    requirements: Iterable[str] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    training_data: str | None = None,
    serving: ServingConfig | Mapping[str, Any] | None = None,
    model_description: str | None = None,
    model_tags: Mapping[str, str] | None = None,
    registry: Registry | None = None,
) -> ModelVersion:
    """Package ``model`` and register it as the next version of ``name``.

    ``sample_input`` gives the signature and input example (and proves the model can predict on
    it); ``reference_data`` gives the reference profile used for drift detection (of the inputs,
    and of the model's outputs on them); ``reference_labels``, the true labels of those rows,
    calibrate a classifier's probabilities for estimated performance;
    ``training_data`` (a path or URI) is recorded in the version's lineage. ``description``,
    ``tags`` and ``metrics`` describe the new version; ``model_description`` and ``model_tags``
    the registered model as a whole (its tags are merged, its description replaced).
    """
    with _registry(registry) as reg, tempfile.TemporaryDirectory(prefix="seaway-") as tmp:
        package = save_model(
            model,
            Path(tmp) / "package",
            sample_input=sample_input,
            reference_data=reference_data,
            reference_labels=reference_labels,
            requirements=requirements,
            artifacts=artifacts,
            code_paths=code_paths,
            serving=serving,
        )
        return reg.register(
            package.path,
            name,
            description=description,
            tags=tags,
            metrics=metrics,
            lineage=collect_lineage(training_data),
            model_description=model_description,
            model_tags=model_tags,
        )


def load_model(
    uri: str | os.PathLike[str], *, trusted: bool = False, registry: Registry | None = None
) -> Model:
    """Load ``models:/NAME/3``, ``models:/NAME@alias``, ``models:/NAME/latest`` or a package folder.

    Every file's SHA-256 is verified first. Packages that would run pickle or packaged code load
    only with ``trusted=True``.
    """
    text = os.fspath(uri)
    if not is_model_uri(text):
        if not Path(text).exists():
            raise NotFoundError(
                f"{text!r} is neither a model URI (models:/NAME/VERSION, models:/NAME@ALIAS, "
                "models:/NAME/latest) nor an existing package folder"
            )
        return load_package(text, trusted=trusted)
    ref = parse_model_uri(text)
    with _registry(registry) as reg:
        record = reg.resolve(ref)
        path = reg.fetch(record)
    return load_package(
        path,
        trusted=trusted,
        manifest_sha256=record.manifest_sha256,
        info=ModelInfo(uri=text, name=record.name, version=record.version),
    )


@contextlib.contextmanager
def _registry(registry: Registry | None) -> Iterator[Registry]:
    if registry is not None:
        yield registry
        return
    with Registry.from_settings() as opened:
        yield opened
