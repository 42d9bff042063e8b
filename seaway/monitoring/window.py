"""A model version's drift over a window of its prediction log: the reference it is compared with
(from the registry's package), the log's window summaries merged, and the drift results.

``seaway monitor drift`` and ``seaway monitor report`` both start here, so they agree on which
version is meant, what the window holds and what "no data" means. Inputs are compared through
the per-part window summaries the log's writer leaves (no row is read again); predictions through
the logged output columns, summarized here against the package's predictions profile (the writer
summarizes inputs only).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from seaway.errors import InvalidInputError, NoLoggedDataError, NoReferenceProfileError
from seaway.monitoring import logstore
from seaway.monitoring.drift import DriftResult, drift
from seaway.monitoring.durations import as_utc
from seaway.monitoring.summary import WindowSummary, merge_all, profile_digest, summarize
from seaway.packaging.profile import ReferenceProfile

if TYPE_CHECKING:
    import pandas as pd

    from seaway.packaging.writer import Package
    from seaway.registry import ModelVersion, Registry


@dataclass(frozen=True)
class Reference:
    """What a version's traffic is compared with."""

    model: str
    version: str
    profile: ReferenceProfile
    predictions: ReferenceProfile | None  # the model's outputs on its reference data
    record: ModelVersion | None = None
    package: Package | None = None


