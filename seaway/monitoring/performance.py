"""Performance per model version and time window: realised from feedback, estimated before it.

``performance(model, since=...)`` reads the prediction log (``logstore.read_log``) and the
feedback store, joins them, and per version (and per ``every`` window) scores the labelled rows
with ``metrics`` and estimates the classifier metrics of *every* logged row with CBPE
(``estimate``), so the two stand side by side: the estimate covers the rows whose labels have not
come yet. ``score_window`` does the same for rows already read (the server's alert rules).

What a version is (classifier with which classes, or regressor; its calibration) comes from its
package (``ModelFacts.from_package``) or, failing that, from the log's own columns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from seaway.monitoring.durations import as_utc
from seaway.monitoring.estimate import calibration_from_feedback, estimate_performance
from seaway.monitoring.feedback import LABEL, LABEL_VALUE, feedback_root, join_feedback
from seaway.monitoring.feedback import read_feedback as read_labels
from seaway.monitoring.logstore import OUTPUT_PREFIX, read_log
from seaway.monitoring.metrics import Metric, classification_metrics, regression_metrics
from seaway.packaging.calibration import Calibration
from seaway.packaging.profile import category_label
from seaway.packaging.reference import PREDICT, class_index

if TYPE_CHECKING:
    import pandas as pd

    from seaway.packaging.writer import Package
    from seaway.registry import Registry

Task = Literal["classifier", "regressor"]
PROBA_PREFIX = f"{OUTPUT_PREFIX}predict_proba."


@dataclass(frozen=True)
class ModelFacts:
    """What scoring a version's predictions needs to know about its model."""

    task: Task
    #: A classifier's classes in ``predict_proba``'s column order.
    classes: tuple[Any, ...] | None = None
    calibration: Calibration | None = None

    @classmethod
    def from_package(cls, package: Package) -> ModelFacts:
        from seaway.packaging.reader import read_calibration

        signature = package.manifest.signature
        classes = signature.classes if signature is not None else None
        if classes is None:
            return cls("regressor")
        return cls("classifier", tuple(classes), read_calibration(package))

    @classmethod
    def from_log(cls, frame: pd.DataFrame) -> ModelFacts:
        """A guess from logged columns (for versions no registry describes): probabilities, or
        predictions that are not floats (labels, integers, booleans), make a classifier."""
        proba = [c[len(PROBA_PREFIX) :] for c in frame.columns if c.startswith(PROBA_PREFIX)]
        if proba:
            return cls("classifier", tuple(proba))
        predicted = frame.get(OUTPUT_PREFIX + PREDICT)
        if predicted is None or predicted.dtype.kind in "fc":
            return cls("regressor")
        values = predicted.dropna()
        labels = sorted({category_label(v) for v in values}, key=_natural_key)
        return cls("classifier", tuple(labels))


def model_facts(registry: Registry, name: str, version: str) -> ModelFacts | None:
    """A registered version's facts from its package; None when the registry does not know it."""
    from seaway.errors import NotFoundError
    from seaway.packaging.reader import open_package

    if not version.isdigit():
        return None
    try:
        record = registry.get_version(name, int(version))
    except NotFoundError:
        return None
    return ModelFacts.from_package(open_package(registry.fetch(record)))


@dataclass(frozen=True)
class WindowPerformance:
    model: str
    version: str
    start: datetime
    end: datetime
    task: Task
    #: logged rows in the window, and how many of them have a label
    rows: int
    labelled: int
    realised: dict[str, Metric] = field(default_factory=dict)
    #: classifiers with logged probabilities: CBPE over every logged row
    estimated: dict[str, Metric] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "task": self.task,
            "rows": self.rows,
            "labelled": self.labelled,
            "realised": {k: m.to_dict() for k, m in self.realised.items()},
            "estimated": {k: m.to_dict() for k, m in self.estimated.items()},
        }


def score_window(
    frame: pd.DataFrame, facts: ModelFacts, calibration: Calibration | None = None
) -> tuple[dict[str, Metric], dict[str, Metric]]:
    """``(realised, estimated)`` for one version's logged rows joined with their labels
    (``feedback.join_feedback``). ``calibration`` overrides the package's (feedback-fitted)."""
    if LABEL not in frame.columns:  # rows not joined with feedback: nothing realised
        frame = frame.assign(**{LABEL: None, LABEL_VALUE: np.nan})
    labelled = frame[frame[LABEL].notna()]
    if facts.task == "regressor":
        predicted = _column(labelled, OUTPUT_PREFIX + PREDICT)
        return regression_metrics(labelled[LABEL_VALUE].to_numpy(float), predicted), {}
    classes = facts.classes or ()
    names = [category_label(c) for c in classes]
    y_true = _labels(labelled[LABEL], classes, names)
    y_pred = _labels(labelled.get(OUTPUT_PREFIX + PREDICT), classes, names, len(labelled))
    realised = classification_metrics(y_true, y_pred, names, _proba(labelled, names))
    proba = _proba(frame, names)
    if proba is None:
        why = "no predicted probabilities were logged (see docs/monitoring.md)"
        return realised, {
            m: Metric(m, None, why) for m in ("accuracy", "precision", "recall", "f1")
        }
    logged = frame.get(OUTPUT_PREFIX + PREDICT)
    index = class_index(logged.to_numpy(), classes) if logged is not None else None
    estimated = estimate_performance(proba, index, calibration or facts.calibration)
    return realised, estimated


