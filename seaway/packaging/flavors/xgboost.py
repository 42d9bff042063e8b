"""XGBoost models (``xgboost.Booster`` and the scikit-learn wrappers), in XGBoost's own format.

The model is written with ``save_model`` as UBJSON, which any XGBoost of the same or a newer
version reads without pickle. The native file keeps the trees, the objective and the number of
classes, but not the wrapper's class or the parameters the wrapper applies when it builds its
``DMatrix`` (``missing``, ``enable_categorical``, ``feature_types``); those go into the options.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from seaway.errors import ModelLoadError, UnsupportedModelError
from seaway.packaging.flavors.base import (
    Flavor,
    LoadContext,
    Predictor,
    SavedModel,
    SaveOptions,
    from_module,
    require,
)

MODEL_FILE = "model.ubj"
BOOSTER = "Booster"
#: Wrapper parameters that change how inputs become a DMatrix and are not in the native file.
PREDICT_PARAMS = ("missing", "enable_categorical", "feature_types")


def _xgboost() -> ModuleType:
    return require("xgboost", package="xgboost", extra="xgboost", purpose="The XGBoost flavor")


def distribution() -> str:
    """The installed distribution: ``xgboost-cpu`` and ``xgboost`` ship the same module."""
    for name in ("xgboost-cpu", "xgboost"):
        try:
            metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        return name
    return "xgboost"


def public_class(xgb: ModuleType, model: Any) -> str:
    """The first class in ``model``'s MRO that ``xgboost`` exports (a user subclass saves as its base)."""
    for cls in type(model).__mro__:
        if getattr(xgb, cls.__name__, None) is cls and (
            cls is xgb.Booster or issubclass(cls, xgb.XGBModel)
        ):
            return str(cls.__name__)
    raise UnsupportedModelError(
        f"cannot package a {type(model).__qualname__}: the XGBoost flavor stores xgboost.Booster "
        "and the scikit-learn wrappers (XGBClassifier, XGBRegressor, XGBRanker, XGBRF*). Save "
        "another wrapper's booster instead: model.get_booster()"
    )


class BoosterPredictor:
    """A raw Booster behind ``predict(array or DataFrame)``: builds the DMatrix it needs."""

    def __init__(self, xgb: ModuleType, booster: Any) -> None:
        self._xgb = xgb
        self._booster = booster

    def predict(self, data: Any) -> Any:
        if not isinstance(data, self._xgb.DMatrix):
            types = self._booster.feature_types
            categorical = bool(types) and "c" in types
            if isinstance(data, pd.DataFrame):
                data = self._xgb.DMatrix(data, enable_categorical=categorical)
            else:  # a bare array has no names; give it the ones the booster was trained with
                data = self._xgb.DMatrix(
                    data,
                    feature_names=self._booster.feature_names,
                    feature_types=types,
                    enable_categorical=categorical,
                )
        return self._booster.predict(data)


class XGBoostFlavor(Flavor):
    name = "xgboost"
    extra = "xgboost"

    def matches(self, model: Any) -> bool:
        # before sklearn: XGBModel derives from sklearn.base.BaseEstimator
        return from_module(model, "xgboost")

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        xgb = _xgboost()
        class_name = public_class(xgb, model)
        path = model_dir / MODEL_FILE
        try:
            model.save_model(str(path))
        except Exception as exc:  # NotFittedError, XGBoostError
            raise UnsupportedModelError(
                f"XGBoost cannot save this {type(model).__name__} ({exc}); fit it before saving"
            ) from exc
        opts: dict[str, Any] = {"file": MODEL_FILE, "class": class_name}
        requirements = [distribution(), "numpy"]
        if class_name != BOOSTER:
            opts["params"] = _predict_params(model)
            requirements.append("scikit-learn")
        return SavedModel(
            framework="xgboost",
            framework_version=str(xgb.__version__),
            requirements=tuple(requirements),
            options=opts,
        )

    def wrap(self, model: Any) -> Predictor:
        xgb = _xgboost()
        if isinstance(model, xgb.Booster):
            return BoosterPredictor(xgb, model)
        return model  # type: ignore[no-any-return]

    def load(self, context: LoadContext) -> Predictor:
        xgb = _xgboost()
        path = context.model_dir / context.options.get("file", MODEL_FILE)
        class_name = str(context.options.get("class", BOOSTER))
        cls = getattr(xgb, class_name, None)
        if not isinstance(cls, type) or not (cls is xgb.Booster or issubclass(cls, xgb.XGBModel)):
            raise ModelLoadError(
                f"{path.name} was saved as an XGBoost {class_name}, which this xgboost "
                f"{xgb.__version__} does not have; install the xgboost version the package pins"
            )
        try:
            if cls is xgb.Booster:
                return BoosterPredictor(xgb, xgb.Booster(model_file=str(path)))
            model = cls(**_decode_params(context.options.get("params", {})))
            model.load_model(str(path))
        except Exception as exc:  # XGBoostError: unreadable file, or written by a newer XGBoost
            raise ModelLoadError(
                f"xgboost {xgb.__version__} failed to load {path}: {exc}. Install the xgboost "
                "version in the package's requirements.txt"
            ) from exc
        return model  # type: ignore[no-any-return]


def _predict_params(model: Any) -> dict[str, Any]:
    params = model.get_params()
    out: dict[str, Any] = {}
    # repr keeps NaN, inf and every float exactly, which JSON cannot
    out["missing"] = repr(float(params.get("missing", float("nan"))))
    out["enable_categorical"] = bool(params.get("enable_categorical", False))
    types = params.get("feature_types")
    out["feature_types"] = [str(t) for t in types] if types is not None else None
    return out


def _decode_params(params: dict[str, Any]) -> dict[str, Any]:
    decoded = {key: params[key] for key in PREDICT_PARAMS if key in params}
    if "missing" in decoded:
        decoded["missing"] = float(decoded["missing"])
    return decoded
