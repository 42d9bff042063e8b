"""Realised performance: metrics of predictions against true labels, in plain numpy.

They equal scikit-learn's on the same labels (tests check it) without importing it, so a server
without scikit-learn still reports them. Conventions, as scikit-learn's:

- **Binary** classifiers (two classes): precision, recall and F1 are the positive class's, and
  the positive class is the *second* of the model's classes (``pos_label=classes[1]``, which for
  sorted labels such as 0/1 or "no"/"yes" is 1 and "yes"). ROC AUC ranks the positive class's
  probability.
- **Multiclass**: precision, recall and F1 are *macro* averages (the unweighted mean over the
  labels present in the true or predicted labels); ROC AUC is one-vs-rest, macro averaged over
  the classes that both occur and do not occur in the labels.
- A precision or recall with nothing to divide by counts 0, as scikit-learn's default does.
- A metric that is undefined (ROC AUC when the labels hold one class, R² on one row) is ``None``
  with the reason, never an exception: a window of one class is normal in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
CLASSIFIER_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSOR_METRICS = ("mae", "rmse", "r2")
_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class Metric:
    """A metric's value, or ``None`` with ``reason`` saying why it is undefined (``reason`` may
    also qualify a value, e.g. classes left out of a macro average)."""

    name: str
    value: float | None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "reason": self.reason}


def accuracy(y_true: Any, y_pred: Any) -> float:
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean(truth == pred)) if truth.size else float("nan")


def precision_recall_f1(
    y_true: Any, y_pred: Any, classes: Sequence[Any]
) -> tuple[float, float, float]:
    """Binary (two ``classes``): the positive class ``classes[1]``'s; else macro averages over
    the labels present in ``y_true`` or ``y_pred``."""
    truth, pred = np.asarray(y_true), np.asarray(y_pred)
    binary = len(classes) == 2
    positives = [classes[1]] if binary else list(np.unique(np.concatenate([truth, pred])))
    scores = np.array([_prf(truth == label, pred == label) for label in positives])
    return float(scores[:, 0].mean()), float(scores[:, 1].mean()), float(scores[:, 2].mean())


def _prf(actual: np.ndarray[Any, Any], predicted: np.ndarray[Any, Any]) -> tuple[float, ...]:
    tp = float(np.count_nonzero(actual & predicted))
    fp = float(np.count_nonzero(predicted & ~actual))
    fn = float(np.count_nonzero(actual & ~predicted))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return precision, recall, f1


def average_ranks(values: Any) -> FloatArray:
    """1-based ranks, ties sharing their average rank (as ``scipy.stats.rankdata``)."""
    data = np.asarray(values, dtype=np.float64)
    order = np.argsort(data, kind="mergesort")
    ordered = data[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], data.size]
    ranks = np.empty(data.size, dtype=np.float64)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    return ranks


def binary_auc(positive: Any, score: Any) -> float | None:
    """ROC AUC of ``score`` for the boolean ``positive`` (Mann-Whitney U over average ranks,
    which equals the area under the ROC curve, ties included); None with one class only."""
    actual = np.asarray(positive, dtype=bool)
    n_pos = int(np.count_nonzero(actual))
    n_neg = actual.size - n_pos
    if not n_pos or not n_neg:
        return None
    ranks = average_ranks(score)
    return float((ranks[actual].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def roc_auc(label_index: Any, proba: Any) -> Metric:
    """Binary: the positive column's AUC; multiclass: one-vs-rest, macro. ``label_index`` holds
    each row's true class as a column of ``proba``."""
    index, scores = np.asarray(label_index), np.asarray(proba, dtype=np.float64)
    if not np.isfinite(scores).all():
        return Metric("roc_auc", None, "the probabilities hold NaN or infinite values")
    if scores.shape[1] == 2:
        value = binary_auc(index == 1, scores[:, 1])
        if value is None:
            return Metric("roc_auc", None, "undefined: the labels hold one class only")
        return Metric("roc_auc", value)
    per_class = [binary_auc(index == j, scores[:, j]) for j in range(scores.shape[1])]
    defined = [v for v in per_class if v is not None]
    if not defined:
        return Metric("roc_auc", None, "undefined: the labels hold one class only")
    note = None
    if len(defined) < len(per_class):
        note = f"macro over the {len(defined)} of {len(per_class)} classes found in the labels"
    return Metric("roc_auc", float(np.mean(defined)), note)


