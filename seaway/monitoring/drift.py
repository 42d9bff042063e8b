"""Drift: does a window of traffic still look like the reference data the model was trained on?

``drift(profile, summary)`` compares a window summary with its reference profile, feature by
feature and jointly, and says which features moved, by how much, and whether that is more than
chance. Every threshold is calibrated on the reference itself, for the window's size: the level
a statistic reaches when reference-sized and window-sized samples come from the reference's own
distribution (``stats``). So a large window of unchanged data raises no alarm, while a small shift
in a large window does; effect sizes (mean shift in reference standard deviations, std ratio,
Wasserstein distance in standard deviations, new categories' share) say whether it matters.

Per feature, one **test** decides (numeric: ``ks`` by default, ``wasserstein`` or ``psi``;
categorical: ``chi2`` by default, ``jensenshannon`` or ``psi``), beside **checks** that catch what
a distribution test over non-missing values cannot: a change in the missing rate, values outside
the reference's range (numeric) and categories the reference never had (when it listed every
category). Both use exact tests for rare events, so one unseen value in a small window is not an
alarm while a steady stream of them is. The **multivariate** check compares the window's mean
PCA reconstruction error (NannyML's distance) with the reference's, within a band that is
the error's spread by chance at the window's size (``profile_multivariate``).

False alarms: with ``alpha`` the overall verdict's false-alarm rate, each of the ``T`` tested
features and the multivariate check gets ``alpha / T`` (Bonferroni), split evenly between a
feature's test and checks. A threshold given per feature (``thresholds={"age": 0.2}``) replaces
the calibrated one for that feature's test statistic.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from seaway.errors import InvalidInputError
from seaway.monitoring import stats
from seaway.monitoring.drift_result import Check, DriftResult, FeatureDrift, MultivariateDrift
from seaway.monitoring.summary import (
    CategoricalSummary,
    NumericSummary,
    WindowSummary,
    profile_digest,
    summarize,
)
from seaway.packaging.profile import CategoricalFeature, NumericFeature, ReferenceProfile

NumericTest = Literal["ks", "wasserstein", "psi"]
CategoricalTest = Literal["chi2", "jensenshannon", "psi"]
MAX_DRAWS = 50_000  # simulated null draws for the Wasserstein test
NULL_BINS = 101  # the widest fine histogram (``FINE_BINS`` + 1): one set of draws serves all
NEW_LABELS_SHOWN = 10

__all__ = [
    "Check",
    "DriftResult",
    "FeatureDrift",
    "MultivariateDrift",
    "drift",
    "drift_of_frame",
]


def drift(
    profile: ReferenceProfile,
    summary: WindowSummary,
    *,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    numeric_test: NumericTest = "ks",
    categorical_test: CategoricalTest = "chi2",
    seed: int | np.random.Generator = 0,
) -> DriftResult:
    """Compare the window ``summary`` with ``profile`` (the one it was summarized against).

    ``alpha``: the overall verdict's false-alarm rate. ``seed``: the simulated null of the
    Wasserstein test (the only random part)."""
    if not 0 < alpha < 1:
        raise InvalidInputError(f"alpha is a probability between 0 and 1, got {alpha}")
    if numeric_test not in ("ks", "wasserstein", "psi"):
        raise InvalidInputError(f"numeric_test is ks, wasserstein or psi, not {numeric_test!r}")
    if categorical_test not in ("chi2", "jensenshannon", "psi"):
        raise InvalidInputError(
            f"categorical_test is chi2, jensenshannon or psi, not {categorical_test!r}"
        )
    if summary.profile != profile_digest(profile):
        raise InvalidInputError(
            "the window summary was measured against another reference profile; summarize the "
            "window with this model version's profile"
        )
    thresholds = dict(thresholds or {})
    unknown = sorted(set(thresholds) - set(profile.features))
    if unknown:
        raise InvalidInputError(f"thresholds name unknown features {unknown}")
    present = [name for name in profile.features if name in summary.features]
    block = profile.multivariate
    joint = block is not None and summary.multivariate is not None
    level = alpha / max(len(present) + joint, 1)
    simulate = _Simulator(seed, level / 3) if numeric_test == "wasserstein" else None
    rows = []
    for name in present:
        feature = profile.features[name]
        if isinstance(feature, NumericFeature):
            rows.append(
                _numeric(name, feature, summary.numeric[name], numeric_test, level, simulate)
            )
        else:
            rows.append(
                _categorical(name, feature, summary.categorical[name], categorical_test, level)
            )
    rows = [_override(row, thresholds.get(row.feature)) for row in rows]
    multivariate = _multivariate(profile, summary, level) if joint else None
    return DriftResult(
        drifted=any(row.drifted for row in rows) or bool(multivariate and multivariate.drifted),
        features=tuple(rows),
        multivariate=multivariate,
        alpha=alpha,
        n_reference=profile.n_rows,
        n_window=summary.n_rows,
        start=summary.start,
        end=summary.end,
        skipped=tuple(name for name in profile.features if name not in summary.features),
    )


def drift_of_frame(profile: ReferenceProfile, frame: pd.DataFrame, **options: Any) -> DriftResult:
    """``drift(profile, summarize(frame, profile), **options)``."""
    return drift(profile, summarize(frame, profile), **options)


class _Simulator:
    """Each feature's simulated Wasserstein null, from normal draws shared by the features.
    With an integer seed the nulls are remembered (a report computes drift per time bucket)."""

    def __init__(self, seed: int | np.random.Generator, level: float) -> None:
        self.seed = seed
        self.draws = min(MAX_DRAWS, max(20_000, math.ceil(20 / level)))
        self.normals: np.ndarray[Any, Any] | None = None

    def null(self, ref: Any, knots: Any) -> np.ndarray[Any, Any]:
        if isinstance(self.seed, np.random.Generator):
            if self.normals is None or self.normals.shape[1] < len(ref):
                shape = (self.draws, max(len(ref), NULL_BINS))
                self.normals = self.seed.standard_normal(shape, np.float32)
            return stats.wasserstein_null(ref, knots, self.seed, self.draws, self.normals)
        return _remembered_null(tuple(ref), tuple(knots), self.draws, self.seed)


@functools.lru_cache(maxsize=256)
def _remembered_null(
    ref: tuple[int, ...], knots: tuple[float, ...], draws: int, seed: int
) -> np.ndarray[Any, Any]:
    normals = _normals(draws, max(len(ref), NULL_BINS), seed)
    null = stats.wasserstein_null(ref, knots, np.random.default_rng(seed), draws, normals)
    null.setflags(write=False)  # shared between calls
    return null


@functools.lru_cache(maxsize=2)
def _normals(draws: int, bins: int, seed: int) -> np.ndarray[Any, Any]:
    normals = np.random.default_rng(seed).standard_normal((draws, bins), np.float32)
    normals.setflags(write=False)
    return normals


def _numeric(
    name: str,
    feature: NumericFeature,
    window: NumericSummary,
    test: NumericTest,
    level: float,
    simulate: _Simulator | None,
) -> FeatureDrift:
    ref, win = np.asarray(feature.bins.counts), np.asarray(window.counts)
    if ref.size != win.size:
        raise InvalidInputError(f"feature {name!r}: the summary's bins are not the profile's")
    n, m = feature.count, window.count
    checks = [_missing(feature.count, feature.missing, window.count, window.missing)]
    if feature.min is not None:
        outside = window.below + window.above
        p_outside = stats.rate_p_value(
            2, feature.count - feature.infinite, outside, window.finite, two_sided=False
        )
        checks.append(_check("out of range", outside, window.finite, 0.0, p_outside))
    level /= 1 + len(checks)
    checks = [_decide(check, level) for check in checks]
    values: dict[str, float | None] = dict.fromkeys(("ks", "wasserstein", "wasserstein_std", "psi"))
    effects: dict[str, Any] = {
        "mean_shift": None,
        "std_ratio": None,
        "missing_rate": _rate(window.missing, window.count + window.missing),
        "reference_missing_rate": feature.missing_rate,
        "out_of_range": checks[1].rate if len(checks) > 1 else None,
    }
    if not (n and m):
        return _row(name, feature.kind, test, None, None, None, n, m, values, effects, checks)
    ks = values["ks"] = stats.ks(ref, win)
    psi = values["psi"] = stats.psi(feature.histogram.counts, _deciles(feature, window.counts))
    knots = None
    if feature.min is not None and feature.max is not None:
        knots = [feature.min, *feature.bins.edges, feature.max]
        values["wasserstein"] = stats.wasserstein(ref, win, knots)
    if feature.std and window.finite:
        effects["mean_shift"] = (window.mean - (feature.mean or 0.0)) / feature.std
        effects["std_ratio"] = (window.std or 0.0) / feature.std
        if values["wasserstein"] is not None:
            values["wasserstein_std"] = values["wasserstein"] / feature.std
    statistic: float | None
    p_value: float | None
    if test == "ks":
        statistic, threshold = ks, stats.ks_threshold(level, n, m)
        p_value = stats.ks_p_value(ks, n, m)
    elif test == "psi":
        df = len(feature.histogram.counts) - 1
        statistic, threshold = psi, stats.divergence_threshold(level, df, n, m)
        p_value = stats.divergence_p_value(psi, df, n, m)
    else:
        statistic, threshold, p_value = values["wasserstein"], 0.0, None
        if simulate is not None and knots is not None and statistic is not None:
            null = simulate.null(ref, knots)
            root = math.sqrt(stats.scale(n, m))
            threshold = float(np.quantile(null, 1 - level)) * root
            beyond = null.size - np.searchsorted(null, statistic / root, side="left")
            p_value = (1 + int(beyond)) / (null.size + 1)
    return _row(name, feature.kind, test, statistic, threshold, p_value, n, m, values, effects,
                checks)  # fmt: skip


def _categorical(
    name: str,
    feature: CategoricalFeature,
    window: CategoricalSummary,
    test: CategoricalTest,
    level: float,
) -> FeatureDrift:
    ref = list(feature.top.values())
    win = [window.counts.get(label, 0) for label in feature.top]
    listed = feature.other == 0  # the reference listed every category: others are new
    new = sum(window.new.values()) + (window.other if listed else 0)
    if not listed:
        ref.append(feature.other)
        win.append(window.other)
    n, m = feature.count, window.count
    checks = [_missing(feature.count, feature.missing, window.count, window.missing)]
    if listed:
        singletons = sum(1 for count in ref if count == 1)  # Good-Turing: the unseen mass
        p_new = stats.rate_p_value(singletons + 1, n, new, m, two_sided=False)
        checks.append(_check("new categories", new, m, 0.0, p_new))
    level /= 1 + len(checks)
    checks = [_decide(check, level) for check in checks]
    shown = sorted(window.new.items(), key=lambda item: (-item[1], item[0]))
    effects: dict[str, Any] = {
        "new_categories": [label for label, _ in shown[:NEW_LABELS_SHOWN]],
        "new_share": _rate(new, m),
        "missing_rate": _rate(window.missing, window.count + window.missing),
        "reference_missing_rate": feature.missing_rate,
    }
    values: dict[str, float | None] = dict.fromkeys(("chi2", "jensenshannon", "psi"))
    if not (n and m):
        return _row(name, feature.kind, test, None, None, None, n, m, values, effects, checks)
    every_ref, every_win = ([*ref, 0], [*win, new]) if listed else (ref, win)
    df_all = max(sum(1 for count in ref if count > 0) - 1, 0)
    js = values["jensenshannon"] = stats.jensen_shannon(every_ref, every_win)
    psi = values["psi"] = stats.psi(every_ref, every_win)
    chi2, df = stats.chi_squared(ref, win)
    values["chi2"] = chi2
    if test == "chi2":
        statistic, threshold = chi2, stats.chi_squared_threshold(level, df)
        p_value = stats.chi_squared_p_value(chi2, df)
    elif test == "psi":
        statistic, threshold = psi, stats.divergence_threshold(level, df_all, n, m)
        p_value = stats.divergence_p_value(psi, df_all, n, m)
    else:
        statistic = js
        threshold = math.sqrt(stats.divergence_threshold(level, df_all, n, m) / 8)
        p_value = stats.divergence_p_value(8 * js**2, df_all, n, m)
    return _row(name, feature.kind, test, statistic, threshold, p_value, n, m, values, effects,
                checks)  # fmt: skip


def _multivariate(
    profile: ReferenceProfile, summary: WindowSummary, level: float
) -> MultivariateDrift:
    block, window = profile.multivariate, summary.multivariate
    assert block is not None
    assert window is not None
    common: dict[str, Any] = {
        "features": block.features, "components": len(block.components),
        "reference_error": block.error_mean, "reference_std": block.error_std,
        "rows": window.rows, "reference_squared_error": block.squared_error_mean,
    }  # fmt: skip
    if not window.rows:
        return MultivariateDrift(
            error=None, lower=None, upper=None, p_value=None, drifted=False, **common
        )
    error = window.error / window.rows
    spread = block.error_std * math.sqrt(stats.scale(block.n, window.rows))
    half = stats.normal_quantile(1 - level / 2) * spread
    gap = abs(error - block.error_mean)
    tolerance = 1e-9 * (1 + abs(block.error_mean))  # rounding, when the reference has no spread
    p_value = 2 * stats.normal_sf(gap / spread) if spread > 0 else float(gap <= tolerance)
    return MultivariateDrift(
        error=error,
        lower=block.error_mean - half,
        upper=block.error_mean + half,
        p_value=min(p_value, 1.0),
        drifted=gap > max(half, tolerance),
        squared_error=block.mean_squared_error(window.rows, window.outer_matrix()),
        **common,
    )


def _missing(count: int, missing: int, window_count: int, window_missing: int) -> Check:
    p = stats.rate_p_value(missing, count + missing, window_missing, window_count + window_missing,
                           two_sided=True)  # fmt: skip
    return _check("missing", window_missing, window_count + window_missing,
                  _rate(missing, count + missing) or 0.0, p)  # fmt: skip


def _check(name: str, events: int, total: int, reference_rate: float, p_value: float) -> Check:
    return Check(name, _rate(events, total), reference_rate, p_value, False)


def _decide(check: Check, level: float) -> Check:
    return Check(check.name, check.rate, check.reference_rate, check.p_value,
                 check.p_value < level)  # fmt: skip


def _row(
    name: str, kind: str, test: str, statistic: float | None, threshold: float | None,
    p_value: float | None, n: int, m: int, values: dict[str, float | None],
    effects: dict[str, Any], checks: list[Check],
) -> FeatureDrift:  # fmt: skip
    failed = statistic is not None and threshold is not None and statistic > threshold
    return FeatureDrift(
        feature=name, kind=kind, test=test, statistic=statistic, threshold=threshold,
        p_value=p_value, drifted=failed or any(c.drifted for c in checks), reference_count=n,
        window_count=m, statistics=values, effects=effects, checks=tuple(checks),
    )  # fmt: skip


def _override(row: FeatureDrift, threshold: float | None) -> FeatureDrift:
    if threshold is None:
        return row
    failed = row.statistic is not None and row.statistic > threshold
    return FeatureDrift(**{
        **row.__dict__, "threshold": float(threshold),
        "drifted": failed or any(c.drifted for c in row.checks),
    })  # fmt: skip


def _deciles(feature: NumericFeature, counts: tuple[int, ...]) -> np.ndarray[Any, Any]:
    """A window's decile counts from its counts on the fine bins (the deciles are fine edges)."""
    if feature.fine is None:
        return np.asarray(counts)
    fine = np.asarray(feature.fine.edges)
    coarse = np.asarray(feature.histogram.edges)
    at = np.searchsorted(fine, coarse)
    if at.size and (at.max() >= fine.size or not np.array_equal(fine[at], coarse)):
        raise InvalidInputError("the profile's decile edges are not among its fine edges")
    return np.add.reduceat(np.asarray(counts), np.concatenate(([0], at + 1)))


def _rate(events: int, total: int) -> float | None:
    return events / total if total else None
