"""Estimated performance before labels arrive: confidence-based performance estimation (CBPE).

NannyML's method. If a classifier's calibrated probability that a row is class c is p, then
predicting c is right with probability p: over a window, the *expected* confusion matrix adds, for
each row, its calibrated probabilities to the column of the class the model predicted. Accuracy,
precision, recall and F1 follow from that matrix exactly as realised ones do from counts, with the
same conventions (binary: the second class is positive; multiclass: macro averages).

It holds while the probability of the label given the inputs stays what it was on the reference
data (covariate shift: the inputs move, the concept does not), which is the drift a model meets
most; a change of concept is what realised metrics, from feedback, are for. The calibration comes
from the package (``log_model(reference_labels=...)``) or is fitted on labelled logged rows
(``calibration_from_feedback``); without one the raw probabilities are taken at their word.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seaway.monitoring.metrics import Metric
from seaway.packaging.calibration import Calibration, fit_calibration

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1")
#: Fewer labelled rows than this give no calibration from feedback (an isotonic fit on a handful
#: of rows is noise).
MIN_CALIBRATION_ROWS = 100

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


def expected_confusion(proba: Any, predicted: Any) -> FloatArray:
    """``[true class, predicted class]`` expected counts: row i adds ``proba[i]`` to the column
    of its predicted class ``predicted[i]`` (a column index)."""
    scores = np.asarray(proba, dtype=np.float64)
    index = np.asarray(predicted, dtype=np.int64)
    k = scores.shape[1]
    matrix = np.zeros((k, k), dtype=np.float64)
    for j in range(k):
        chosen = index == j
        if chosen.any():
            matrix[:, j] = scores[chosen].sum(axis=0)
    return matrix


def metrics_from_confusion(matrix: Any) -> dict[str, float]:
    """Accuracy, precision, recall and F1 of a (possibly expected) confusion matrix
    ``[true, predicted]``: the second class's for two classes, else macro over the classes that
    are predicted or expected to occur."""
    m = np.asarray(matrix, dtype=np.float64)
    total = m.sum()
    tp = np.diag(m)
    predicted = m.sum(axis=0)
    actual = m.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros_like(tp), where=actual > 0)
    denominator = predicted + actual  # 2TP + FP + FN
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp), where=denominator > 0)
    if m.shape[0] == 2:
        chosen: Any = [1]
    else:
        chosen = (predicted > 0) | (actual > 1e-12)
    return {
        "accuracy": float(tp.sum() / total) if total else float("nan"),
        "precision": float(precision[chosen].mean()),
        "recall": float(recall[chosen].mean()),
        "f1": float(f1[chosen].mean()),
    }


def estimate_performance(
    proba: Any, predicted: Any | None, calibration: Calibration | None = None
) -> dict[str, Metric]:
    """Estimated accuracy, precision, recall and F1 from probabilities (a column per class).

    ``predicted`` holds each row's predicted class as a column index (-1 or None: the most
    probable class, which is what most classifiers predict). Rows with missing probabilities are
    left out. Each metric's reason says whether the probabilities were calibrated."""
    scores = np.asarray(proba, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        why = "estimation needs a probability column per class (at least two)"
        return {m: Metric(m, None, why) for m in ESTIMATED_METRICS}
    finite = np.isfinite(scores).all(axis=1)
    scores = scores[finite]
    if not scores.shape[0]:
        why = "no rows with predicted probabilities were logged"
        return {m: Metric(m, None, why) for m in ESTIMATED_METRICS}
    argmax = scores.argmax(axis=1)
    index = argmax if predicted is None else np.asarray(predicted, dtype=np.int64)[finite]
    index = np.where((index >= 0) & (index < scores.shape[1]), index, argmax)
    if calibration is not None:
        scores = calibration.apply(scores)
        note = f"CBPE, calibrated on {calibration.n_rows} labelled {calibration.source} rows"
    else:
        note = "CBPE on uncalibrated probabilities (no reference labels or feedback to calibrate)"
    values = metrics_from_confusion(expected_confusion(scores, index))
    return {name: Metric(name, values[name], note) for name in ESTIMATED_METRICS}


def calibration_from_feedback(
    proba: Any, label_index: Any, classes: Sequence[Any]
) -> Calibration | None:
    """A calibration fitted on labelled logged rows (labels as column indices, -1 unknown), or
    None with fewer than ``MIN_CALIBRATION_ROWS`` usable rows."""
    scores = np.asarray(proba, dtype=np.float64)
    index = np.asarray(label_index, dtype=np.int64)
    usable = np.isfinite(scores).all(axis=1) & (index >= 0)
    if int(usable.sum()) < MIN_CALIBRATION_ROWS or len(classes) < 2:
        return None
    return fit_calibration(scores[usable], index[usable], classes, source="feedback")
