"""LightGBM models (``lightgbm.Booster`` and the scikit-learn wrappers), in LightGBM's text format.

Only the booster is stored. The scikit-learn wrappers add little on top of it, so rather than
pickling the wrapper the package records that little (the class labels, their dtype, the number of
classes, whether the objective is custom) and loading rebuilds a predictor that returns exactly
what the wrapper returned: ``predict_proba`` stacks ``1 - p, p`` for binary models, and ``predict``
maps the arg-max back to the original labels.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

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

MODEL_FILE = "model.txt"
BOOSTER = "Booster"
CUSTOM_OBJECTIVE = "custom"


def _lightgbm() -> ModuleType:
    return require("lightgbm", package="lightgbm", extra="lightgbm", purpose="The LightGBM flavor")


class BoosterPredictor:
    """A booster's raw ``predict``: what regressors, rankers and plain boosters return."""

    def __init__(self, booster: Any) -> None:
        self._booster = booster

    def predict(self, data: Any) -> Any:
        return self._booster.predict(data)


class ClassifierPredictor(BoosterPredictor):
    """``LGBMClassifier``'s outputs rebuilt from its booster and its labels."""

    def __init__(self, booster: Any, classes: np.ndarray[Any, Any]) -> None:
        super().__init__(booster)
        self._classes = classes

    @property
    def classes_(self) -> np.ndarray[Any, Any]:
        """The labels, as the wrapper names them (``log_model`` records them in the signature)."""
        return self._classes

    def predict_proba(self, data: Any) -> Any:
        result = self._booster.predict(data)
        if len(self._classes) > 2 or result.ndim == 2:
            return result
        return np.vstack((1.0 - result, result)).transpose()

    def predict(self, data: Any) -> Any:
        return self._classes[np.argmax(self.predict_proba(data), axis=1)]


class LightGBMFlavor(Flavor):
    name = "lightgbm"
    extra = "lightgbm"

    def matches(self, model: Any) -> bool:
        # before sklearn: LGBMModel derives from sklearn.base.BaseEstimator
        return from_module(model, "lightgbm")

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        lgb = _lightgbm()
        opts = describe(lgb, model)
        try:
            _booster(lgb, model).save_model(str(model_dir / MODEL_FILE))
        except Exception as exc:  # LightGBMError
            raise UnsupportedModelError(
                f"LightGBM cannot save this {type(model).__name__}: {exc}"
            ) from exc
        return SavedModel(
            framework="lightgbm",
            framework_version=str(lgb.__version__),
            requirements=("lightgbm", "numpy"),
            options={"file": MODEL_FILE, **opts},
        )

    def wrap(self, model: Any) -> Predictor:
        # the predictor ``load`` will rebuild, so the sample run checks the rebuilt outputs too
        lgb = _lightgbm()
        return _predictor(_booster(lgb, model), describe(lgb, model))

    def load(self, context: LoadContext) -> Predictor:
        lgb = _lightgbm()
        path = context.model_dir / context.options.get("file", MODEL_FILE)
        try:
            booster = lgb.Booster(model_file=str(path))
        except Exception as exc:  # LightGBMError: unreadable or from an incompatible version
            raise ModelLoadError(
                f"lightgbm {lgb.__version__} failed to load {path}: {exc}. Install the lightgbm "
                "version in the package's requirements.txt"
            ) from exc
        return _predictor(booster, context.options)


def describe(lgb: ModuleType, model: Any) -> dict[str, Any]:
    """What ``load`` needs besides the booster file; JSON-serialisable."""
    if isinstance(model, lgb.Booster):
        return {"class": BOOSTER}
    if not isinstance(model, lgb.LGBMModel):
        raise UnsupportedModelError(
            f"cannot package a {type(model).__qualname__}: the LightGBM flavor stores "
            "lightgbm.Booster and LGBMClassifier, LGBMRegressor and LGBMRanker"
        )
    _booster(lgb, model)  # fitted?
    objective = model.objective_
    opts: dict[str, Any] = {
        "class": _public_class(lgb, model),
        "objective": CUSTOM_OBJECTIVE if callable(objective) else str(objective),
    }
    if isinstance(model, lgb.LGBMClassifier):
        classes = np.asarray(model.classes_)
        values = classes.tolist()
        try:
            json.dumps(values)
        except TypeError as exc:
            raise UnsupportedModelError(
                f"the class labels of this LGBMClassifier ({classes.dtype}) cannot be stored: "
                f"{exc}. Fit it on numbers or strings"
            ) from exc
        opts.update(
            n_classes=int(model.n_classes_), classes=values, classes_dtype=classes.dtype.str
        )
    return opts


def _predictor(booster: Any, options: dict[str, Any]) -> Predictor:
    if "classes" not in options or options.get("objective") == CUSTOM_OBJECTIVE:
        # with a custom objective the wrapper itself returns raw scores from predict
        return BoosterPredictor(booster)
    classes = np.asarray(options["classes"], dtype=np.dtype(options["classes_dtype"]))
    return ClassifierPredictor(booster, classes)


def _booster(lgb: ModuleType, model: Any) -> Any:
    if isinstance(model, lgb.Booster):
        return model
    try:
        return model.booster_
    except Exception as exc:  # LGBMNotFittedError
        raise UnsupportedModelError(
            f"this {type(model).__name__} has no trained booster ({exc}); fit it before saving"
        ) from exc


def _public_class(lgb: ModuleType, model: Any) -> str:
    for cls in type(model).__mro__:
        if getattr(lgb, cls.__name__, None) is cls:
            return str(cls.__name__)
    return str(type(model).__name__)
