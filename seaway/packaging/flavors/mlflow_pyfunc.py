"""MLflow python_function models, loaded without MLflow installed.

This flavor is load-only: :func:`seaway.packaging.mlflow.import_mlflow_model` writes its packages
by copying MLflow's files, so ``matches`` is always False and ``save`` refuses.

Two MLflow layouts are handled:

- ``python_model``: MLflow cloudpickled an instance of a ``mlflow.pyfunc.PythonModel`` subclass.
  The pickle names MLflow's base classes, so a plain ``pickle.load`` would import MLflow. The
  Unpickler below maps those names to the small stand-ins in this module; other ``mlflow.*``
  names (MLflow >= 2.20 wraps ``predict`` in a type-hint validator that refers to its helpers)
  become inert placeholders, and that wrapper is peeled off again before ``predict`` is called.
  Then, as MLflow does, ``load_context(context)`` runs with the artifacts as local paths.
- ``loader_module``: a module of the model's own (in its ``code`` folder) whose
  ``_load_pyfunc(data_path)`` returns an object with ``predict``.

Both run code from the package when they load, so they always need ``trusted=True``.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import importlib
import inspect
import lzma
import pickle
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from seaway.errors import (
    MissingDependencyError,
    ModelLoadError,
    PackagingError,
    SeawayError,
    UntrustedPackageError,
)
from seaway.packaging.flavors.base import Flavor, LoadContext, Predictor, SavedModel, SaveOptions

FLAVOR_NAME = "mlflow_pyfunc"
PYTHON_MODEL_LOADER = "mlflow.pyfunc.model"
#: MLflow's ``python_model_compression`` values and how to open such a file.
_OPENERS: dict[str, Callable[..., Any]] = {"lzma": lzma.open, "bzip2": bz2.open, "gzip": gzip.open}


class PythonModelContext:
    """Stands in for ``mlflow.pyfunc.PythonModelContext``: artifacts as local path strings."""

    def __init__(self, artifacts: dict[str, str], model_config: Any = None) -> None:
        self._artifacts = artifacts
        self._model_config = model_config if model_config is not None else {}

    @property
    def artifacts(self) -> dict[str, str]:
        return self._artifacts

    @property
    def model_config(self) -> Any:
        return self._model_config


class PythonModel:
    """Stands in for ``mlflow.pyfunc.PythonModel`` as the base class of unpickled models."""

    def load_context(self, context: PythonModelContext) -> None:
        """MLflow's default: nothing to restore."""

    def predict(self, context: PythonModelContext, model_input: Any, params: Any = None) -> Any:
        raise NotImplementedError("this MLflow python model does not implement predict()")


class FunctionPythonModel(PythonModel):
    """Stands in for ``mlflow.pyfunc.model._FunctionPythonModel``: a plain function logged as
    ``python_model``; the pickle restores its ``func`` attribute."""

    func: Callable[[Any], Any]

    def predict(self, model_input: Any, params: Any = None) -> Any:  # type: ignore[override]
        return unwrap_mlflow(self.func)(model_input)


class MlflowStandIn:
    """An MLflow object the pickle names but the model should not need to predict.

    Constructing one is harmless (the pickle may rebuild one); calling one says MLflow is needed.
    """

    mlflow_name = "mlflow"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ModelLoadError(
            f"this MLflow model calls {self.mlflow_name}, which Seaway cannot provide; "
            "install mlflow and serve it with MLflow, or re-log it with seaway.log_model()"
        )


_SHIMS: dict[tuple[str, str], type] = {
    (module, name): shim
    for module in ("mlflow.pyfunc", "mlflow.pyfunc.model")
    for name, shim in (
        ("PythonModel", PythonModel),
        ("PythonModelContext", PythonModelContext),
        ("_FunctionPythonModel", FunctionPythonModel),
    )
}


def unwrap_mlflow(func: Callable[..., Any]) -> Callable[..., Any]:
    """Peel off MLflow's input-validation wrappers (marked ``_is_pyfunc``) to reach user code."""
    while getattr(func, "_is_pyfunc", False) and hasattr(func, "__wrapped__"):
        func = func.__wrapped__
    return func


class _MlflowFreeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str, /) -> Any:
        if module == "mlflow" or module.startswith("mlflow."):
            shim = _SHIMS.get((module, name))
            if shim is not None:
                return shim
            return type(name, (MlflowStandIn,), {"mlflow_name": f"{module}.{name}"})
        try:
            return super().find_class(module, name)
        except ModuleNotFoundError as exc:
            if (exc.name or "").split(".")[0] == "cloudpickle":
                raise MissingDependencyError(
                    "cloudpickle", "mlflow", "Loading an MLflow python_function model"
                ) from exc
            raise


class _PythonModelPredictor:
    """Calls ``predict`` the way MLflow does: with the context when the method takes one, and
    ``params=None`` when it accepts params (Seaway has no inference params)."""

    def __init__(self, model: Any, context: PythonModelContext) -> None:
        method = getattr(type(model), "predict", None)
        if not callable(method):
            raise ModelLoadError(f"the unpickled {type(model).__name__} has no predict() method")
        self._predict = types.MethodType(unwrap_mlflow(method), model)
        self._context = context
        parameters = inspect.signature(self._predict).parameters
        positional = [
            p
            for p in parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name != "params"
        ]
        self._with_context = "context" in parameters or len(positional) >= 2
        self._with_params = "params" in parameters
        self.python_model = model

    def predict(self, data: Any) -> Any:
        args = (self._context, data) if self._with_context else (data,)
        return self._predict(*args, **({"params": None} if self._with_params else {}))