def _column(frame: pd.DataFrame, name: str) -> np.ndarray[Any, Any]:
    if name not in frame.columns:
        return np.full(len(frame), np.nan)
    return np.asarray(frame[name].to_numpy(dtype=float, na_value=np.nan))


def _labels(
    values: Any, classes: Sequence[Any], names: list[str], size: int = 0
) -> np.ndarray[Any, Any]:
    """Labels as the classes' names (so 1, 1.0 and "1" agree); others as their own text."""
    if values is None:
        return np.full(size, "", dtype=object)
    raw = values.to_numpy(dtype=object)
    index = class_index(raw, classes) if classes else np.full(len(raw), -1)
    return np.array(
        [names[j] if j >= 0 else category_label(v) for j, v in zip(index, raw, strict=True)],
        dtype=object,
    )


def _proba(frame: pd.DataFrame, names: list[str]) -> np.ndarray[Any, Any] | None:
    """The logged ``predict_proba`` columns in class order; None unless each class has one and
    some row has them (rows without are NaN)."""
    columns = [PROBA_PREFIX + n for n in names]
    if len(names) < 2 or not all(c in frame.columns for c in columns):
        return None
    matrix = frame[columns].to_numpy(dtype=float, na_value=np.nan)
    return matrix if np.isfinite(matrix).all(axis=1).any() else None


#: the log's columns performance needs: the join's keys, the time and the outputs (a wide
#: log's inputs are most of its bytes)
LOG_COLUMNS = ("request_id", "row", "time", "key", f"{OUTPUT_PREFIX}*")


def performance(
    model: str,
    *,
    since: datetime,
    until: datetime | None = None,
    every: timedelta | None = None,
    version: str | None = None,
    facts: Callable[[str], ModelFacts | None] | None = None,
    log_root: str | None = None,
    labels_root: str | None = None,
    rows: pd.DataFrame | None = None,
) -> list[WindowPerformance]:
    """Per version (oldest first) and per window of ``every`` (else one window), the realised
    and estimated metrics of ``model``'s predictions logged in ``[since, until)``. ``facts(v)``
    describes version ``v`` (None: guessed from the log). Without a calibration in the package,
    CBPE is calibrated on the labelled rows of the whole span, when there are enough. ``rows``:
    the log's rows of the span already read (``read_log`` with at least ``LOG_COLUMNS``), so a
    caller that needs them too (the drift report) reads the log once."""
    start = as_utc(since)
    end = as_utc(until) if until is not None else datetime.now(UTC)
    log = rows
    if log is None:
        log = read_log(
            model, version=version, since=start, until=end, root=log_root, columns=LOG_COLUMNS
        )
    # every label, whenever recorded: a batch job may score rows whose labels came before it
    labels = read_labels(model, root=labels_root or feedback_root(log_root))
    joined = join_feedback(log, labels)
    results = []
    for found in sorted(joined["version"].unique(), key=_natural_key) if len(joined) else []:
        rows = joined[joined["version"] == found]
        known = facts(found) if facts is not None else None
        described = known or ModelFacts.from_log(rows)
        calibration = described.calibration or _feedback_calibration(rows, described)
        for window_start, window_end in _windows(start, end, every):
            times = rows["time"]
            inside = rows[(times >= window_start) & (times < window_end)]
            realised, estimated = score_window(inside, described, calibration)
            results.append(
                WindowPerformance(
                    model, found, window_start, window_end, described.task, len(inside),
                    int(inside[LABEL].notna().sum()), realised, estimated,
                )
            )  # fmt: skip
    return results


def _feedback_calibration(rows: pd.DataFrame, facts: ModelFacts) -> Calibration | None:
    if facts.task != "classifier" or not facts.classes:
        return None
    names = [category_label(c) for c in facts.classes]
    labelled = rows[rows[LABEL].notna()]
    proba = _proba(labelled, names)
    if proba is None:
        return None
    index = class_index(labelled[LABEL].to_numpy(dtype=object), facts.classes)
    return calibration_from_feedback(proba, index, facts.classes)


def _windows(
    start: datetime, end: datetime, every: timedelta | None
) -> list[tuple[datetime, datetime]]:
    if every is None or every >= end - start:
        return [(start, end)]
    edges = []
    left = start
    while left < end:
        edges.append((left, min(left + every, end)))
        left += every
    return edges


def _natural_key(version: str) -> tuple[int, str]:
    return (int(version), "") if version.isdigit() else (-1, version)
