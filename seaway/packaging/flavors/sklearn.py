"""scikit-learn estimators and pipelines, saved with skops (no pickle).

skops refuses to build any type it has not been told to trust. Types from scikit-learn, numpy and
scipy are trusted; anything else (a custom transformer, a FunctionTransformer's function) makes the
package need ``trusted=True``, and the refusal names those types. Packages imported from MLflow may
hold a pickle instead (``serialization: pickle``), which always needs ``trusted=True``.
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path
from typing import Any

from seaway.errors import ModelLoadError, UntrustedPackageError
from seaway.packaging.flavors.base import (
    Flavor,
    LoadContext,
    Predictor,
    SavedModel,
    SaveOptions,
    from_module,
    require,
)

SAFE_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "builtins.", "collections.")
MODEL_FILE = "model.skops"


#: imported by ``skops.io`` only because it walks every package of scikit-learn; it imports torch
_TORCH_SHIM = "sklearn.externals.array_api_compat.torch"


def skops_io() -> Any:
    """``skops.io``, imported without torch.

    On import, skops lists scikit-learn's estimators (``sklearn.utils.all_estimators``), which
    imports every package under ``sklearn``, including the array-API shim for torch, which imports
    torch itself: about 0.9 s and 300 MB in every replica and batch worker of an environment that
    has torch, though no scikit-learn model needs it to load. That one package is hidden for the
    duration (``pkgutil.walk_packages`` skips packages that fail to import), unless torch is
    loaded already; it imports normally afterwards.
    """
    if "skops.io" in sys.modules:
        return sys.modules["skops.io"]
    hide = "torch" not in sys.modules and _TORCH_SHIM not in sys.modules
    if hide:
        sys.modules[_TORCH_SHIM] = None  # type: ignore[assignment]
    try:
        return require(
            "skops.io", package="skops", extra="sklearn", purpose="The scikit-learn flavor"
        )
    finally:
        if hide and sys.modules.get(_TORCH_SHIM, False) is None:
            del sys.modules[_TORCH_SHIM]


def unsafe_types(types: list[str]) -> list[str]:
    return sorted(t for t in types if not t.startswith(SAFE_TYPE_PREFIXES))


class SklearnFlavor(Flavor):
    name = "sklearn"
    extra = "sklearn"

    def matches(self, model: Any) -> bool:
        return from_module(model, "sklearn")

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        sio = skops_io()
        sklearn = require(
            "sklearn", package="scikit-learn", extra="sklearn", purpose="The scikit-learn flavor"
        )
        path = model_dir / MODEL_FILE
        try:
            sio.dump(model, path)
        except Exception as exc:  # skops raises plain TypeError/ValueError for what it cannot store
            raise ModelLoadError(f"skops cannot store this {type(model).__name__}: {exc}") from exc
        unsafe = unsafe_types(sio.get_untrusted_types(file=path))
        reasons = (
            (f"{MODEL_FILE} holds types outside scikit-learn, numpy and scipy: {unsafe}",)
            if unsafe
            else ()
        )
        return SavedModel(
            framework="scikit-learn",
            framework_version=sklearn.__version__,
            requirements=("scikit-learn", "skops", "numpy", "scipy"),
            options={"file": MODEL_FILE, "serialization": "skops"},
            needs_trust=reasons,
        )

    def wrap(self, model: Any) -> Predictor:
        return model  # type: ignore[no-any-return]

    def load(self, context: LoadContext) -> Predictor:
        path = context.model_dir / context.options.get("file", MODEL_FILE)
        if context.options.get("serialization") in ("pickle", "cloudpickle"):
            return _load_pickle(path, context)
        sio = skops_io()
        try:
            types = sio.get_untrusted_types(file=path)
        except Exception as exc:
            raise ModelLoadError(f"{path} is not a readable skops file: {exc}") from exc
        unsafe = unsafe_types(types)
        if unsafe and not context.trusted:
            raise UntrustedPackageError(
                f"{path.name} holds types that are not from scikit-learn, numpy or scipy: {unsafe}. "
                "Building them can run code from the package. Load with trusted=True "
                "(CLI: --trusted) only if you trust where this package came from"
            )
        try:
            return sio.load(path, trusted=types)  # type: ignore[no-any-return]
        except Exception as exc:
            raise ModelLoadError(f"skops failed to load {path.name}: {exc}") from exc


def _load_pickle(path: Path, context: LoadContext) -> Predictor:
    if not context.trusted:
        raise UntrustedPackageError(
            f"{path.name} is a pickle, and unpickling can run arbitrary code. Load with "
            "trusted=True (CLI: --trusted) only if you trust where this model came from, or re-log "
            "it with seaway.log_model() to store it with skops"
        )
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # type: ignore[no-any-return]
    except Exception as exc:
        raise ModelLoadError(f"failed to unpickle {path.name}: {exc}") from exc
