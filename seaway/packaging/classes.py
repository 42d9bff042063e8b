"""A classifier's class labels: recorded at log time, and what they name downstream.

``log_model`` reads ``classes_`` from the live model (scikit-learn estimators and pipelines, the
scikit-learn APIs of XGBoost and LightGBM) into ``Signature.classes``: the labels in the order of
``predict_proba``'s columns. ``models show``, the V2 model metadata, ``seaway predict --proba``
and batch output (``predict_proba_<class>`` columns) all say which column is which from it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from seaway.packaging.signature import PROBA_OUTPUT_NAME, TensorSpec

PREDICT_PROBA = PROBA_OUTPUT_NAME
#: Labels that make plain column names everywhere (Parquet, CSV, SQL, pandas attribute access).
_COLUMN_SAFE = re.compile(r"[A-Za-z0-9_]{1,64}")


def classifier_classes(predictor: Any, outputs: Sequence[TensorSpec]) -> tuple[Any, ...] | None:
    """The live model's class labels as JSON values, or None when it has none (or they do not
    match its ``predict_proba`` width, as for multi-output classifiers)."""
    try:
        found = getattr(predictor, "classes_", None)
    except Exception:  # a pipeline whose last step has no classes_ raises more than AttributeError
        return None
    if found is None:
        return None
    labels = np.asarray(found)
    if labels.ndim != 1 or labels.size == 0:
        return None
    if any(isinstance(label, list | tuple | np.ndarray) for label in labels.tolist()):
        return None
    proba = [spec for spec in outputs if spec.name == PREDICT_PROBA and len(spec.shape) == 2]
    if any(spec.shape[1] not in (-1, labels.size) for spec in proba):
        return None
    return tuple(_json_label(label) for label in labels.tolist())


def proba_columns(
    classes: Sequence[Any] | None, width: int, name: str = PREDICT_PROBA
) -> list[str]:
    """Column names for ``width`` probability columns: ``predict_proba_<class>`` when every class
    makes a plain, distinct column name, else ``predict_proba_0`` ... by position."""
    if classes is not None and len(classes) == width:
        texts = [str(label) for label in classes]
        if all(_COLUMN_SAFE.fullmatch(text) for text in texts) and len(set(texts)) == width:
            return [f"{name}_{text}" for text in texts]
    return [f"{name}_{i}" for i in range(width)]


def _json_label(label: Any) -> Any:
    if isinstance(label, bytes):
        return label.decode("utf-8", errors="replace")
    if isinstance(label, bool | int | float | str):
        return label
    return str(label)
