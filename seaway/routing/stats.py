"""What a deployment measures per version: counters that add up across servers and windows.

Each server keeps one :class:`DeploymentStats` per deployment revision and flushes it to the
registry as JSON; the rollout leader sums the servers' (:meth:`~ArmStats.merge`) and subtracts
the snapshot taken when the step began (:meth:`~ArmStats.minus`) to judge one step's window. So
everything here is a count or a sum: latency is a histogram with fixed log-spaced bounds (a
quantile of merged histograms is exact to a bucket, which averaged percentiles are not), and
means and spreads come from ``n``, ``sum`` and ``sum of squares``.

Counters only grow in a running process. A window that would go below zero (a snapshot larger
than the total, as a restarted server's smaller counters would give) is clamped at zero rather
than producing negative rates.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seaway.errors import InvalidInputError
from seaway.routing.counters import (
    LATENCY_BOUNDS_MS,
    MAX_LABELS,
    OTHER_LABEL,
    Counters,
    add_label,
    empty_histogram,
    first_column,
    histogram_quantile,
    label_text,
)

__all__ = [
    "LATENCY_BOUNDS_MS",
    "MAX_LABELS",
    "OTHER_LABEL",
    "ArmStats",
    "DeploymentStats",
    "ShadowStats",
    "divergence",
]

#: output dtype kinds counted as labels (classes, names, flags); "f" is a score
_LABEL_KINDS = frozenset("OUSbiu")
#: the largest value (in size) added to a sum: its square, and a sum of as many squares as any
#: deployment will see, stay finite. An inf sum is stored as JSON null, after which the
#: revision's counters cannot be read back (results and rollout gates would fail on them)
MAX_MAGNITUDE = 1e100


def _summable(x: float) -> bool:
    """Finite and small enough to add to a sum of squares (NaN compares false)."""
    return abs(x) <= MAX_MAGNITUDE


@dataclass
class ArmStats(Counters):
    """One version's share of a deployment: requests, errors, latency, what it predicted, the
    outcomes of its A/B arm and the feedback on its answers."""

    requests: int = 0
    errors: int = 0
    #: latency of the requests answered without error (a fast failure must not look quick)
    latency: list[int] = field(default_factory=empty_histogram)
    #: predicted labels of a classifier (its first output), by their text
    labels: dict[str, int] = field(default_factory=dict)
    #: a numeric first output (regressors, scores)
    score_n: int = 0
    score_sum: float = 0.0
    score_sumsq: float = 0.0
    #: A/B outcomes posted for this arm's answers
    outcome_n: int = 0
    outcome_sum: float = 0.0
    outcome_sumsq: float = 0.0
    #: classifier feedback: true labels received, and how many the arm predicted right
    labelled: int = 0
    correct: int = 0
    #: regressor feedback: true values received, and the errors' absolute and squared sums
    residual_n: int = 0
    abs_err_sum: float = 0.0
    sq_err_sum: float = 0.0

    _GROUPS = (
        ("score_n", ("score_sum", "score_sumsq")),
        ("outcome_n", ("outcome_sum", "outcome_sumsq")),
        ("residual_n", ("abs_err_sum", "sq_err_sum")),
    )

    def observe(self, latency_s: float, ok: bool) -> None:
        """One request: its latency in seconds, and whether it was answered without error."""
        self.requests += 1
        if ok:
            self.latency[bisect_left(LATENCY_BOUNDS_MS, latency_s * 1000.0)] += 1
        else:
            self.errors += 1

    def observe_outputs(self, values: np.ndarray[Any, Any]) -> None:
        """One answer's first output (its first column when 2-D): labels when the dtype is text,
        objects, booleans or integers, scores when it is floating point."""
        if type(values) is np.ndarray and values.size == 1:  # one row: every request pays this
            self._observe_one(values.dtype.kind, values.item())
            return
        column = first_column(values)
        if column.size == 0:
            return
        kind = column.dtype.kind
        if column.size == 1:
            self._observe_one(kind, column.item())
        elif kind == "f":
            numbers = column.astype(np.float64, copy=False)
            numbers = numbers[np.abs(numbers) <= MAX_MAGNITUDE]  # NaN and inf compare false
            self.score_n += int(numbers.size)
            self.score_sum += float(numbers.sum())
            self.score_sumsq += float(np.dot(numbers, numbers))
        elif kind == "O":
            for value in column.tolist():
                add_label(self.labels, label_text(value), 1)
        elif kind in _LABEL_KINDS:
            found, counts = np.unique(column, return_counts=True)
            for value, count in zip(found.tolist(), counts.tolist(), strict=True):
                add_label(self.labels, label_text(value), count)

    def _observe_one(self, kind: str, value: Any) -> None:
        """One value of dtype kind ``kind``, as a Python object (``ndarray.item()``: an object
        array's element as it is, where indexing then ``.item()`` would fail)."""
        if kind == "f":
            x = float(value)
            if _summable(x):
                self.score_n += 1
                self.score_sum += x
                self.score_sumsq += x * x
        elif kind in _LABEL_KINDS:
            key = label_text(value)
            labels = self.labels
            count = labels.get(key)
            if count is None:
                add_label(labels, key, 1)
            else:
                labels[key] = count + 1

    def observe_outcome(self, value: float) -> None:
        """An A/B outcome for one of this arm's answers (a conversion 0/1, revenue, ...)."""
        try:
            x = float(value)
        except (TypeError, ValueError):
            x = math.nan
        if not _summable(x):
            raise InvalidInputError(
                f"an outcome must be a finite number of at most {MAX_MAGNITUDE:g} in size, not "
                f"{value!r:.40}"
            )
        self.outcome_n += 1
        self.outcome_sum += x
        self.outcome_sumsq += x * x

    def observe_label(self, predicted: Any, truth: Any) -> None:
        """The true answer for one predicted row: a floating-point prediction is a regressor's
        (its error is counted), anything else a classifier's (right or wrong)."""
        if isinstance(predicted, float | np.floating):
            try:
                actual = float(truth)
            except (TypeError, ValueError):
                raise InvalidInputError(
                    f"the true value {truth!r:.40} is not a number; the model predicts numbers"
                ) from None
            if not math.isfinite(actual):
                raise InvalidInputError(f"the true value must be a finite number, not {truth!r}")
            error = float(predicted) - actual
            if not _summable(error):
                raise InvalidInputError(
                    f"the error of a prediction must be at most {MAX_MAGNITUDE:g} in size to be "
                    f"counted (predicted {float(predicted):g}, true value {actual:g})"
                )
            self.residual_n += 1
            self.abs_err_sum += abs(error)
            self.sq_err_sum += error * error
        else:
            self.labelled += 1
            self.correct += label_text(predicted) == label_text(truth)

    def quantile_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0 to 1) of the latency in ms, to a bucket; None with no data."""
        return histogram_quantile(self.latency, q)

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.labelled if self.labelled else None

    @property
    def mae(self) -> float | None:
        return self.abs_err_sum / self.residual_n if self.residual_n else None

    @property
    def rmse(self) -> float | None:
        return math.sqrt(self.sq_err_sum / self.residual_n) if self.residual_n else None

    @property
    def score_mean(self) -> float | None:
        return self.score_sum / self.score_n if self.score_n else None

    @property
    def score_std(self) -> float | None:
        """The scores' standard deviation (of the population observed)."""
        if not self.score_n:
            return None
        mean = self.score_sum / self.score_n
        return math.sqrt(max(0.0, self.score_sumsq / self.score_n - mean * mean))

    @property
    def outcome_mean(self) -> float | None:
        return self.outcome_sum / self.outcome_n if self.outcome_n else None