class MlflowPyfuncFlavor(Flavor):
    name = FLAVOR_NAME
    extra = "mlflow"

    def matches(self, model: Any) -> bool:
        return False  # load-only: packages come from import_mlflow_model

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        raise PackagingError(
            "the mlflow_pyfunc flavor only loads imported MLflow models; use "
            "seaway.packaging.mlflow.import_mlflow_model() to create one"
        )

    def wrap(self, model: Any) -> Predictor:
        raise PackagingError("the mlflow_pyfunc flavor only loads imported MLflow models")

    def load(self, context: LoadContext) -> Predictor:
        opts = context.options
        if not context.trusted:
            what = (
                f"{opts['python_model']} is a pickle made by MLflow, and unpickling can run "
                "arbitrary code"
                if opts.get("python_model")
                else f"its loader module {opts.get('loader_module')!r} is code from the package"
            )
            raise UntrustedPackageError(
                f"this MLflow python_function model runs code when it loads: {what}. Load with "
                "trusted=True (CLI: --trusted) only if you trust where the MLflow model came from"
            )
        try:
            with _code_on_path(context.model_dir, opts.get("code")):
                if opts.get("loader_module"):
                    return _load_from_loader_module(context.model_dir, opts)
                return _load_python_model(context.model_dir, opts)
        except SeawayError:
            raise
        except ModuleNotFoundError as exc:
            raise ModelLoadError(
                f"this MLflow model needs the module {exc.name!r}, which is not installed. Install "
                "it (the package's requirements.txt lists what the model was logged with)"
                + (
                    "; this model's own code imports MLflow, so it needs mlflow installed"
                    if (exc.name or "").split(".")[0] == "mlflow"
                    else ""
                )
            ) from exc
        except Exception as exc:
            raise ModelLoadError(
                f"loading the MLflow python_function model failed: {type(exc).__name__}: {exc}"
            ) from exc


def saved_from_mlflow(conf: dict[str, Any], copy: Callable[[Any, str], str]) -> SavedModel:
    """Describe MLmodel's ``python_function`` section as this flavor's options (its "save").

    ``copy(rel, what)`` copies a file or folder that MLmodel names into the package and returns
    its path inside the package's model folder.
    """
    loader = str(conf.get("loader_module"))
    options: dict[str, Any]
    if loader == PYTHON_MODEL_LOADER:
        pickled = copy(conf.get("python_model"), "python_function flavor's python_model")
        artifacts = {
            str(name): copy(
                info.get("path") if isinstance(info, dict) else info, f"artifact {name!r}"
            )
            for name, info in (conf.get("artifacts") or {}).items()
        }
        options = {
            "python_model": pickled,
            "compression": conf.get("python_model_compression"),
            "model_config": conf.get("model_config"),
            "artifacts": artifacts,
        }
        reasons = [f"{pickled} is a pickle made by MLflow; unpickling it can run arbitrary code"]
        framework, version = "cloudpickle", conf.get("cloudpickle_version")
    else:
        data = copy(conf["data"], "python_function flavor's data") if conf.get("data") else None
        options = {"loader_module": loader, "data": data}
        reasons = [f"the loader module {loader!r} runs when the model loads"]
        framework, version = "python", conf.get("python_version")
    if conf.get("code"):
        options["code"] = copy(conf["code"], "python_function flavor's code folder")
        reasons.append(f"packaged Python code ({options['code']}) runs when the model loads")
    return SavedModel(
        framework=framework,
        framework_version=str(version or "unknown"),
        requirements=("cloudpickle",) if framework == "cloudpickle" else (),
        options=options,
        needs_trust=tuple(reasons),
    )


def _load_python_model(model_dir: Path, opts: dict[str, Any]) -> Predictor:
    opener = _OPENERS.get(opts.get("compression") or "", open)
    with opener(model_dir / opts["python_model"], "rb") as handle:
        model = _MlflowFreeUnpickler(handle).load()
    artifacts = {name: str(model_dir / rel) for name, rel in opts.get("artifacts", {}).items()}
    context = PythonModelContext(artifacts, opts.get("model_config"))
    if callable(getattr(model, "load_context", None)):
        model.load_context(context)
    return _PythonModelPredictor(model, context)


def _load_from_loader_module(model_dir: Path, opts: dict[str, Any]) -> Predictor:
    load_pyfunc: Callable[[str], Any] = importlib.import_module(opts["loader_module"])._load_pyfunc
    data = model_dir / opts["data"] if opts.get("data") else model_dir
    loaded = load_pyfunc(str(data))
    if not callable(getattr(loaded, "predict", None)):
        raise ModelLoadError(
            f"{opts['loader_module']}._load_pyfunc() returned no model with predict()"
        )
    return loaded  # type: ignore[no-any-return]


@contextlib.contextmanager
def _code_on_path(model_dir: Path, code: str | None) -> Iterator[None]:
    """Put the model's ``code`` folder first on sys.path, as MLflow does, and keep it there
    (predict may import lazily); write no bytecode into the checksummed package while loading."""
    if code:
        code_dir = str(model_dir / code)
        if code_dir not in sys.path:
            sys.path.insert(0, code_dir)
    previous = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        sys.dont_write_bytecode = previous
