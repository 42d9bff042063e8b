"""Drift and accuracy alert signals and gauges from a real prediction log (issue 11, items 5 and
6): written by the log's own writer for a model saved with reference data and labels, then read as
the server's evaluator reads them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.monitoring.alerts import AlertRule, AlertState, AlertStatus, evaluate
from seaway.monitoring.feedback import FeedbackItem, record_feedback
from seaway.monitoring.predlog import LogConfig, PredictionLog
from seaway.monitoring.signals import LogSignals
from seaway.packaging.manifest import Manifest
from seaway.packaging.profile import ReferenceProfile


def rule(**fields: Any) -> AlertRule:
    return AlertRule.model_validate({"model": "clf", "window": "1h", **fields})


@pytest.fixture
def served(tmp_path: Path) -> tuple[LogisticRegression, Path, Manifest]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(4000, 2)), columns=["a", "b"])
    labels = (frame["a"] + rng.normal(scale=0.5, size=4000) > 0).astype(np.int64)
    model = LogisticRegression().fit(frame, labels)
    package = seaway.save_model(
        model,
        tmp_path / "pkg",
        sample_input=frame.head(5),
        reference_data=frame,
        reference_labels=labels,
    )
    return model, package.path, package.manifest


def write(root: Path, served: Any, frame: pd.DataFrame, prefix: str) -> None:
    """Each row its own request, through the log's writer (window summaries against the
    package's reference profile, as a server writes them), flushed at once."""
    model, path, manifest = served
    profile = ReferenceProfile.model_validate_json((path / manifest.reference_profile).read_text())
    log = PredictionLog(LogConfig(root=str(root), retention=None), start=False)
    handle = log.model(
        "clf", "1", sample=1.0, classes=list(model.classes_), profile=lambda: profile
    )
    assert handle is not None
    for i in range(len(frame)):
        row = frame.iloc[[i]]
        outputs = {"predict": model.predict(row), "predict_proba": model.predict_proba(row)}
        handle.record(row, outputs, 1, 0.001, f"{prefix}{i}")
    log.poll(force=True)
    log.close()


def signals(root: Path, served: tuple[Any, Path, Manifest]) -> LogSignals:
    _, path, manifest = served
    return LogSignals(
        str(root),
        lambda model, version: (path, manifest) if (model, version) == ("clf", "1") else None,
    )


def test_no_log_no_signal_and_the_reason(tmp_path: Path, served: Any) -> None:
    found = signals(tmp_path / "predictions", served)
    now = datetime.now(UTC)
    for signal in (
        found.data_drift(rule(data_drift=True), "clf", "1", now),
        found.prediction_drift(rule(prediction_drift=True), "clf", "1", now),
        found.estimated_accuracy(rule(estimated_accuracy_below=0.5), "clf", "1", now),
        found.accuracy(rule(accuracy_below=0.5), "clf", "1", now),
    ):
        assert signal.value is None and "no logged rows of clf/1" in signal.reason
    assert "not served here" in found.data_drift(rule(data_drift=True), "clf", "2", now).reason
    gauges = found.gauges("clf", "1", now)
    assert gauges.drift_detected is None and gauges.accuracy is None and not gauges.drift_scores