@dataclass
class ShadowStats(Counters):
    """The shadow version's copies and how its answers compare with the primary's.

    ``copies`` counts copies sent (whoever sends one counts it), ``dropped`` the ones not sent
    because too many were in flight; :meth:`observe` records a copy's end."""

    copies: int = 0
    dropped: int = 0
    errors: int = 0
    #: label answers compared row by row with the primary's, and how many were equal
    compared: int = 0
    agreed: int = 0
    #: score answers compared row by row, and the sum of the absolute differences
    abs_diff_n: int = 0
    abs_diff_sum: float = 0.0
    latency: list[int] = field(default_factory=empty_histogram)

    _GROUPS = (("abs_diff_n", ("abs_diff_sum",)),)

    def observe(self, latency_s: float, ok: bool) -> None:
        """A copy finished: its latency, and whether the shadow answered without error."""
        if ok:
            self.latency[bisect_left(LATENCY_BOUNDS_MS, latency_s * 1000.0)] += 1
        else:
            self.errors += 1

    def compare(self, primary: np.ndarray[Any, Any], shadow: np.ndarray[Any, Any]) -> None:
        """Compare the shadow's first output with the primary's, row by row: equal labels
        agree; scores add their absolute difference. Answers with different row counts cannot
        be compared and count as a shadow error."""
        ours, theirs = first_column(primary), first_column(shadow)
        if ours.shape != theirs.shape:
            self.errors += 1
            return
        if ours.dtype.kind == "f" and theirs.dtype.kind == "f":
            diff = np.abs(ours.astype(np.float64) - theirs.astype(np.float64))
            diff = diff[diff <= MAX_MAGNITUDE]  # NaN and inf compare false
            self.abs_diff_n += int(diff.size)
            self.abs_diff_sum += float(diff.sum())
            return
        self.compared += int(ours.size)
        self.agreed += sum(
            label_text(a) == label_text(b)
            for a, b in zip(ours.tolist(), theirs.tolist(), strict=True)
        )

    def quantile_ms(self, q: float) -> float | None:
        """The ``q`` quantile (0 to 1) of the latency in ms, to a bucket; None with no data."""
        return histogram_quantile(self.latency, q)

    @property
    def agreement(self) -> float | None:
        """The share of label rows where the shadow answered as the primary did."""
        return self.agreed / self.compared if self.compared else None

    @property
    def mean_abs_diff(self) -> float | None:
        return self.abs_diff_sum / self.abs_diff_n if self.abs_diff_n else None


