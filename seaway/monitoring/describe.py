"""Drift results in words and short numbers, the same in the terminal and in the HTML report."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seaway.monitoring.drift import DriftResult, FeatureDrift


def number(value: float | None) -> str:
    """A number short enough for an axis or a table cell."""
    if value is None or math.isnan(value):
        return "-"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if value == 0:
        return "0"
    return f"{value:.4g}" if 1e-3 <= abs(value) < 1e6 else f"{value:.2e}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def effect(row: FeatureDrift, *, full: bool = False) -> str:
    """The effect size in a few characters. Numeric: the mean's shift in reference standard
    deviations (``+0.14sd``), or the ratio of standard deviations when that is the larger change
    (``std x1.52``); ``full`` gives both. Categorical: the share of new categories
    (``new 0.7%``), else the Jensen-Shannon distance (``js 0.031``)."""
    effects = row.effects
    if row.kind == "numeric":
        shift, ratio = effects.get("mean_shift"), effects.get("std_ratio")
        if shift is None:
            return "-"
        moved = f"{shift:+.2f}sd"
        if ratio is None:
            return moved
        spread = f"std x{ratio:.2f}"
        if full:
            return f"{moved}, {spread}"
        larger = ratio <= 0 or abs(math.log(ratio)) > abs(shift)  # log: x2 as far as x0.5
        return spread if larger else moved
    new = effects.get("new_share")
    js = row.statistics.get("jensenshannon")
    if full:
        parts = [f"new {new:.1%}"] if new else []
        return ", ".join([*parts, *([f"js {js:.3f}"] if js is not None else [])]) or "-"
    if new:
        return f"new {new:.1%}"
    return "-" if js is None else f"js {js:.3f}"


def over_threshold(row: FeatureDrift) -> bool:
    """The feature's test (not only a check) is over its threshold."""
    return row.statistic is not None and row.threshold is not None and row.statistic > row.threshold


def drifted(row: FeatureDrift) -> str:
    """``yes``, ``yes*`` (a check fired, not the test: see ``check_notes``) or ``no``."""
    if not row.drifted:
        return "no"
    return "yes" if over_threshold(row) else "yes*"


def check_notes(rows: tuple[FeatureDrift, ...] | list[FeatureDrift]) -> list[str]:
    """One line per check that fired: why a feature marked ``yes*`` drifted."""
    return [
        f"* {row.feature}: {check.name} {percent(check.rate)} of the window "
        f"(reference {percent(check.reference_rate)}, p={check.p_value:.2g})"
        for row in rows
        for check in row.checks
        if check.drifted
    ]


def missing(row: FeatureDrift | None, reference_rate: float) -> str:
    """``reference / window`` missing rates."""
    window = row.effects.get("missing_rate") if row is not None else None
    return f"{percent(reference_rate)} / {percent(window)}"


def multivariate(result: DriftResult) -> str:
    mv = result.multivariate
    if mv is None:
        return "Multivariate: not available (fewer than two varying numeric features)."
    if mv.error is None:
        return "Multivariate: no rows in the window."
    return (
        f"Multivariate (PCA reconstruction error, {len(mv.features)} numeric features, "
        f"{mv.components} components): {number(mv.error)} against {number(mv.reference_error)} "
        f"(expected {number(mv.lower)} to {number(mv.upper)}): "
        f"{'DRIFT' if mv.drifted else 'no drift'}"
    )


def verdict(result: DriftResult, what: str) -> str:
    """One sentence: which features drifted, and whether the multivariate check did."""
    names = result.drifted_features
    joint = result.multivariate is not None and result.multivariate.drifted
    if not result.drifted:
        return (
            f"Verdict ({what}): no drift in {len(result.features)} features "
            f"(false-alarm rate {result.alpha:.0%})."
        )
    parts = []
    if names:
        shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
        parts.append(f"{len(names)} of {len(result.features)} features ({shown})")
    if joint:
        parts.append("how the numeric features move together")
    return f"Verdict ({what}): DRIFT in {' and in '.join(parts)}."