def test_unshifted_traffic_does_not_drift_and_shifted_traffic_does(
    tmp_path: Path, served: Any
) -> None:
    rng = np.random.default_rng(1)
    calm = pd.DataFrame(rng.normal(size=(600, 2)), columns=["a", "b"])
    write(tmp_path / "calm", served, calm, "c")
    now = datetime.now(UTC) + timedelta(seconds=1)
    quiet = signals(tmp_path / "calm", served)
    overall = quiet.data_drift(rule(data_drift=True), "clf", "1", now)
    assert overall.breached is False and overall.value == 0.0
    assert overall.reason.startswith("none of")
    assert quiet.prediction_drift(rule(prediction_drift=True), "clf", "1", now).breached is False

    shifted = calm.assign(a=calm["a"] + 2.0)
    write(tmp_path / "shifted", served, shifted, "s")
    now = datetime.now(UTC) + timedelta(seconds=1)
    loud = signals(tmp_path / "shifted", served)
    overall = loud.data_drift(rule(data_drift=True), "clf", "1", now)
    assert overall.breached is True and "a" in overall.reason
    one = loud.data_drift(rule(data_drift=True, feature="a"), "clf", "1", now)
    assert one.breached is True and one.threshold is not None and one.value is not None
    assert one.value > one.threshold
    other = loud.data_drift(rule(data_drift=True, feature="b"), "clf", "1", now)
    assert other.breached is False
    unknown = loud.data_drift(rule(data_drift=True, feature="zz"), "clf", "1", now)
    assert unknown.value is None and "no 'zz'" in unknown.reason
    assert loud.prediction_drift(rule(prediction_drift=True), "clf", "1", now).breached is True

    status, events = evaluate(
        rule(data_drift=True), overall, AlertStatus(), now, version="1"
    )  # the state machine takes the verdict
    assert status.state is AlertState.FIRING and "data drift of clf/1" in events[0].message

    gauges = loud.gauges("clf", "1", now)
    assert gauges.drift_detected is True and gauges.prediction_drift_detected is True
    assert gauges.drift_scores["a"] > 1 > gauges.drift_scores["b"]  # statistic / threshold


def test_estimated_and_realised_accuracy(tmp_path: Path, served: Any) -> None:
    model = served[0]
    rng = np.random.default_rng(2)
    live = pd.DataFrame(rng.normal(size=(400, 2)), columns=["a", "b"])
    truth = (live["a"] + rng.normal(scale=0.5, size=400) > 0).astype(np.int64)
    root = tmp_path / "predictions"
    write(root, served, live, "r")
    now = datetime.now(UTC) + timedelta(seconds=1)
    found = signals(root, served)
    estimated = found.estimated_accuracy(rule(estimated_accuracy_below=0.5), "clf", "1", now)
    assert estimated.value is not None and 0.7 < estimated.value <= 1.0
    assert estimated.reason == "400 rows"
    realised = found.accuracy(rule(accuracy_below=0.5), "clf", "1", now)
    assert realised.value is None and "no labelled rows" in realised.reason

    record_feedback(
        "clf",
        [FeedbackItem(f"r{i}", int(truth[i])) for i in range(200)],
        root=str(tmp_path / "feedback"),
    )
    later = now + timedelta(minutes=2)  # past the cached result's life (1/60 of the window)
    realised = found.accuracy(rule(accuracy_below=0.5), "clf", "1", later)
    expected = float((model.predict(live.head(200)) == truth[:200]).mean())
    assert realised.value == pytest.approx(expected) and realised.reason == "200 labelled rows"
    f1 = found.accuracy(rule(accuracy_below=0.5, metric="f1"), "clf", "1", later)
    assert f1.value is not None and 0 < f1.value <= 1
    nope = found.accuracy(
        rule(accuracy_below=0.5, metric="r2"), "clf", "1", later
    )  # a classifier has no r2 (an unknown name is refused in the config)
    assert nope.value is None and "known:" in nope.reason
    gauges = found.gauges("clf", "1", later)
    assert gauges.accuracy == pytest.approx(expected)
    assert gauges.estimated_accuracy == pytest.approx(estimated.value)


def test_results_are_reused_for_a_sixtieth_of_the_window(tmp_path: Path, served: Any) -> None:
    root = tmp_path / "predictions"
    rng = np.random.default_rng(3)
    found = signals(root, served)
    now = datetime.now(UTC) + timedelta(seconds=1)
    assert found.data_drift(rule(data_drift=True), "clf", "1", now).value is None
    write(root, served, pd.DataFrame(rng.normal(size=(50, 2)), columns=["a", "b"]), "x")
    # within a minute of an hour's window: the cached answer; after it: computed again
    assert (
        found.data_drift(rule(data_drift=True), "clf", "1", now + timedelta(seconds=30)).value
        is None
    )
    assert (
        found.data_drift(rule(data_drift=True), "clf", "1", now + timedelta(seconds=61)).value
        == 0.0
    )
