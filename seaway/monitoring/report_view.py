"""From drift results to the report's view: every number formatted, every chart drawn.

Pure functions of their arguments (the clock and the performance figures are passed in), so a
test can build a report from synthetic results and check each piece. ``build_report`` is the one
place that reads more of the log: the performance figures per time bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import TYPE_CHECKING

from markupsafe import Markup

from seaway.monitoring import charts, describe
from seaway.monitoring.drift import DriftResult, FeatureDrift, drift
from seaway.monitoring.report import (
    FeatureView,
    MultivariateView,
    ReportView,
    anchor,
    render_report,
)
from seaway.monitoring.summary import CategoricalSummary, NumericSummary, WindowSummary
from seaway.monitoring.window import by_bucket
from seaway.packaging.profile import CategoricalFeature, NumericFeature, ReferenceProfile

if TYPE_CHECKING:
    from seaway.monitoring.performance import WindowPerformance
    from seaway.monitoring.window import WindowDrift

#: bucket sizes for charts over time, smallest first: the first that gives at most MAX_BUCKETS
BUCKETS = tuple(
    timedelta(minutes=m) for m in (1, 5, 15, 60, 3 * 60, 6 * 60, 12 * 60, 24 * 60, 7 * 24 * 60)
)
MAX_BUCKETS = 48
MAX_CATEGORIES_SHOWN = 15
MAX_NEW_SHOWN = 5
SERIES_OVER_TIME = 4  # features drawn in the drift-over-time chart (the most drifted)
FEW_BINS = 3  # numeric features with at most this many bin edges are drawn as bars


def build_report(
    assessed: WindowDrift,
    *,
    root: str,
    window: str,
    bucket: timedelta | None = None,
    thresholds: Mapping[str, float] | None = None,
    now: datetime | None = None,
) -> str:
    """The report's HTML for an assessed window; reads the performance figures of the log."""
    from seaway.monitoring.performance import ModelFacts, performance

    step = bucket or pick_bucket(assessed.until - assessed.since)
    reference = assessed.reference
    facts = ModelFacts.from_package(reference.package) if reference.package is not None else None
    figures = performance(
        reference.model, since=assessed.since, until=assessed.until, every=step,
        version=reference.version, facts=(lambda _: facts), log_root=root, rows=assessed.rows,
    )  # fmt: skip
    view = report_view(
        assessed, window=window, bucket=step, thresholds=thresholds, performance=figures, now=now
    )
    return render_report(view)


def report_view(
    assessed: WindowDrift,
    *,
    window: str,
    bucket: timedelta,
    thresholds: Mapping[str, float] | None = None,
    performance: Sequence[WindowPerformance] = (),
    now: datetime | None = None,
) -> ReportView:
    reference, result = assessed.reference, assessed.result
    inputs = feature_views(reference.profile, assessed.summary, result, "f")
    predictions: list[FeatureView] = []
    if assessed.predictions is not None and reference.predictions is not None:
        assert assessed.prediction_summary is not None
        predictions = feature_views(
            reference.predictions, assessed.prediction_summary, assessed.predictions, "p"
        )
    times, per_bucket = drift_by_bucket(assessed, bucket, thresholds)
    notes = []
    if result.skipped:
        notes.append(f"Not in the log (excluded or absent): {', '.join(result.skipped)}.")
    if reference.predictions is None:
        missing_predictions = "This version has no predictions profile: prediction drift needs one."
    else:
        missing_predictions = "No outputs were logged in this window."
    generated = now or datetime.now(UTC)
    return ReportView(
        model=reference.model,
        version=reference.version,
        window=f"last {window}: {assessed.since:%Y-%m-%d %H:%M} to {assessed.until:%Y-%m-%d %H:%M} UTC",
        current_rows=f"{result.n_window:,}",
        reference_rows=f"{result.n_reference:,}",
        generated=f"{generated:%Y-%m-%d %H:%M} UTC",
        verdict=describe.verdict(result, "inputs"),
        verdict_class="bad" if result.drifted else "ok",
        features=inputs,
        multivariate=multivariate_view(result, times, per_bucket),
        predictions=predictions,
        predictions_verdict=describe.verdict(assessed.predictions, "predictions")
        if assessed.predictions
        else "",
        predictions_class="bad" if assessed.predictions and assessed.predictions.drifted else "ok",
        predictions_missing=missing_predictions,
        bucket=_span(bucket),
        drift_over_time=drift_chart(times, per_bucket),
        performance=performance_chart(performance),
        notes=notes,
    )


