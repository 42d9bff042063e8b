"""Write a package folder: model files, signature, example, profile, requirements, manifest.

Everything is written into a hidden staging folder beside the destination and renamed into place
only once the manifest (with every file's SHA-256) is written, so a crash never leaves a folder
that looks like a complete package.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from seaway._version import __version__
from seaway.errors import PackagingError, SignatureError
from seaway.packaging.checksums import checksum_tree
from seaway.packaging.classes import classifier_classes
from seaway.packaging.flavors import SavedModel, SaveOptions, detect_flavor
from seaway.packaging.manifest import MANIFEST_NAME, FrameworkInfo, Manifest, ServingConfig
from seaway.packaging.missing import probe_missing
from seaway.packaging.profile import build_profile
from seaway.packaging.reference import (
    CALIBRATION_FILE,
    PREDICTIONS_FILE,
    ReferenceOutputs,
    reference_outputs,
)
from seaway.packaging.signature import (
    Signature,
    example_to_json,
    infer_outputs,
    infer_signature,
)

MODEL_DIR = "model"
EXAMPLE_FILE = "input_example.json"
PROFILE_FILE = "reference_profile.json"
REQUIREMENTS_FILE = "requirements.txt"


@dataclass(frozen=True)
class Package:
    """A package folder and its manifest. Open verified packages with ``reader.open_package``."""

    path: Path
    manifest: Manifest


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    *,
    sample_input: Any = None,
    reference_data: Any = None,
    reference_labels: Any = None,
    requirements: Iterable[str] | None = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    code_paths: Iterable[str | os.PathLike[str]] | None = None,
    serving: ServingConfig | Mapping[str, Any] | None = None,
) -> Package:
    """Write ``model`` as a Seaway package into the new folder ``path`` (no registry needed).

    ``reference_data`` (the training inputs, or a sample) gives the reference profile, and the
    model's outputs on those rows the predictions profile; ``reference_labels`` (their true
    labels) a classifier's calibration for estimated performance (``packaging/reference.py``).

    ``serving`` records how the model likes to be served (``max_batch_size``, ``max_latency_ms``,
    ``replicas``, ``max_queue``, ``timeout``); ``seaway serve`` flags override it.
    """
    serving_config = _serving_config(serving)
    if reference_labels is not None and reference_data is None:
        raise PackagingError(
            "reference_labels= are the true labels of the reference_data= rows; pass both"
        )
    flavor = detect_flavor(model)
    if (artifacts or code_paths) and flavor.name != "python_function":
        raise PackagingError(
            f"artifacts= and code_paths= are for seaway.PythonModel models; this is a {flavor.name} model"
        )
    options = SaveOptions(
        sample_input=sample_input,
        artifacts={name: Path(p) for name, p in (artifacts or {}).items()},
        code_paths=tuple(Path(p) for p in code_paths or ()),
    )
    with staging_dir(Path(path)) as staging:
        saved = flavor.save(model, staging / MODEL_DIR, options)
        signature = saved.signature
        example = None
        predictor = None
        if sample_input is not None:
            predictor = flavor.sample_predictor(model, staging / MODEL_DIR, saved)
            signature = _signature_from_sample(predictor, sample_input, signature)
            example = example_to_json(sample_input, signature)
        profile = None
        outputs = None
        if reference_data is not None:
            profile = build_profile(reference_data).model_dump(mode="json")
            if predictor is None:
                predictor = flavor.sample_predictor(model, staging / MODEL_DIR, saved)
            outputs = _reference_outputs(predictor, reference_data, reference_labels, signature)
        return finalize(
            staging,
            Path(path),
            flavor=flavor.name,
            saved=saved,
            signature=signature,
            input_example=example,
            reference_profile=profile,
            requirements=pin_requirements(saved.requirements, requirements or ()),
            serving=serving_config,
            reference=outputs,
        )


def _reference_outputs(
    predictor: Any, data: Any, labels: Any, signature: Signature | None
) -> ReferenceOutputs | None:
    """The model's outputs on its reference rows, through the signature it is served with."""
    classes = signature.classes if signature is not None else None
    if classes is None:
        classes = classifier_classes(predictor, [])
    return reference_outputs(predictor, data, labels, signature, classes)


def _serving_config(value: ServingConfig | Mapping[str, Any] | None) -> ServingConfig | None:
    if value is None or isinstance(value, ServingConfig):
        return value
    try:
        return ServingConfig.model_validate(dict(value))
    except (ValidationError, TypeError, ValueError) as exc:
        raise PackagingError(
            f"invalid serving config {value!r}: {exc}. Known keys: "
            f"{', '.join(ServingConfig.model_fields)}"
        ) from None


