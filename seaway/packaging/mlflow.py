"""Import an MLflow model folder as a Seaway package, with no MLflow installed.

An MLflow model is plain files: ``MLmodel`` (YAML naming each flavor and its files, the signature
as JSON strings, where the input example is), ``requirements.txt`` and the model files. Reading
them directly keeps MLflow and its dependencies out of Seaway. Each flavor is carried over in the
safest form that still loads the same model:

- ``xgboost``, ``lightgbm`` Booster: native files hold no code, so they are loaded with the
  framework and re-saved with :func:`save_model`, as if logged with Seaway (no trust needed).
- ``sklearn`` and LightGBM's scikit-learn models: the file is copied, never unpickled here. A
  pickle keeps ``serialization: pickle|cloudpickle`` so loading needs ``trusted=True``; a skops
  file goes through skops' type checks like any Seaway scikit-learn package.
- ``python_function`` from a ``PythonModel`` (or a custom ``loader_module``): its pickle,
  artifacts and code are copied for the load-only ``mlflow_pyfunc`` flavor (needs trust).

A native flavor wins when ``MLmodel`` also lists ``python_function``. MLflow itself is dropped
from the requirements: the point of the package is to load without it.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from seaway.errors import InvalidInputError, MlflowImportError, SeawayWarning, SignatureError
from seaway.packaging.flavors.base import SavedModel, require
from seaway.packaging.flavors.mlflow_pyfunc import FLAVOR_NAME as PYFUNC_FLAVOR
from seaway.packaging.flavors.mlflow_pyfunc import PYTHON_MODEL_LOADER, saved_from_mlflow
from seaway.packaging.flavors.sklearn import skops_io, unsafe_types
from seaway.packaging.signature import (
    DEFAULT_INPUT_NAME,
    DEFAULT_OUTPUT_NAME,
    InputFormat,
    Signature,
    TensorSpec,
    example_to_json,
    infer_signature,
)
from seaway.packaging.writer import (
    MODEL_DIR,
    Package,
    finalize,
    pin_requirements,
    save_model,
    staging_dir,
)
from seaway.types import Datatype

MLMODEL = "MLmodel"
SUPPORTED = (
    "sklearn, xgboost and lightgbm models, and python_function models built from an "
    "mlflow.pyfunc.PythonModel subclass or a custom loader_module shipped in the model's code"
)
#: MLflow column types; Seaway has no datetime, so datetimes travel as BYTES (strings).
COLSPEC_TYPES = {
    "double": Datatype.FP64,
    "float": Datatype.FP32,
    "long": Datatype.INT64,
    "integer": Datatype.INT32,
    "boolean": Datatype.BOOL,
    "string": Datatype.BYTES,
    "binary": Datatype.BYTES,
    "datetime": Datatype.BYTES,
}
_MLFLOW_DISTS = frozenset({"mlflow", "mlflow-skinny"})


@dataclass(frozen=True)
class _Source:
    root: Path
    flavors: dict[str, dict[str, Any]]
    signature: Signature | None
    example: Any
    requirements: list[str]

    def file(self, rel: Any, what: str) -> Path:
        """A file MLmodel names; paths leaving the folder are refused, so a crafted MLmodel
        cannot copy arbitrary files into a package."""
        path = self.root / str(rel)
        if not isinstance(rel, str) or not rel or not _inside(path, self.root):
            raise MlflowImportError(f"{self.root / MLMODEL} names no usable {what} ({rel!r})")
        if not path.exists():
            raise MlflowImportError(
                f"{path} is missing: {MLMODEL} names it as the {what}. The model folder is "
                "incomplete; download the whole folder again (mlflow artifacts download ...)"
            )
        return path

    def inferred(self) -> Signature | None:
        """MLflow's signature, else one inferred from the example (copied models never run here)."""
        if self.signature is not None or self.example is None:
            return self.signature
        try:
            return infer_signature(self.example)
        except SignatureError as exc:
            _warn(f"cannot infer a signature from the input example ({exc}); importing without")
            return None

    def copy(self, rel: Any, what: str, model_dir: Path) -> str:
        """Copy a file or folder MLmodel names to the same place under ``model_dir``."""
        path = self.file(rel, what)
        inner = path.resolve().relative_to(self.root.resolve())
        target = model_dir / inner
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            shutil.copytree(path, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, target)
        return inner.as_posix()


