"""The model's own answers on its reference data, recorded at log time.

``log_model(reference_data=X)`` profiles the inputs (``profile.py``); here the model predicts on
those rows too, through the same predictor and signature the package is served with, and two more
parts of the package come of it:

- a **predictions profile** (``reference_predictions.json``): a ``ReferenceProfile`` over the
  outputs, named as the prediction log names them without its ``output.`` prefix (``predict``;
  ``predict_proba.<class label>``), so prediction drift is measured exactly as input drift is;
- with ``reference_labels=y`` and a classifier with probabilities, a **calibration**
  (``calibration.json``, ``calibration.py``) for estimating accuracy before labels arrive.

At most ``MAX_ROWS`` reference rows are predicted (a seeded sample beyond that): enough for both,
and bounded for any model. A model that cannot predict on its reference data (a frame missing
one of its columns, say) gets neither, with a warning; the profile of the inputs is kept.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seaway.errors import PackagingError, SeawayWarning
from seaway.packaging.calibration import Calibration, fit_calibration
from seaway.packaging.profile import ReferenceProfile, build_profile, category_label
from seaway.packaging.signature import PROBA_OUTPUT_NAME, Signature, to_numpy

PREDICTIONS_FILE = "reference_predictions.json"
CALIBRATION_FILE = "calibration.json"
PREDICT = "predict"
#: Reference rows predicted at most; beyond, a sample drawn with ``SEED``.
MAX_ROWS = 100_000
SEED = 0


@dataclass(frozen=True)
class ReferenceOutputs:
    predictions: ReferenceProfile
    calibration: Calibration | None


def output_columns(
    name: str, value: Any, classes: Sequence[Any] | None
) -> list[tuple[str, np.ndarray[Any, Any]]]:
    """One output as the prediction log's columns: a value per row keeps its name; a 2-D output
    gives ``<name>.<class label>`` per column (``<name>.<index>`` without classes of its width)."""
    array = np.asarray(value)
    if array.ndim <= 1:
        return [(name, array.reshape(-1))]
    flat = array.reshape(len(array), -1)
    width = flat.shape[1]
    labels = (
        [category_label(c) for c in classes]
        if classes is not None and len(classes) == width
        else [str(j) for j in range(width)]
    )
    return [(f"{name}.{label}", flat[:, j]) for j, label in enumerate(labels)]


def row_count(data: Any) -> int:
    data = to_numpy(data)
    if isinstance(data, pd.DataFrame | pd.Series):
        return len(data.index)
    if isinstance(data, Mapping):
        return len(np.asarray(next(iter(data.values())))) if data else 0
    return len(data)


def take_rows(data: Any, index: np.ndarray[Any, Any]) -> Any:
    """Rows ``index`` of a DataFrame, Series, array, dict of columns or list of rows."""
    data = to_numpy(data)
    if isinstance(data, pd.DataFrame | pd.Series):
        return data.iloc[index].reset_index(drop=True)
    if isinstance(data, Mapping):
        return {k: _take(v, index) for k, v in data.items()}
    return _take(data, index)


def _take(values: Any, index: np.ndarray[Any, Any]) -> Any:
    if isinstance(values, pd.Series):
        return values.iloc[index].reset_index(drop=True)
    if isinstance(values, list | tuple):
        return [values[i] for i in index.tolist()]
    return np.asarray(values)[index]


def sample_index(n: int, max_rows: int = MAX_ROWS, seed: int = SEED) -> np.ndarray[Any, Any]:
    """All of ``range(n)``, or ``max_rows`` of them drawn without replacement, in order."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def reference_outputs(
    predictor: Any,
    reference_data: Any,
    reference_labels: Any,
    signature: Signature | None,
    classes: Sequence[Any] | None,
    *,
    max_rows: int = MAX_ROWS,
) -> ReferenceOutputs | None:
    """Predict on (a sample of) the reference rows; None, with a warning, when the model cannot.
    ``reference_labels`` (one per reference row, or None) calibrate a classifier's
    probabilities."""
    n = row_count(reference_data)
    labels = None
    if reference_labels is not None:
        labels = np.asarray(to_numpy(reference_labels), dtype=object).reshape(-1)
        if labels.size != n:
            raise PackagingError(
                f"reference_labels has {labels.size} labels but reference_data has {n} rows; "
                "give one label per reference row, in the same order"
            )
    index = sample_index(n, max_rows)
    rows = take_rows(reference_data, index) if index.size < n else reference_data
    try:
        native = signature.coerce(rows) if signature is not None else rows
        predicted = to_numpy(predictor.predict(native))
    except Exception as exc:
        warnings.warn(
            f"the model cannot predict on reference_data ({type(exc).__name__}: {exc}); the "
            "package gets no predictions profile or calibration. Pass the inputs the model "
            "takes (without the target column)",
            SeawayWarning,
            stacklevel=4,
        )
        return None
    outputs = {PREDICT: predicted}
    if hasattr(predictor, "predict_proba"):
        with contextlib.suppress(Exception):  # a pipeline may expose it without supporting it
            outputs[PROBA_OUTPUT_NAME] = to_numpy(predictor.predict_proba(native))
    columns = [
        col for name, value in outputs.items() for col in output_columns(name, value, classes)
    ]
    size = index.size
    if any(len(values) != size for _, values in columns):
        return None  # not one answer per row (a model over whole batches): nothing to compare
    frame = pd.DataFrame(dict(columns))
    if classes is not None:  # a classifier's labels are categories: chi-squared, not KS on 0/1
        frame[PREDICT] = pd.Categorical(frame[PREDICT])
    # outputs move together by construction (probabilities sum to 1): no multivariate check
    predictions = build_profile(frame).model_copy(update={"multivariate": None})
    calibration = None
    proba = outputs.get(PROBA_OUTPUT_NAME)
    if labels is not None and proba is not None and classes is not None:
        calibration = _calibrate(np.asarray(proba), labels[index], classes)
    return ReferenceOutputs(predictions, calibration)


def _calibrate(
    proba: np.ndarray[Any, Any], labels: np.ndarray[Any, Any], classes: Sequence[Any]
) -> Calibration | None:
    if proba.ndim != 2 or proba.shape[1] != len(classes) or len(classes) < 2:
        return None
    index = class_index(labels, classes)
    if not (index >= 0).any():
        raise PackagingError(
            f"none of reference_labels is one of the model's classes {list(classes)[:10]}; "
            "give the true labels of the reference rows"
        )
    return fit_calibration(proba, index, classes, source="reference")


def class_index(labels: Any, classes: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Each label's column among ``classes`` (-1: none). Numeric classes match labels by value,
    so 1, 1.0, "1" and True all find class 1; other classes match by ``category_label``."""
    array = np.asarray(labels)
    if array.dtype.kind in "biuf" and array.size > 64:  # one type: look up the distinct values
        distinct, inverse = np.unique(array.reshape(-1), return_inverse=True)
        return class_index(distinct, classes)[inverse.reshape(-1)]
    by_label = {category_label(c): j for j, c in enumerate(classes)}
    numeric = all(isinstance(c, int | float) and not isinstance(c, bool) for c in classes)
    by_value = {float(c): j for j, c in enumerate(classes)} if numeric else {}
    found = []
    for label in np.asarray(labels, dtype=object).reshape(-1).tolist():
        j = by_label.get(category_label(label), -1)
        number = _number(label) if j < 0 and by_value else None
        if number is not None:
            j = by_value.get(number, -1)
        found.append(j)
    return np.asarray(found, dtype=np.int64)


def _number(value: Any) -> float | None:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
