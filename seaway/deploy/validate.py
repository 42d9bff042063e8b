"""The pre-release gate: score a registered version on held-out data and hold it to thresholds.

A version can look fine where it was trained and still be worse on recent data, or too slow for
the latency budget. ``seaway validate`` and a deployment spec's ``validation`` section (checked at
apply, on every version new to the deployment) refuse it before it takes any traffic, with the
figures. The version is loaded in this process with the same package and signature checks as a
server's, so what is measured is the model itself; the quality metrics are the monitoring
package's (equal to scikit-learn's), the latency is that of single-row predicts, as a server's
one-row requests see it (without the network and the queue).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from seaway.deploy.holdout import read_holdout
from seaway.errors import InvalidInputError, ValidationFailedError, listed
from seaway.monitoring.metrics import (
    CLASSIFIER_METRICS,
    REGRESSOR_METRICS,
    classification_metrics,
    regression_metrics,
)
from seaway.packaging.profile import category_label
from seaway.packaging.reference import class_index
from seaway.registry.uri import ModelRef, parse_model_uri, parse_reference

if TYPE_CHECKING:
    import pandas as pd

    from seaway.registry import Registry
    from seaway.runtime.model import Model

LATENCY_METRICS = ("p50_ms", "p99_ms")
METRICS = (*CLASSIFIER_METRICS, *REGRESSOR_METRICS, *LATENCY_METRICS)
#: single-row predicts timed for the latency figures (the first rows of the file)
LATENCY_ROWS = 200


@dataclass(frozen=True)
class ValidationReport:
    """One version's figures on one data set, and the thresholds it missed (``failures``, each a
    sentence such as ``accuracy 0.81 is below the minimum 0.9``)."""

    uri: str
    data: str
    rows: int
    task: str
    figures: dict[str, float | None]
    minimum: dict[str, float] = field(default_factory=dict)
    maximum: dict[str, float] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    #: why a figure is undefined or what it leaves out (metrics' reasons)
    notes: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def message(self) -> str:
        verdict = "passed" if self.passed else "failed"
        text = f"{self.uri} {verdict} validation on {self.data} ({self.rows} rows)"
        return f"{text}: {'; '.join(self.failures)}" if self.failures else text

    def raise_if_failed(self) -> None:
        if not self.passed:
            raise ValidationFailedError(self.message())

    def to_json(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "data": self.data,
            "rows": self.rows,
            "task": self.task,
            "passed": self.passed,
            "figures": self.figures,
            "min": self.minimum,
            "max": self.maximum,
            "failures": self.failures,
            "notes": self.notes,
        }


def validate(
    registry: Registry,
    ref: str | ModelRef,
    data: str,
    *,
    target: str | None = None,
    minimum: Mapping[str, float] | None = None,
    maximum: Mapping[str, float] | None = None,
    trusted: bool = False,
    clock: Callable[[], float] = time.perf_counter,
) -> ValidationReport:
    """Score the version ``ref`` names (``models:/fraud/4``, ``fraud/4``, ``fraud@prod``) on
    ``data`` (a path or fsspec URL: .parquet, .csv, .jsonl) and compare with the thresholds.

    Returns the report whether or not it passed (``report.raise_if_failed()`` refuses); raises
    ``InvalidInputError`` for a request that cannot be measured (unknown metric, no target column
    for a quality metric, a metric of the other task)."""
    low, high = _thresholds(minimum, "min"), _thresholds(maximum, "max")
    from seaway.runtime.model import ModelInfo, load_package

    parsed = _reference(ref)
    record = registry.resolve(parsed)
    model = load_package(
        registry.fetch(record),
        trusted=trusted,
        manifest_sha256=record.manifest_sha256,
        info=ModelInfo(uri=record.uri, name=record.name, version=record.version),
    )
    frame = read_holdout(data)
    if target is not None and target not in frame.columns:
        raise InvalidInputError(
            f"target column {target!r} is not in {data} (its columns: {listed(frame.columns)})"
        )
    features = frame.drop(columns=[target]) if target is not None else frame
    try:
        predicted = _first_output(model.predict(features))
    except InvalidInputError as exc:
        raise InvalidInputError(f"{record.uri} cannot score {data}: {exc}") from exc
    classes = _classes(model, predicted)
    task = "regressor" if classes is None else "classifier"
    figures: dict[str, float | None] = {}
    notes: dict[str, str] = {}
    if target is not None:
        quality = _quality(model, features, frame[target], predicted, classes)
        figures |= {name: metric.value for name, metric in quality.items()}
        notes |= {name: metric.reason for name, metric in quality.items() if metric.reason}
    figures |= _latency(model, features, clock)
    _check_applicable(low | high, figures, task, target)
    failures = _failures(figures, notes, low, high)
    return ValidationReport(record.uri, data, len(frame), task, figures, low, high, failures, notes)


def _reference(ref: str | ModelRef) -> ModelRef:
    if isinstance(ref, ModelRef):
        return ref
    return parse_model_uri(ref) if ref.startswith("models:") else parse_reference(ref)


def _thresholds(given: Mapping[str, float] | None, side: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, value in (given or {}).items():
        if name not in METRICS:
            raise InvalidInputError(
                f"{side}.{name}: unknown metric; use one of {', '.join(METRICS)}"
            )
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidInputError(f"{side}.{name}: {value!r} is not a number") from None
        if not math.isfinite(number):
            raise InvalidInputError(f"{side}.{name}: {value!r} must be a finite number")
        out[name] = number
    return out


def _first_output(output: Any) -> np.ndarray[Any, Any]:
    """The predicted value per row: the first output of a multi-output model, the first column
    of a 2-D one."""
    if isinstance(output, Mapping):
        output = next(iter(output.values()))
    array = np.asarray(output)
    return array[:, 0] if array.ndim == 2 else array.reshape(-1)


def _classes(model: Model, predicted: np.ndarray[Any, Any]) -> list[Any] | None:
    """A classifier's classes (recorded in its package); None for a regressor. A package that
    recorded none is a classifier when its predictions are not floats."""
    if model.classes is not None:
        return model.classes
    if predicted.dtype.kind == "f":
        return None
    return sorted({category_label(v) for v in predicted.tolist()})


def _quality(
    model: Model,
    features: pd.DataFrame,
    truth: pd.Series,
    predicted: np.ndarray[Any, Any],
    classes: list[Any] | None,
) -> dict[str, Any]:
    known = truth.notna().to_numpy()
    if classes is None:
        values = np.asarray(truth.to_numpy(dtype=float, na_value=np.nan))
        return regression_metrics(values[known], predicted.astype(float)[known])
    names = [category_label(c) for c in classes]
    proba = None
    if model.supports_proba and len(names) >= 2:
        proba = np.asarray(model.predict_proba(features), dtype=float)[known]
    return classification_metrics(
        _labels(truth.to_numpy(dtype=object)[known], classes, names),
        _labels(predicted[known], classes, names),
        names,
        proba,
    )


def _labels(values: Any, classes: list[Any], names: list[str]) -> np.ndarray[Any, Any]:
    """Labels as the classes' names, so 1, 1.0 and "1" agree (as the monitoring's)."""
    index = class_index(values, classes)
    raw = np.asarray(values, dtype=object).reshape(-1).tolist()
    return np.array(
        [names[j] if j >= 0 else category_label(v) for j, v in zip(index, raw, strict=True)],
        dtype=object,
    )


def _latency(
    model: Model, features: pd.DataFrame, clock: Callable[[], float]
) -> dict[str, float | None]:
    rows = min(LATENCY_ROWS, len(features))
    if not rows:
        return dict.fromkeys(LATENCY_METRICS)
    model.predict(features.iloc[:1])  # warm-up: first-call costs are not the model's latency
    elapsed = []
    for i in range(rows):
        row = features.iloc[i : i + 1]
        start = clock()
        model.predict(row)
        elapsed.append((clock() - start) * 1000.0)
    p50, p99 = np.percentile(np.asarray(elapsed), [50, 99])
    return {"p50_ms": float(p50), "p99_ms": float(p99)}


def _check_applicable(
    names: Mapping[str, float], figures: Mapping[str, float | None], task: str, target: str | None
) -> None:
    for name in names:
        if name in figures:
            continue
        if target is None:
            raise InvalidInputError(
                f"{name} compares predictions with labels: give the target column (target: in "
                "the spec's validation section, --target on the command line)"
            )
        own = CLASSIFIER_METRICS if task == "classifier" else REGRESSOR_METRICS
        raise InvalidInputError(
            f"{name} is not a {task} metric; a {task}'s are {', '.join(own)} (and "
            f"{', '.join(LATENCY_METRICS)})"
        )


def _failures(
    figures: Mapping[str, float | None],
    notes: Mapping[str, str],
    low: Mapping[str, float],
    high: Mapping[str, float],
) -> list[str]:
    failures = []
    for side, bounds in (("min", low), ("max", high)):
        for name, bound in bounds.items():
            value = figures[name]
            if value is None or not math.isfinite(value):
                why = notes.get(name, "no value")
                failures.append(f"{name} is undefined ({why}), so it cannot meet {side} {bound:g}")
            elif side == "min" and value < bound:
                failures.append(f"{name} {value:.4g} is below the minimum {bound:g}")
            elif side == "max" and value > bound:
                failures.append(f"{name} {value:.4g} is above the maximum {bound:g}")
    return failures