def pick_bucket(span: timedelta) -> timedelta:
    """The smallest of ``BUCKETS`` that cuts ``span`` into at most ``MAX_BUCKETS``."""
    for size in BUCKETS:
        if span / size <= MAX_BUCKETS:
            return size
    return BUCKETS[-1]


def feature_views(
    profile: ReferenceProfile, summary: WindowSummary, result: DriftResult, prefix: str
) -> list[FeatureView]:
    """One view per profile feature, in profile order; a feature the window lacks keeps its
    reference chart."""
    rows = {row.feature: row for row in result.features}
    views = []
    for index, (name, feature) in enumerate(profile.features.items()):
        row = rows.get(name)
        views.append(_feature_view(name, feature, summary, row, anchor(prefix, index)))
    return views


def _feature_view(
    name: str,
    feature: NumericFeature | CategoricalFeature,
    summary: WindowSummary,
    row: FeatureDrift | None,
    html_id: str,
) -> FeatureView:
    if isinstance(feature, NumericFeature):
        chart = numeric_chart(name, feature, summary.numeric.get(name))
    else:
        chart = category_chart(name, feature, summary.categorical.get(name))
    if row is None:
        return FeatureView(
            name=name, anchor=html_id, kind=feature.kind, test="-", statistic="-", threshold="-",
            effect="-", missing=describe.missing(None, feature.missing_rate), drifted=False,
            chart=chart, note="not in the window's log",
        )  # fmt: skip
    fired = [check.name for check in row.checks if check.drifted]
    return FeatureView(
        name=name,
        anchor=html_id,
        kind=row.kind,
        test=row.test,
        statistic=describe.number(row.statistic),
        threshold=describe.number(row.threshold),
        effect=describe.effect(row, full=True),
        missing=describe.missing(row, feature.missing_rate),
        drifted=row.drifted,
        chart=chart,
        note=("check fired: " + ", ".join(fired)) if fired else "",
    )


def numeric_chart(name: str, feature: NumericFeature, window: NumericSummary | None) -> Markup:
    """The feature's fine bins, reference against window; a feature of a few bins (a 0/1 flag,
    a small count) as bars per bin."""
    bins = feature.bins
    current = window.counts if window is not None else (0,) * len(bins.counts)
    if len(bins.edges) <= FEW_BINS:
        labels = _intervals(bins.edges)
        ref_total, cur_total = sum(bins.counts) or 1, sum(current) or 1
        return charts.category_chart(name, [
            charts.Bar(label, r / ref_total, c / cur_total)
            for label, r, c in zip(labels, bins.counts, current, strict=True)
        ])  # fmt: skip
    lows = [v for v in (feature.min, window.min if window else None) if v is not None]
    highs = [v for v in (feature.max, window.max if window else None) if v is not None]
    return charts.numeric_chart(
        name, bins.edges, bins.counts, current,
        low=min(lows) if lows else None, high=max(highs) if highs else None,
    )  # fmt: skip


def _intervals(edges: Sequence[float]) -> list[str]:
    """Labels of the bins ``(-inf, e0], (e0, e1], ..., (e_last, inf)``."""
    if not edges:
        return ["all values"]
    number = describe.number
    inner = [f"({number(a)}, {number(b)}]" for a, b in pairwise(edges)]
    return [f"<= {number(edges[0])}", *inner, f"> {number(edges[-1])}"]


def category_chart(
    name: str, feature: CategoricalFeature, window: CategoricalSummary | None
) -> Markup:
    """Shares per category: the reference's most frequent, its tail as "(other)", then the
    window's new categories (marked)."""
    ref_total = feature.count or 1
    cur_total = (window.count if window is not None else 0) or 1
    counts = window.counts if window is not None else {}
    labels = list(feature.top)
    shown, folded = labels[:MAX_CATEGORIES_SHOWN], labels[MAX_CATEGORIES_SHOWN:]
    bars = [charts.Bar(label, feature.top[label] / ref_total, counts.get(label, 0) / cur_total)
            for label in shown]  # fmt: skip
    ref_rest = feature.other + sum(feature.top[label] for label in folded)
    cur_rest = sum(counts.get(label, 0) for label in folded)
    listed = feature.other == 0  # the reference listed every category: unknown ones are new
    new = dict(window.new) if window is not None else {}
    if window is not None and not listed:
        cur_rest += window.other
    if ref_rest or cur_rest:
        bars.append(charts.Bar("(other)", ref_rest / ref_total, cur_rest / cur_total))
    ranked = sorted(new.items(), key=lambda item: (-item[1], item[0]))
    for label, count in ranked[:MAX_NEW_SHOWN]:
        bars.append(charts.Bar(label, 0.0, count / cur_total, new=True))
    more = sum(count for _, count in ranked[MAX_NEW_SHOWN:])
    if listed and window is not None:
        more += window.other
    if more:
        bars.append(charts.Bar("(other new)", 0.0, more / cur_total, new=True))
    return charts.category_chart(name, bars)