def import_mlflow_model(src: str | os.PathLike[str], dest: str | os.PathLike[str]) -> Package:
    """Write the MLflow model folder ``src`` as a Seaway package into the new folder ``dest``."""
    root, target = Path(src), Path(dest)
    mlmodel = _read_mlmodel(root)
    source = _Source(
        root=root,
        flavors={str(k): v if isinstance(v, dict) else {} for k, v in mlmodel["flavors"].items()},
        signature=convert_signature(mlmodel.get("signature"), root / MLMODEL),
        example=_read_example(root, mlmodel.get("saved_input_example_info")),
        requirements=_read_requirements(root),
    )
    for flavor, importer in _NATIVE.items():
        if flavor in source.flavors:
            return importer(source, target)
    loader = source.flavors.get("python_function", {}).get("loader_module")
    if isinstance(loader, str) and not (
        loader.startswith("mlflow") and loader != PYTHON_MODEL_LOADER
    ):
        return _import_pyfunc(source, target)
    found = [f"{name} ({loader})" if name == "python_function" else name for name in source.flavors]
    raise MlflowImportError(
        f"{root} is an MLflow model with flavor(s) {found}, which Seaway cannot import. Seaway "
        f"imports {SUPPORTED}. Export the model to ONNX and save that with seaway.save_model(), "
        "or wrap it in a seaway.PythonModel"
    )


def convert_signature(raw: Any, where: Path) -> Signature | None:
    """MLflow's signature (``inputs``/``outputs`` JSON strings) as a Seaway signature; ``None``
    (with a warning) when it uses types Seaway cannot express. ``params`` has no Seaway twin:
    models get ``params=None``, MLflow's default."""
    if not isinstance(raw, dict):
        return None
    inputs = _convert_specs(raw.get("inputs"), DEFAULT_INPUT_NAME, where)
    if inputs is None:
        return None
    outputs = _convert_specs(raw.get("outputs"), DEFAULT_OUTPUT_NAME, where)
    return Signature(
        input_format=inputs[0], inputs=inputs[1], outputs=outputs[1] if outputs else ()
    )


def _convert_specs(
    raw: Any, default: str, where: Path
) -> tuple[InputFormat, tuple[TensorSpec, ...]] | None:
    """Column specs become a ``dataframe`` input; tensor specs ``tensor`` (one) or ``tensors``.
    ``None`` when absent, or (with a warning) when a Seaway signature cannot express them."""
    try:
        specs = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as exc:
        raise MlflowImportError(f"{where} has a signature that is not valid JSON ({exc})") from exc
    if not specs:
        return None
    if not isinstance(specs, list) or not all(isinstance(spec, dict) for spec in specs):
        raise MlflowImportError(f"{where} has a signature that is not a list of specs")
    tensors = [spec.get("tensor-spec") or {} for spec in specs if spec.get("type") == "tensor"]
    unknown = [spec.get("type") for spec in specs if spec.get("type") not in COLSPEC_TYPES]
    if not tensors and not unknown:
        columns = [
            (str(spec.get("name", i)), COLSPEC_TYPES[spec["type"]]) for i, spec in enumerate(specs)
        ]
        return "dataframe", tuple(TensorSpec(name=n, datatype=t, shape=(-1,)) for n, t in columns)
    datatypes = [_numpy_datatype(tensor.get("dtype")) for tensor in tensors]
    if len(tensors) == len(specs) and None not in datatypes:
        converted = tuple(
            TensorSpec(
                name=str(spec.get("name") or (default if len(specs) == 1 else f"{default}-{i}")),
                datatype=datatype,
                shape=tuple(int(dim) for dim in tensor.get("shape") or (-1,)),
            )
            for i, (spec, tensor, datatype) in enumerate(
                zip(specs, tensors, datatypes, strict=True)
            )
            if datatype is not None
        )
        return ("tensor" if len(converted) == 1 else "tensors"), converted
    what = [spec.get("tensor-spec", spec.get("type")) for spec in specs]
    _warn(f"{where} has a signature Seaway cannot express ({what}); importing without it")
    return None