def log_loss(label_index: Any, proba: Any) -> Metric:
    """Mean negative log of the true class's probability, clipped to [eps, 1-eps]."""
    index, scores = np.asarray(label_index), np.asarray(proba, dtype=np.float64)
    if not np.isfinite(scores).all():
        return Metric("log_loss", None, "the probabilities hold NaN or infinite values")
    chosen = np.clip(scores[np.arange(index.size), index], _EPS, 1.0 - _EPS)
    return Metric("log_loss", float(-np.mean(np.log(chosen))))


def classification_metrics(
    y_true: Any, y_pred: Any, classes: Sequence[Any], proba: Any = None
) -> dict[str, Metric]:
    """Every classifier metric. Labels and ``classes`` must be comparable values (Seaway passes
    their ``category_label`` strings); ``proba`` has a column per class, in ``classes``' order.
    Rows whose true label is none of the classes count in accuracy, precision, recall and F1
    (as wrong answers) and are left out of ROC AUC and log loss, which need its column; so are
    rows whose probabilities are missing (NaN)."""
    truth, pred = np.asarray(y_true, dtype=object), np.asarray(y_pred, dtype=object)
    if not truth.size:
        return {m: Metric(m, None, "no labelled rows") for m in CLASSIFIER_METRICS}
    precision, recall, f1 = precision_recall_f1(truth, pred, classes)
    out = {
        "accuracy": Metric("accuracy", accuracy(truth, pred)),
        "precision": Metric("precision", precision),
        "recall": Metric("recall", recall),
        "f1": Metric("f1", f1),
    }
    if proba is None:
        why = "no predicted probabilities were logged"
        return out | {m: Metric(m, None, why) for m in ("roc_auc", "log_loss")}
    scores = np.asarray(proba, dtype=np.float64)
    index = label_index(truth, classes)
    unknown, unscored = index < 0, ~np.isfinite(scores).all(axis=1)
    known = ~(unknown | unscored)
    notes = []
    if unknown.any():
        notes.append(f"{int(unknown.sum())} rows whose label is not one of the model's classes")
    if unscored.any():
        notes.append(f"{int(unscored.sum())} rows without logged probabilities")
    note = f"{' and '.join(notes)} left out" if notes else None
    if not known.any():
        return out | {m: Metric(m, None, note) for m in ("roc_auc", "log_loss")}
    auc, loss = roc_auc(index[known], scores[known]), log_loss(index[known], scores[known])
    if note is not None:
        auc = Metric(auc.name, auc.value, "; ".join(filter(None, [auc.reason, note])))
        loss = Metric(loss.name, loss.value, note)
    return out | {"roc_auc": auc, "log_loss": loss}


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, Metric]:
    """MAE, RMSE and R² over the rows where both values are finite numbers."""
    truth = np.asarray(y_true, dtype=np.float64)
    pred = np.asarray(y_pred, dtype=np.float64)
    finite = np.isfinite(truth) & np.isfinite(pred)
    note = None if finite.all() else f"{int((~finite).sum())} rows without a numeric value left out"
    truth, pred = truth[finite], pred[finite]
    if not truth.size:
        return {m: Metric(m, None, note or "no labelled rows") for m in REGRESSOR_METRICS}
    error = truth - pred
    out = {
        "mae": Metric("mae", float(np.mean(np.abs(error))), note),
        "rmse": Metric("rmse", float(np.sqrt(np.mean(error**2))), note),
    }
    if truth.size < 2:
        return out | {"r2": Metric("r2", None, "undefined on fewer than two rows")}
    residual = float(np.sum(error**2))
    total = float(np.sum((truth - truth.mean()) ** 2))
    if total == 0.0:  # scikit-learn's force_finite: a constant truth scores 1 if hit, else 0
        return out | {"r2": Metric("r2", 1.0 if residual == 0.0 else 0.0, note)}
    return out | {"r2": Metric("r2", 1.0 - residual / total, note)}


def label_index(labels: Any, classes: Sequence[Any]) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Each label's position in ``classes``; -1 for a label that is none of them."""
    position = {label: j for j, label in enumerate(classes)}
    return np.fromiter(
        (position.get(label, -1) for label in np.asarray(labels, dtype=object).tolist()),
        dtype=np.int64,
        count=np.asarray(labels).size,
    )
