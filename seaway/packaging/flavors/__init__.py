"""Flavors: one module per framework. Detection order matters (XGBoost and LightGBM estimators
are also scikit-learn estimators), so the most specific flavors come first."""

from __future__ import annotations

from typing import Any

from seaway.errors import PackagingError, UnsupportedModelError
from seaway.packaging.flavors.base import (
    Flavor,
    LoadContext,
    Predictor,
    SavedModel,
    SaveOptions,
)
from seaway.packaging.flavors.lightgbm import LightGBMFlavor
from seaway.packaging.flavors.mlflow_pyfunc import MlflowPyfuncFlavor
from seaway.packaging.flavors.onnx import OnnxFlavor
from seaway.packaging.flavors.pyfunc import ModelContext, PythonFunctionFlavor, PythonModel
from seaway.packaging.flavors.sklearn import SklearnFlavor
from seaway.packaging.flavors.torch import TorchFlavor
from seaway.packaging.flavors.xgboost import XGBoostFlavor

FLAVORS: tuple[Flavor, ...] = (
    XGBoostFlavor(),
    LightGBMFlavor(),
    TorchFlavor(),
    OnnxFlavor(),
    SklearnFlavor(),
    PythonFunctionFlavor(),
    MlflowPyfuncFlavor(),
)
_BY_NAME = {flavor.name: flavor for flavor in FLAVORS}


def detect_flavor(model: Any) -> Flavor:
    for flavor in FLAVORS:
        if flavor.matches(model):
            return flavor
    kind = f"{type(model).__module__}.{type(model).__qualname__}"
    raise UnsupportedModelError(
        f"Seaway cannot package a {kind} object. Supported: scikit-learn estimators and "
        "pipelines, XGBoost, LightGBM, PyTorch modules (TorchScript), ONNX models (onnx.ModelProto "
        "or a path to a .onnx file), and any class deriving from seaway.PythonModel (implement "
        "predict(inputs), and load(context) to restore state from artifacts)"
    )


def get_flavor(name: str) -> Flavor:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise PackagingError(
            f"this package uses flavor {name!r}, which this Seaway does not know "
            f"(known: {', '.join(sorted(_BY_NAME))}); upgrade seaway"
        ) from None


__all__ = [
    "FLAVORS",
    "Flavor",
    "LoadContext",
    "ModelContext",
    "Predictor",
    "PythonModel",
    "SaveOptions",
    "SavedModel",
    "detect_flavor",
    "get_flavor",
]