def _signature_from_sample(
    predictor: Any, sample_input: Any, declared: Signature | None
) -> Signature:
    """Run the sample through the live model: proves it can predict and gives the outputs."""
    sig = declared or infer_signature(sample_input)
    native = sig.coerce(sample_input)
    try:
        output = predictor.predict(native)
    except Exception as exc:
        raise SignatureError(
            f"the model cannot predict on sample_input ({type(exc).__name__}: {exc}); pass a "
            "sample of the inputs it was trained on"
        ) from exc
    outputs = infer_outputs(output)
    if hasattr(predictor, "predict_proba"):
        # a regressor inside a pipeline may expose predict_proba without supporting it
        with contextlib.suppress(Exception):
            outputs += infer_outputs(predictor.predict_proba(native), "predict_proba")
    if not (declared is not None and declared.outputs):
        sig = sig.model_copy(update={"outputs": outputs})
    # what later requests will be checked against: which inputs take missing values, the classes
    sig = probe_missing(sig, predictor, native)
    return sig.model_copy(update={"classes": classifier_classes(predictor, sig.outputs)})


class staging_dir:
    """A hidden sibling folder of ``dest`` that is removed unless ``finalize`` renamed it."""

    def __init__(self, dest: Path) -> None:
        if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
            raise PackagingError(
                f"{dest} already exists and is not empty; refusing to overwrite it"
            )
        self.path = dest.parent / f".{dest.name}.staging-{uuid.uuid4().hex[:8]}"

    def __enter__(self) -> Path:
        self.path.mkdir(parents=True)
        (self.path / MODEL_DIR).mkdir()
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def finalize(
    staging: Path,
    dest: Path,
    *,
    flavor: str,
    saved: SavedModel,
    signature: Signature | None,
    input_example: dict[str, Any] | None,
    reference_profile: dict[str, Any] | None,
    requirements: list[str],
    serving: ServingConfig | None = None,
    reference: ReferenceOutputs | None = None,
) -> Package:
    """Write the remaining files and the manifest, then move ``staging`` to ``dest``."""
    if input_example is not None:
        (staging / EXAMPLE_FILE).write_text(json.dumps(input_example), encoding="utf-8")
    if reference_profile is not None:
        (staging / PROFILE_FILE).write_text(json.dumps(reference_profile), encoding="utf-8")
    calibration = reference.calibration if reference is not None else None
    if reference is not None:
        (staging / PREDICTIONS_FILE).write_text(reference.predictions.model_dump_json(), "utf-8")
    if calibration is not None:
        (staging / CALIBRATION_FILE).write_text(calibration.model_dump_json(), "utf-8")
    (staging / REQUIREMENTS_FILE).write_text(
        "".join(f"{r}\n" for r in requirements), encoding="utf-8"
    )
    manifest = Manifest(
        flavor=flavor,
        flavor_options=saved.options,
        framework=FrameworkInfo(name=saved.framework, version=saved.framework_version),
        python_version=".".join(map(str, sys.version_info[:3])),
        seaway_version=__version__,
        created_at=datetime.now(UTC),
        requirements=requirements,
        signature=signature,
        input_example=EXAMPLE_FILE if input_example is not None else None,
        reference_profile=PROFILE_FILE if reference_profile is not None else None,
        reference_predictions=PREDICTIONS_FILE if reference is not None else None,
        calibration=CALIBRATION_FILE if calibration is not None else None,
        needs_trust=list(saved.needs_trust),
        serving=serving,
        files=checksum_tree(staging, exclude=frozenset({MANIFEST_NAME})),
    )
    (staging / MANIFEST_NAME).write_text(manifest.to_json(), encoding="utf-8")
    if dest.is_dir():
        dest.rmdir()  # checked empty by staging_dir
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)
    return Package(path=dest, manifest=manifest)


def pin_requirements(distributions: Iterable[str], extra: Iterable[str]) -> list[str]:
    """Pin installed versions of ``distributions``; user-given lines win for the same name."""
    user = [line.strip() for line in extra if line.strip()]
    user_names = {_requirement_name(line) for line in user}
    pinned = []
    for dist in dict.fromkeys(distributions):
        if _requirement_name(dist) in user_names:
            continue
        try:
            pinned.append(f"{dist}=={importlib_metadata.version(dist)}")
        except importlib_metadata.PackageNotFoundError:
            pinned.append(dist)
    return pinned + user


def _requirement_name(line: str) -> str:
    name = line
    for sep in ("[", "=", "<", ">", "!", "~", ";", " ", "@"):
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")