def drift_by_bucket(
    assessed: WindowDrift, bucket: timedelta, thresholds: Mapping[str, float] | None
) -> tuple[list[datetime], list[DriftResult | None]]:
    """Drift per time bucket of the window (the parts merged by bucket in ``assess``, or here)."""
    buckets = assessed.buckets
    if not buckets or (len(buckets) > 1 and buckets[1][0] - buckets[0][0] != bucket):
        buckets = by_bucket(
            assessed.summaries, since=assessed.since, until=assessed.until, bucket=bucket
        )
    profile = assessed.reference.profile
    results = [drift(profile, s, thresholds=thresholds) if s else None for _, s in buckets]
    return [start for start, _ in buckets], results


def _ratio(statistic: float | None, threshold: float | None) -> float | None:
    if statistic is None or threshold is None or threshold <= 0:
        return None
    return statistic / threshold


def drift_chart(times: list[datetime], results: Sequence[DriftResult | None]) -> Markup | None:
    """Each of the most drifted features' statistic over its threshold per bucket (1 = the
    threshold, whatever the test or the bucket's size)."""
    if not any(r is not None for r in results):
        return None
    worst: dict[str, float] = {}
    for result in results:
        for row in result.features if result is not None else ():
            ratio = _ratio(row.statistic, row.threshold)
            if ratio is not None:
                worst[row.feature] = max(worst.get(row.feature, 0.0), ratio)
    top = sorted(worst, key=lambda name: -worst[name])[:SERIES_OVER_TIME]
    series: dict[str, list[float | None]] = {name: [] for name in top}
    for result in results:
        rows = {row.feature: row for row in result.features} if result is not None else {}
        for name in top:
            found = rows.get(name)
            series[name].append(_ratio(found.statistic, found.threshold) if found else None)
    return charts.time_chart("statistic / threshold", times, series, threshold=1.0)


def multivariate_view(
    result: DriftResult, times: list[datetime], results: Sequence[DriftResult | None]
) -> MultivariateView | None:
    mv = result.multivariate
    if mv is None:
        return None
    errors = [r.multivariate.error if r is not None and r.multivariate else None for r in results]
    chart = None
    if any(e is not None for e in errors):
        chart = charts.time_chart(
            "PCA reconstruction error per bucket", times,
            {"window": errors, "reference": [mv.reference_error] * len(times)},
        )  # fmt: skip
    return MultivariateView(
        test="PCA reconstruction error",
        description=(
            f"The {len(mv.features)} numeric features standardised and compressed to "
            f"{mv.components} principal components of the reference; a change in how they move "
            "together moves the mean error out of the band expected for the window's size."
        ),
        statistic=describe.number(mv.error),
        threshold=f"{describe.number(mv.lower)} to {describe.number(mv.upper)}",
        reference=describe.number(mv.reference_error),
        drifted=mv.drifted,
        chart=chart,
    )


def performance_chart(figures: Sequence[WindowPerformance]) -> Markup | None:
    """Realised and estimated accuracy per bucket (classifiers), or MAE and RMSE (regressors)."""
    if not figures:
        return None
    times = [w.start for w in figures]
    series: dict[str, list[float | None]]
    if figures[0].task == "classifier":
        series = {
            "realised accuracy": [_value(w.realised, "accuracy") for w in figures],
            "estimated accuracy": [_value(w.estimated, "accuracy") for w in figures],
        }
    else:
        series = {
            "MAE": [_value(w.realised, "mae") for w in figures],
            "RMSE": [_value(w.realised, "rmse") for w in figures],
        }
    series = {k: v for k, v in series.items() if any(x is not None for x in v)}
    if not series:
        return None
    percent = figures[0].task == "classifier"
    return charts.time_chart("performance per bucket", times, series, percent=percent)


def _value(metrics: Mapping[str, object], name: str) -> float | None:
    metric = metrics.get(name)
    value = getattr(metric, "value", None)
    return float(value) if isinstance(value, int | float) else None


def _span(size: timedelta) -> str:
    seconds = int(size.total_seconds())
    for unit, length in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % length == 0:
            n = seconds // length
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} s"
