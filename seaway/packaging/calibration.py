"""A classifier's calibration: how often each predicted probability turned out right.

Confidence-based performance estimation (CBPE, as NannyML does it) estimates accuracy before
labels arrive from the predicted probabilities alone, which only works if a probability of 0.8
means "right 8 times in 10". Few models are that honest, so ``log_model(reference_data=X,
reference_labels=y)`` fits, per class, an isotonic (monotone, step-wise linear) map from the
predicted probability to the observed frequency of that class on the reference rows, with
pool-adjacent-violators (PAV), and stores it in the package. Applying it is ``np.interp``: the same
interpolation, clipped at both ends, as scikit-learn's ``IsotonicRegression(out_of_bounds="clip")``.

Binary classifiers keep one map, for the positive class (the second of ``classes``); the negative
class's probability is its complement. Multiclass ones keep one map per class (one-vs-rest) and
renormalise each row after calibrating it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, model_validator

from seaway.errors import PackagingError

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class IsotonicMap(BaseModel):
    """A non-decreasing piecewise-linear map through the points ``(x[i], y[i])``."""

    model_config = _FROZEN

    x: tuple[float, ...]  # strictly increasing
    y: tuple[float, ...]  # non-decreasing, within [0, 1]

    @model_validator(mode="after")
    def _check(self) -> IsotonicMap:
        if not self.x or len(self.x) != len(self.y):
            raise ValueError("an isotonic map needs as many y as x values, at least one")
        return self

    def __call__(self, values: Any) -> FloatArray:
        result: FloatArray = np.interp(np.asarray(values, dtype=np.float64), self.x, self.y)
        return result


def pool_adjacent_violators(y: Any, weights: Any = None) -> FloatArray:
    """The non-decreasing sequence closest to ``y`` in weighted least squares (PAV).

    One pass with a stack of blocks: each new value starts a block, merged with the block before
    it while that one's mean is higher; a merged block takes the weighted mean of both.
    """
    values = np.asarray(y, dtype=np.float64)
    w = np.ones_like(values) if weights is None else np.asarray(weights, dtype=np.float64)
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(values.tolist(), w.tolist(), strict=True):
        mean, total, size = value, weight, 1
        while means and means[-1] > mean:
            before, before_total = means.pop(), totals.pop()
            mean = (before * before_total + mean * total) / (before_total + total)
            total += before_total
            size += sizes.pop()
        means.append(mean)
        totals.append(total)
        sizes.append(size)
    return np.repeat(np.asarray(means, dtype=np.float64), sizes)


def isotonic_fit(x: Any, y: Any, weights: Any = None) -> IsotonicMap:
    """The isotonic map of ``y`` on ``x`` (ties in ``x`` pooled first, as scikit-learn does),
    keeping only the points where the map bends: the ends of each flat run."""
    xs = np.asarray(x, dtype=np.float64).ravel()
    ys = np.asarray(y, dtype=np.float64).ravel()
    w = np.ones_like(xs) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    keep = np.isfinite(xs) & np.isfinite(ys) & (w > 0)
    xs, ys, w = xs[keep], ys[keep], w[keep]
    if not xs.size:
        raise PackagingError("cannot fit a calibration on no rows with finite probabilities")
    order = np.argsort(xs, kind="stable")
    xs, ys, w = xs[order], ys[order], w[order]
    unique, starts = np.unique(xs, return_index=True)
    sums = np.add.reduceat(w * ys, starts)
    totals = np.add.reduceat(w, starts)
    fitted = np.clip(pool_adjacent_violators(sums / totals, totals), 0.0, 1.0)
    bends = np.ones(fitted.size, dtype=bool)
    bends[1:-1] = (fitted[1:-1] != fitted[:-2]) | (fitted[1:-1] != fitted[2:])
    return IsotonicMap(x=tuple(unique[bends].tolist()), y=tuple(fitted[bends].tolist()))


class Calibration(BaseModel):
    """Per-class isotonic maps for a classifier's ``predict_proba`` columns."""

    model_config = _FROZEN

    format_version: Literal[1] = 1
    #: The classes in ``predict_proba``'s column order (JSON values).
    classes: tuple[Any, ...]
    #: Labelled rows it was fitted on.
    n_rows: int
    #: Where the labels came from: the reference data given to log_model, or feedback.
    source: Literal["reference", "feedback"] = "reference"
    #: Column index (as text) -> map; binary: the positive class's ("1") alone.
    maps: dict[str, IsotonicMap]

    @property
    def binary(self) -> bool:
        return len(self.classes) == 2

    def apply(self, proba: Any) -> FloatArray:
        """Calibrated probabilities, rows summing to one (a row whose maps all give 0 keeps its
        uncalibrated values)."""
        raw = np.asarray(proba, dtype=np.float64)
        if raw.ndim != 2 or raw.shape[1] != len(self.classes):
            raise PackagingError(
                f"the calibration is for {len(self.classes)} classes; got probabilities of shape "
                f"{list(raw.shape)}"
            )
        if self.binary:
            positive = self.maps["1"](raw[:, 1])
            return np.column_stack([1.0 - positive, positive])
        out = np.column_stack(
            [self.maps[str(j)](raw[:, j]) if str(j) in self.maps else raw[:, j]
             for j in range(raw.shape[1])]
        )  # fmt: skip
        sums = out.sum(axis=1, keepdims=True)
        degenerate = ~(sums[:, 0] > 0)
        out[degenerate] = raw[degenerate]
        sums[degenerate] = 1.0
        calibrated: FloatArray = out / sums
        return calibrated


def fit_calibration(
    proba: Any,
    label_index: Any,
    classes: Sequence[Any],
    *,
    source: Literal["reference", "feedback"] = "reference",
) -> Calibration:
    """Fit a calibration from probabilities and the true labels as column indices (-1: a label
    that is none of ``classes``, counted as "not this class" for every class)."""
    raw = np.asarray(proba, dtype=np.float64)
    index = np.asarray(label_index)
    if raw.ndim != 2 or raw.shape[1] != len(classes) or len(classes) < 2:
        raise PackagingError(
            f"a calibration needs one probability column per class (at least two); got shape "
            f"{list(raw.shape)} for {len(classes)} classes"
        )
    if index.shape != (raw.shape[0],):
        raise PackagingError(
            f"{index.size} labels for {raw.shape[0]} rows of probabilities: give one label per row"
        )
    finite = np.isfinite(raw).all(axis=1)
    raw, index = raw[finite], index[finite]
    columns = [1] if len(classes) == 2 else range(len(classes))
    maps = {str(j): isotonic_fit(raw[:, j], (index == j).astype(np.float64)) for j in columns}
    return Calibration(classes=tuple(classes), n_rows=int(raw.shape[0]), source=source, maps=maps)