@dataclass
class DeploymentStats:
    """A deployment revision's counters: each arm by version (as text), and the shadow's."""

    arms: dict[str, ArmStats] = field(default_factory=dict)
    shadow: ShadowStats | None = None

    def merge(self, other: DeploymentStats) -> DeploymentStats:
        arms = {version: stats.merge(ArmStats()) for version, stats in self.arms.items()}
        for version, stats in other.arms.items():
            arms[version] = (
                arms[version].merge(stats) if version in arms else stats.merge(ArmStats())
            )
        if self.shadow is None or other.shadow is None:
            either = self.shadow or other.shadow
            shadow = None if either is None else either.merge(ShadowStats())
        else:
            shadow = self.shadow.merge(other.shadow)
        return DeploymentStats(arms, shadow)

    def minus(self, other: DeploymentStats) -> DeploymentStats:
        """What was added since the snapshot ``other``; arms and shadow are this one's."""
        arms = {
            version: stats.minus(other.arms.get(version) or ArmStats())
            for version, stats in self.arms.items()
        }
        shadow = None if self.shadow is None else self.shadow.minus(other.shadow or ShadowStats())
        return DeploymentStats(arms, shadow)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"arms": {v: stats.to_json() for v, stats in self.arms.items()}}
        if self.shadow is not None:
            doc["shadow"] = self.shadow.to_json()
        return doc

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DeploymentStats:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("arms", {}), Mapping):
            raise InvalidInputError(f"deployment stats must be a JSON object, not {doc!r:.80}")
        arms = {str(v): ArmStats.from_json(arm) for v, arm in doc.get("arms", {}).items()}
        shadow = doc.get("shadow")
        return cls(arms, None if shadow is None else ShadowStats.from_json(shadow))


def divergence(stable: ArmStats, candidate: ArmStats) -> float | None:
    """How differently the candidate predicts: for labels the total variation distance of the two
    label distributions (0 same, 1 disjoint); for scores the difference of the means in stable
    standard deviations (the plain difference when the stable scores do not vary). None when
    either has no predictions of the same kind."""
    if stable.labels and candidate.labels:
        n_s, n_c = sum(stable.labels.values()), sum(candidate.labels.values())
        keys = stable.labels.keys() | candidate.labels.keys()
        return 0.5 * math.fsum(
            abs(stable.labels.get(k, 0) / n_s - candidate.labels.get(k, 0) / n_c) for k in keys
        )
    mean_s, mean_c, std = stable.score_mean, candidate.score_mean, stable.score_std
    if mean_s is None or mean_c is None or std is None:
        return None
    diff = abs(mean_c - mean_s)
    return diff / std if std >= 1e-12 else diff
