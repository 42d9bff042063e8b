"""The signals of drift and accuracy alert rules, and the monitoring gauges, for one served
version over a window: read from the prediction log, its window summaries and the feedback.

- **data drift**: the window summaries the log wrote beside its parts, merged, against the
  version's reference profile (``drift.drift``); no row is read again;
- **prediction drift**: the window's logged outputs summarized against the profile of the
  model's outputs on its reference data (``log_model(..., reference_data=X)`` records it);
- **estimated and realised accuracy** (or another metric): ``performance.performance`` over the
  window, CBPE before labels and the feedback's labels once they come.

Reading rows costs more than a request-level signal, so each result is kept for a sixtieth of its
window (a 24 h window: 24 minutes) before it is computed again; the window summaries make data
drift cheap whatever the window. Every method may block: the server calls them from a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.monitoring.alerts import AlertRule, Signal

if TYPE_CHECKING:
    from seaway.monitoring.drift import DriftResult
    from seaway.monitoring.performance import ModelFacts, WindowPerformance
    from seaway.packaging.manifest import Manifest
    from seaway.packaging.profile import ReferenceProfile

#: a result is reused for this share of its window
REFRESH_SHARE = 1 / 60
_MAX_CACHED = 1000


@dataclass(frozen=True)
class ModelGauges:
    """One served version's monitoring figures for ``/metrics`` (None: not known)."""

    #: each input feature's drift test statistic over its threshold (1: at the threshold)
    drift_scores: Mapping[str, float] = field(default_factory=dict)
    drift_detected: bool | None = None
    prediction_drift_detected: bool | None = None
    estimated_accuracy: float | None = None
    accuracy: float | None = None


#: where a served version's package is: its folder and manifest (None: not served here)
PackageSource = Callable[[str, str], tuple[Path, "Manifest"] | None]