def _numpy_datatype(dtype: Any) -> Datatype | None:
    try:
        return Datatype.from_numpy(np.dtype(dtype))
    except TypeError:
        return None


def _read_mlmodel(root: Path) -> dict[str, Any]:
    path = root / MLMODEL
    if not root.exists():
        raise MlflowImportError(
            f"{root} does not exist; pass an MLflow model folder (the one holding an {MLMODEL} file)"
        )
    if not path.is_file():
        nested = sorted(str(p.parent) for p in root.glob(f"*/{MLMODEL}")) if root.is_dir() else []
        hint = f" ({nested[0]} has one: pass that folder)" if nested else ""
        raise MlflowImportError(
            f"{root} is not an MLflow model folder: it has no {MLMODEL} file{hint}. Pass the folder "
            "holding MLmodel; download it first with 'mlflow artifacts download' if needed"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise MlflowImportError(f"{path} is not valid YAML ({exc}); download it again") from exc
    if (
        not isinstance(data, dict)
        or not data.get("flavors")
        or not isinstance(data["flavors"], dict)
    ):
        raise MlflowImportError(f"{path} has no 'flavors': it is not an MLflow MLmodel file")
    return data


def _read_example(root: Path, info: Any) -> Any:
    """The input example in its native form, or ``None`` with a warning (it is optional).

    MLflow writes DataFrames in split (``{"columns", "data"}``) or records orient, arrays as
    ``{"inputs": ...}`` (a dict of arrays for named tensors) and dicts as-is (``json_object``).
    """
    if not isinstance(info, dict):
        return None
    path = root / str(info.get("artifact_path") or "input_example.json")
    kind, data = info.get("type"), None
    try:
        if not _inside(path, root):
            raise ValueError("it is outside the model folder")
        data = json.loads(path.read_text(encoding="utf-8"))
        if kind == "dataframe":
            if isinstance(data, list):
                return pd.DataFrame.from_records(data)
            return pd.DataFrame(data["data"], columns=data.get("columns"))  # "index" is ignored
        if kind == "ndarray":
            inputs = data.get("inputs") if isinstance(data, dict) else data
            if isinstance(inputs, dict):
                return {str(name): np.asarray(value) for name, value in inputs.items()}
            return np.asarray(inputs)
        if kind == "json_object" and isinstance(data, dict):
            scalars = not any(isinstance(value, list | dict) for value in data.values())
            return pd.DataFrame([data]) if scalars else pd.DataFrame(data)
        raise ValueError(f"example type {kind!r} is not supported")
    except (OSError, ValueError, TypeError, KeyError) as exc:
        _warn(f"cannot read the input example {path} ({exc}); importing without it")
        return None


def _read_requirements(root: Path) -> list[str]:
    """``requirements.txt`` without MLflow (not needed to load) or pip option lines."""
    path = root / "requirements.txt"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    dropped = [line.strip() for line in lines if line.strip().startswith("-")]
    if dropped:
        _warn(f"pip option lines of {path} are not carried into the package: {dropped}")
    return [
        line
        for line in (raw.split(" #", 1)[0].strip() for raw in lines)
        if line and not line.startswith(("#", "-")) and _distribution(line) not in _MLFLOW_DISTS
    ]


def _distribution(line: str) -> str:
    """The distribution a requirement line names; xgboost-cpu is the same module as xgboost."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
    name = match.group(0).lower().replace("_", "-") if match else ""
    return "xgboost" if name == "xgboost-cpu" else name


def _import_sklearn(source: _Source, dest: Path) -> Package:
    conf = source.flavors["sklearn"]
    path = source.file(conf.get("pickled_model"), "sklearn flavor's pickled_model")
    # MLflow wrote plain pickles before serialization_format existed.
    fmt = str(conf.get("serialization_format") or "pickle")
    return _copy_estimator(source, dest, path, fmt, ("scikit-learn", conf.get("sklearn_version")))


def _import_lightgbm(source: _Source, dest: Path) -> Package:
    conf = source.flavors["lightgbm"]
    path = source.file(conf.get("data"), "lightgbm flavor's data file")
    if str(conf.get("model_class") or "lightgbm.basic.Booster") != "lightgbm.basic.Booster":
        fmt = str(conf.get("serialization_format") or "cloudpickle")
        return _copy_estimator(source, dest, path, fmt, ("lightgbm", conf.get("lgb_version")))
    lgb = require("lightgbm", package="lightgbm", extra="lightgbm", purpose="Importing LightGBM")
    try:
        booster = lgb.Booster(model_file=str(path))
    except Exception as exc:
        raise MlflowImportError(f"{path} is not a readable LightGBM model: {exc}") from exc
    return _resave(booster, source, dest)


def _import_xgboost(source: _Source, dest: Path) -> Package:
    conf = source.flavors["xgboost"]
    path = source.file(conf.get("data"), "xgboost flavor's data file")
    xgb = require("xgboost", package="xgboost", extra="xgboost", purpose="Importing XGBoost")
    # MLflow before 1.22 wrote no model_class: those are Boosters. Import only xgboost modules.
    dotted = str(conf.get("model_class") or "xgboost.core.Booster")
    module, _, name = dotted.rpartition(".")
    cls = (
        getattr(importlib.import_module(module), name, None) if module.startswith("xgboost.") else 0
    )
    if not (isinstance(cls, type) and issubclass(cls, xgb.Booster | xgb.XGBModel)):
        raise MlflowImportError(f"{source.root / MLMODEL}: {dotted!r} is no XGBoost model class")
    try:
        model = cls()
        model.load_model(str(path))
    except Exception as exc:
        raise MlflowImportError(f"{path} is not a readable XGBoost model: {exc}") from exc
    return _resave(model, source, dest)


#: Native flavors in order of preference; any of them beats python_function.
_NATIVE = {"sklearn": _import_sklearn, "xgboost": _import_xgboost, "lightgbm": _import_lightgbm}


def _copy_estimator(
    source: _Source, dest: Path, path: Path, fmt: str, framework: tuple[str, Any]
) -> Package:
    """Keep a pickle or skops file as-is under the sklearn flavor; nothing is unpickled here."""
    if fmt not in ("pickle", "cloudpickle", "skops"):
        raise MlflowImportError(
            f"{source.root / MLMODEL} says serialization_format {fmt!r}; Seaway imports pickle, "
            "cloudpickle and skops"
        )
    for conf in source.flavors.values():
        if isinstance(conf, dict) and conf.get("code"):
            _warn(
                f"the model's code folder {conf['code']!r} is not carried over; install its modules"
            )
            break
    requirements: tuple[str, ...] = ("scikit-learn", framework[0], "numpy")
    with staging_dir(dest) as staging:
        copied = staging / MODEL_DIR / path.name
        shutil.copy2(path, copied)
        if fmt == "skops":
            sio = skops_io()
            try:
                unsafe = unsafe_types(sio.get_untrusted_types(file=copied))
            except Exception as exc:
                raise MlflowImportError(f"{path} is not a readable skops file: {exc}") from exc
            outside = f"{path.name} holds types outside scikit-learn, numpy and scipy: {unsafe}"
            reasons: tuple[str, ...] = (outside,) if unsafe else ()
            requirements += ("skops", "scipy")
        else:
            reasons = (f"{path.name} is a {fmt} file; unpickling it can run arbitrary code",)
            requirements += ("cloudpickle",) if fmt == "cloudpickle" else ()
        saved = SavedModel(
            framework=framework[0],
            framework_version=str(framework[1] or "unknown"),
            requirements=requirements,
            options={"file": path.name, "serialization": fmt},
            needs_trust=reasons,
        )
        return _finish_copied(staging, dest, "sklearn", saved, source)


def _import_pyfunc(source: _Source, dest: Path) -> Package:
    conf = source.flavors["python_function"]
    if conf.get("model_code_path"):
        raise MlflowImportError(
            f"{source.root} is an MLflow 'models from code' model, whose script needs MLflow "
            "(mlflow.models.set_model) to run; wrap the model in a seaway.PythonModel instead"
        )
    with staging_dir(dest) as staging:
        model_dir = staging / MODEL_DIR
        saved = saved_from_mlflow(conf, lambda rel, what: source.copy(rel, what, model_dir))
        return _finish_copied(staging, dest, PYFUNC_FLAVOR, saved, source)


def _finish_copied(
    staging: Path, dest: Path, flavor: str, saved: SavedModel, source: _Source
) -> Package:
    """Copied files were made in MLflow's environment, so its requirement pins win."""
    requirements = pin_requirements(saved.requirements, source.requirements)
    return _finish(staging, dest, flavor, saved, source.inferred(), source.example, requirements)


def _finish(
    staging: Path,
    dest: Path,
    flavor: str,
    saved: SavedModel,
    signature: Signature | None,
    example: Any,
    requirements: list[str],
) -> Package:
    """Write the example in Seaway's format (when it fits the signature) and the manifest."""
    input_example = None
    if example is not None and signature is not None:
        try:
            input_example = example_to_json(example, signature)
        except InvalidInputError as exc:
            _warn(f"the input example does not fit the signature ({exc}); importing without it")
    return finalize(
        staging,
        dest,
        flavor=flavor,
        saved=saved,
        signature=signature,
        input_example=input_example,
        reference_profile=None,
        requirements=requirements,
    )


def _resave(model: Any, source: _Source, dest: Path) -> Package:
    """Re-save a natively loaded model with :func:`save_model` (the flavor's own format, which
    this module never interprets), then re-finalize so MLflow's declared inputs win over inputs
    inferred from the example; outputs observed by running the example are kept. The file was
    rewritten by the framework installed here, so its pins win over MLflow's."""
    declared, sample = source.signature, source.example
    if declared is not None and sample is not None:
        try:
            sample = declared.coerce(sample)
        except InvalidInputError as exc:
            _warn(f"the input example does not fit the MLflow signature ({exc}); dropping it")
            sample = None
    with staging_dir(dest) as staging:
        native = save_model(model, staging / "native", sample_input=sample)
        manifest, signature = native.manifest, native.manifest.signature
        (staging / MODEL_DIR).rmdir()
        os.replace(native.path / MODEL_DIR, staging / MODEL_DIR)
        shutil.rmtree(native.path)
        if declared is not None:
            observed = signature.outputs if signature is not None else ()
            signature = declared.model_copy(update={"outputs": observed or declared.outputs})
        saved = SavedModel(
            framework=manifest.framework.name,
            framework_version=manifest.framework.version,
            options=manifest.flavor_options,
            needs_trust=tuple(manifest.needs_trust),
        )
        pinned = {_distribution(line) for line in manifest.requirements}
        others = [line for line in source.requirements if _distribution(line) not in pinned]
        requirements = manifest.requirements + others
        return _finish(staging, dest, manifest.flavor, saved, signature, sample, requirements)


def _inside(path: Path, root: Path) -> bool:
    return path.resolve().is_relative_to(root.resolve())


def _warn(message: str) -> None:
    warnings.warn(message, SeawayWarning, stacklevel=3)