@dataclass(frozen=True)
class WindowDrift:
    """Drift of one version over ``[since, until)``."""

    reference: Reference
    since: datetime
    until: datetime
    summary: WindowSummary  # the window's inputs, merged
    result: DriftResult
    predictions: DriftResult | None = None
    prediction_summary: WindowSummary | None = None
    summaries: tuple[WindowSummary, ...] = ()  # the parts' own, oldest first (for time buckets)
    #: with ``assess(bucket=...)``: each bucket's start and its parts merged (None: no part)
    buckets: tuple[tuple[datetime, WindowSummary | None], ...] = ()
    rows: pd.DataFrame | None = None  # with ``assess(keep_rows=True)``: the outputs read

    @property
    def parts(self) -> int:
        """Window summaries merged."""
        return len(self.summaries)

    def to_dict(self, features: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON types; ``features`` keeps those rows only (the verdict stays the model's)."""
        data = self.result.to_dict()
        if features is not None:
            keep = set(features)
            data["features"] = [row for row in data["features"] if row["feature"] in keep]
        return {
            "model": self.reference.model,
            "version": self.reference.version,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "parts": self.parts,
            "inputs": data,
            "predictions": self.predictions.to_dict() if self.predictions is not None else None,
        }


def pick_version(
    registry: Registry, name: str, version: str | None, *, since: datetime, root: str
) -> ModelVersion:
    """``version`` (a number or an alias), else the newest version with a log in the window,
    else the registry's latest."""
    from seaway.registry import ModelRef

    if version is not None:
        if version.isdigit():
            return registry.get_version(name, int(version))
        return registry.resolve(ModelRef(name=name, alias=version))
    logged = sorted(
        (int(v) for v in logstore.versions(name, root=root) if v.isdigit()), reverse=True
    )
    for candidate in logged:
        if logstore.list_files(name, version=str(candidate), since=since, root=root):
            return registry.get_version(name, candidate)
    return registry.resolve(ModelRef(name=name))


def load_reference(registry: Registry, record: ModelVersion) -> Reference:
    """The version's reference profile and predictions profile from its package."""
    from seaway.packaging.reader import (
        open_package,
        read_reference_predictions,
        read_reference_profile,
    )

    if record.manifest.reference_profile is None:
        raise NoReferenceProfileError(
            f"model {record.name!r} version {record.version} has no reference profile, so there "
            "is nothing to compare its traffic with; log the model with reference_data=... "
            f"(seaway.log_model(model, {record.name!r}, reference_data=X_train)) and serve that "
            "version"
        )
    package = open_package(registry.fetch(record), manifest_sha256=record.manifest_sha256)
    data = read_reference_profile(package)
    assert data is not None
    return Reference(
        model=record.name,
        version=str(record.version),
        profile=ReferenceProfile.model_validate(data),
        predictions=read_reference_predictions(package),
        record=record,
        package=package,
    )


def window_bounds(window: timedelta, until: datetime | None = None) -> tuple[datetime, datetime]:
    """``[until - window, until)``; ``until`` defaults to now."""
    end = as_utc(until) if until is not None else datetime.now(UTC)
    return end - window, end


def window_summaries(
    reference: Reference, *, since: datetime, until: datetime, root: str
) -> list[WindowSummary]:
    """The version's window summaries in ``[since, until)`` measured against its profile."""
    digest = profile_digest(reference.profile)
    found = logstore.read_summaries(
        reference.model, version=reference.version, since=since, until=until, root=root
    )
    return [s for s in found if s.profile == digest]


def assess(
    reference: Reference,
    *,
    since: datetime,
    until: datetime,
    root: str,
    thresholds: Mapping[str, float] | None = None,
    predictions: bool = True,
    bucket: timedelta | None = None,
    keep_rows: bool = False,
) -> WindowDrift:
    """Drift of the version's inputs (and, with a predictions profile, its outputs) over the
    window; with ``bucket``, the parts are merged per time bucket first (each part is merged
    once either way); ``keep_rows`` keeps the logged rows read for the outputs, with the
    columns performance needs (``WindowDrift.rows``: the report reads the log once). No logged
    data in the window is an error that says how to get some."""
    summaries = window_summaries(reference, since=since, until=until, root=root)
    if not summaries:
        raise NoLoggedDataError(_no_data(reference, since, until, root))
    buckets: tuple[tuple[datetime, WindowSummary | None], ...] = ()
    if bucket is not None:
        buckets = by_bucket(summaries, since=since, until=until, bucket=bucket)
        summary = merge_all(s for _, s in buckets if s is not None)
    else:
        summary = merge_all(summaries)
    result = drift(reference.profile, summary, thresholds=thresholds)
    prediction_summary = prediction_drift = rows = None
    if keep_rows or (predictions and reference.predictions is not None):
        rows = read_outputs(reference, since=since, until=until, root=root, wide=keep_rows)
    if predictions and reference.predictions is not None and rows is not None:
        prediction_summary = summarize_outputs(reference.predictions, rows)
        if prediction_summary is not None:
            prediction_drift = drift(reference.predictions, prediction_summary)
    return WindowDrift(
        reference=reference, since=since, until=until, summary=summary, result=result,
        predictions=prediction_drift, prediction_summary=prediction_summary,
        summaries=tuple(summaries), buckets=buckets, rows=rows if keep_rows else None,
    )  # fmt: skip


def by_bucket(
    summaries: Sequence[WindowSummary], *, since: datetime, until: datetime, bucket: timedelta
) -> tuple[tuple[datetime, WindowSummary | None], ...]:
    """The parts merged per ``bucket`` of ``[since, until)``, by the time of their first row."""
    count = max(1, -(-(until - since) // bucket))
    groups: list[list[WindowSummary]] = [[] for _ in range(count)]
    for summary in summaries:
        moment = summary.start or summary.end
        if moment is not None:
            index = int((moment - since) // bucket)
            groups[min(max(index, 0), count - 1)].append(summary)
    return tuple(
        (since + bucket * i, merge_all(group) if group else None) for i, group in enumerate(groups)
    )


def read_outputs(
    reference: Reference, *, since: datetime, until: datetime, root: str, wide: bool = False
) -> pd.DataFrame:
    """The version's logged outputs in ``[since, until)`` with their time (``wide``: and the
    columns performance joins feedback on); inputs are never read."""
    from seaway.monitoring.performance import LOG_COLUMNS

    columns = LOG_COLUMNS if wide else ("time", f"{logstore.OUTPUT_PREFIX}*")
    return logstore.read_log(
        reference.model, version=reference.version, since=since, until=until, root=root,
        columns=list(columns),
    )  # fmt: skip


def summarize_outputs(profile: ReferenceProfile, frame: pd.DataFrame) -> WindowSummary | None:
    """Logged rows' outputs (``output.<name>`` columns) summarized against the predictions
    profile; None without logged outputs."""
    columns = [logstore.OUTPUT_PREFIX + name for name in profile.features]
    present = [c for c in columns if c in frame.columns]
    if not len(frame) or not present:
        return None
    outputs = frame[present].rename(columns=lambda c: c[len(logstore.OUTPUT_PREFIX) :])
    return summarize(outputs, profile, times=frame["time"])


def check_features(profile: ReferenceProfile, features: Sequence[str]) -> list[str]:
    """``features`` as given, each a feature of the profile (else the profile's error)."""
    for name in features:
        profile.feature(name)
    if len(set(features)) != len(features):
        raise InvalidInputError("a --feature is given twice")
    return list(features)


def _no_data(reference: Reference, since: datetime, until: datetime, root: str) -> str:
    logged = logstore.list_files(
        reference.model, version=reference.version, since=since, until=until, root=root
    )
    where = (
        f"model {reference.model!r} version {reference.version} between "
        f"{since:%Y-%m-%d %H:%M} and {until:%Y-%m-%d %H:%M} UTC in {root}"
    )
    if logged:
        return (
            f"the prediction log holds rows of {where} but no window summaries of them; the "
            "writer summarizes a part only when the model has a reference profile (it may have "
            "been logged before the profile was readable): try a later --window"
        )
    return (
        f"nothing was logged for {where}; serve it with --log-sample 1.0 (or log_sample in its "
        "serving config), or score a batch with seaway batch run --log-sample 1.0, then send "
        "traffic; or widen --window"
    )