class LogSignals:
    """Drift and accuracy of served versions, from the prediction log under ``log_root``."""

    def __init__(
        self,
        log_root: str,
        packages: PackageSource,
        *,
        feedback_root: str | None = None,
        gauge_window: timedelta = timedelta(hours=1),
    ) -> None:
        self.log_root = log_root
        self.feedback_root = feedback_root
        self.gauge_window = gauge_window
        self._packages = packages
        self._lock = threading.Lock()
        self._cache: dict[tuple[Any, ...], tuple[datetime, Any]] = {}
        self._loaded: dict[tuple[str, str, str], Any] = {}

    # ---- the rules' signals ------------------------------------------------------------------

    def data_drift(self, rule: AlertRule, model: str, version: str, now: datetime) -> Signal:
        found = self._drift("inputs", model, version, rule.window, now)
        if isinstance(found, str):
            return Signal.missing(found)
        if rule.feature is None:
            return _overall(found)
        try:
            row = found.feature(rule.feature)
        except ValueError:
            return Signal.missing(f"{model}/{version}'s reference profile has no {rule.feature!r}")
        ratio = f"{row.test} {_g(row.statistic)} against {_g(row.threshold)}"
        checks = [c.name for c in row.checks if c.drifted]
        reason = f"{ratio}; {', '.join(checks)}" if checks else ratio
        return Signal(row.statistic, reason, breached=row.drifted, threshold=row.threshold)

    def prediction_drift(self, rule: AlertRule, model: str, version: str, now: datetime) -> Signal:
        found = self._drift("predictions", model, version, rule.window, now)
        return Signal.missing(found) if isinstance(found, str) else _overall(found)

    def estimated_accuracy(
        self, rule: AlertRule, model: str, version: str, now: datetime
    ) -> Signal:
        return self._metric("estimated", rule.metric_name, model, version, rule.window, now)

    def accuracy(self, rule: AlertRule, model: str, version: str, now: datetime) -> Signal:
        return self._metric("realised", rule.metric_name, model, version, rule.window, now)

    # ---- gauges -------------------------------------------------------------------------------

    def gauges(self, model: str, version: str, now: datetime) -> ModelGauges:
        """The version's figures; nothing (and nothing read) when it has no prediction log."""
        from seaway.monitoring import logstore

        if version not in logstore.versions(model, root=self.log_root):
            return ModelGauges()
        window = self.gauge_window
        inputs = self._drift("inputs", model, version, window, now)
        outputs = self._drift("predictions", model, version, window, now)
        scores: dict[str, float] = {}
        if not isinstance(inputs, str):
            for row in inputs.features:
                if row.statistic is not None:
                    scale = row.threshold if row.threshold else 1.0
                    scores[row.feature] = row.statistic / scale
        estimated = self._metric("estimated", "accuracy", model, version, window, now)
        realised = self._metric("realised", "accuracy", model, version, window, now)
        return ModelGauges(
            drift_scores=scores,
            drift_detected=None if isinstance(inputs, str) else inputs.drifted,
            prediction_drift_detected=None if isinstance(outputs, str) else outputs.drifted,
            estimated_accuracy=estimated.value,
            accuracy=realised.value,
        )

    # ---- computing, with the cache -------------------------------------------------------------

    def _cached(self, key: tuple[Any, ...], window: timedelta, now: datetime, make: Any) -> Any:
        with self._lock:
            found = self._cache.get(key)
            if found is not None and now - found[0] < window * REFRESH_SHARE and now >= found[0]:
                return found[1]
        value = make()
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:  # versions come and go with hot swaps
                self._cache.clear()
            self._cache[key] = (now, value)
        return value

    def _drift(
        self, side: str, model: str, version: str, window: timedelta, now: datetime
    ) -> DriftResult | str:
        key = ("drift", side, model, version, window)
        return self._cached(  # type: ignore[no-any-return]
            key, window, now, lambda: self._compute_drift(side, model, version, window, now)
        )

    def _compute_drift(
        self, side: str, model: str, version: str, window: timedelta, now: datetime
    ) -> DriftResult | str:
        from seaway.monitoring import logstore
        from seaway.monitoring.drift import drift

        profile = self._profile(side, model, version)
        if isinstance(profile, str):
            return profile
        since = now - window
        if side == "inputs":
            summary = logstore.merged_summary(
                model, version=version, since=since, until=now, root=self.log_root
            )
        else:
            summary = self._output_summary(model, version, since, now, profile)
        if summary is None or summary.n_rows == 0:
            return f"no logged rows of {model}/{version} in the window (is the prediction log on?)"
        return drift(profile, summary)

    def _output_summary(
        self, model: str, version: str, since: datetime, now: datetime, profile: ReferenceProfile
    ) -> Any:
        from seaway.monitoring import logstore
        from seaway.monitoring.summary import summarize

        columns = [f"{logstore.OUTPUT_PREFIX}{name}" for name in profile.features]
        frame = logstore.read_log(
            model, version=version, since=since, until=now, root=self.log_root, columns=columns
        )
        outputs = frame[[c for c in columns if c in frame.columns]]
        if outputs.empty:
            return None
        outputs.columns = [c[len(logstore.OUTPUT_PREFIX) :] for c in outputs.columns]
        return summarize(outputs, profile)

    def _profile(self, side: str, model: str, version: str) -> ReferenceProfile | str:
        package = self._packages(model, version)
        if package is None:
            return f"{model}/{version} is not served here"
        path, manifest = package
        name = manifest.reference_profile if side == "inputs" else manifest.reference_predictions
        if name is None:
            what = "reference profile" if side == "inputs" else "profile of reference predictions"
            return f"{model}/{version} has no {what} (log_model(..., reference_data=X))"
        key = (side, str(path), name)
        if key not in self._loaded:
            self._forget_if_full()
            from seaway.packaging.profile import ReferenceProfile

            text = (path / name).read_text("utf-8")
            self._loaded[key] = ReferenceProfile.model_validate_json(text)
        profile: ReferenceProfile = self._loaded[key]
        return profile

    def _forget_if_full(self) -> None:
        if len(self._loaded) >= _MAX_CACHED:
            self._loaded.clear()

    def _metric(
        self, which: str, metric: str, model: str, version: str, window: timedelta, now: datetime
    ) -> Signal:
        key = ("performance", model, version, window)
        found = self._cached(
            key, window, now, lambda: self._performance(model, version, window, now)
        )
        if isinstance(found, str):
            return Signal.missing(found)
        table = found.realised if which == "realised" else found.estimated
        value = table.get(metric)
        if value is None:
            known = ", ".join(sorted(table)) or "none"
            return Signal.missing(f"no {which} {metric} for {model}/{version} (known: {known})")
        if value.value is None:
            return Signal.missing(value.reason or f"{metric} is undefined in the window")
        rows = found.labelled if which == "realised" else found.rows
        what = "labelled rows" if which == "realised" else "rows"
        return Signal(value.value, f"{rows} {what}")

    def _performance(
        self, model: str, version: str, window: timedelta, now: datetime
    ) -> WindowPerformance | str:
        from seaway.monitoring.performance import performance

        facts = self._facts(model, version)
        found = performance(
            model,
            since=now - window,
            until=now,
            version=version,
            facts=lambda _: facts,
            log_root=self.log_root,
            labels_root=self.feedback_root,
        )
        if not found or found[0].rows == 0:
            return f"no logged rows of {model}/{version} in the window (is the prediction log on?)"
        return found[0]

    def _facts(self, model: str, version: str) -> ModelFacts | None:
        package = self._packages(model, version)
        if package is None:
            return None
        key = ("facts", str(package[0]), model)
        if key not in self._loaded:
            self._forget_if_full()
            from seaway.monitoring.performance import ModelFacts
            from seaway.packaging.writer import Package

            self._loaded[key] = ModelFacts.from_package(Package(package[0], package[1]))
        facts: ModelFacts = self._loaded[key]
        return facts


def _overall(result: DriftResult) -> Signal:
    drifted = list(result.drifted_features)
    if result.multivariate is not None and result.multivariate.drifted:
        drifted.append("the joint distribution (multivariate)")
    tested = len(result.features) + (result.multivariate is not None)
    if drifted:
        reason = f"{len(drifted)} of {tested} checks drifted: {', '.join(drifted)}"
    else:
        reason = f"none of {tested} checks drifted over {result.n_window} rows"
    return Signal(float(len(drifted)), reason, breached=result.drifted)


def _g(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"
