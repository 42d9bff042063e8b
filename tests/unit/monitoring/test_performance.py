"""Performance per version and window from log files in the contract's layout, and the export."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LinearRegression, LogisticRegression

from seaway.errors import InvalidInputError
from seaway.monitoring.export import export_rows, write_rows
from seaway.monitoring.feedback import FeedbackItem, record_feedback, record_feedback_columns
from seaway.monitoring.performance import ModelFacts, performance, score_window
from seaway.packaging.calibration import fit_calibration

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)


def write_log(root: Path, model: str, version: str, frame: pd.DataFrame, when: datetime) -> None:
    """One part file in the prediction log's layout (docs/monitoring.md), as the writer makes it."""
    day = root / f"model={model}" / f"version={version}" / f"date={when:%Y-%m-%d}"
    day.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index("time"),
        "time",
        pa.array(frame["time"], pa.timestamp("us", tz="UTC")),
    )
    table = table.set_column(
        table.schema.get_field_index("row"), "row", pa.array(frame["row"], pa.int32())
    )
    pq.write_table(table, day / f"part-{when:%Y%m%dT%H%M%S%f}Z-{uuid.uuid4().hex}.parquet")


def _requests(model, x: np.ndarray, start: datetime, prefix: str, proba: bool) -> pd.DataFrame:
    """Each row its own request, one a minute from ``start``."""
    n = len(x)
    frame = pd.DataFrame(
        {
            "request_id": [f"{prefix}{i}" for i in range(n)],
            "row": 0,
            "time": [start + timedelta(minutes=i) for i in range(n)],
            "latency_ms": 1.0,
            "source": "serve",
            "job_id": None,
            "key": None,
        }
    )
    for j in range(x.shape[1]):
        frame[f"input.{j}"] = x[:, j]
    frame["output.predict"] = model.predict(x)
    if proba:
        for j, label in enumerate(model.classes_):
            frame[f"output.predict_proba.{label}"] = model.predict_proba(x)[:, j]
    return frame


@pytest.fixture
def classifier() -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 3))
    y = (x[:, 0] + rng.normal(size=3000) > 0).astype(int)
    return LogisticRegression().fit(x[:2000], y[:2000]), x, y


def test_realised_metrics_equal_sklearn_and_estimates_sit_beside_them(
    tmp_path: Path, classifier
) -> None:
    model, x, y = classifier
    log, labels = tmp_path / "predictions", str(tmp_path / "feedback")
    live_x, live_y = x[2000:2600], y[2000:2600]
    write_log(log, "clf", "1", _requests(model, live_x, T0, "r", proba=True), T0)
    labelled = np.arange(0, 600, 2)  # half the rows get their label
    record_feedback(
        "clf",
        [FeedbackItem(f"r{i}", int(live_y[i])) for i in labelled],
        root=labels,
        now=T0 + timedelta(days=1),
    )
    calibration = fit_calibration(model.predict_proba(x[:2000]), y[:2000], [0, 1])
    facts = ModelFacts("classifier", (0, 1), calibration)
    [result] = performance(
        "clf",
        since=T0,
        until=T0 + timedelta(days=2),
        facts=lambda v: facts,
        log_root=str(log),
        labels_root=labels,
    )
    assert (result.version, result.rows, result.labelled) == ("1", 600, 300)
    truth, pred = live_y[labelled], model.predict(live_x[labelled])
    proba = model.predict_proba(live_x[labelled])
    assert result.realised["accuracy"].value == pytest.approx(skm.accuracy_score(truth, pred))
    assert result.realised["f1"].value == pytest.approx(skm.f1_score(truth, pred))
    assert result.realised["roc_auc"].value == pytest.approx(skm.roc_auc_score(truth, proba[:, 1]))
    assert result.realised["log_loss"].value == pytest.approx(skm.log_loss(truth, proba))
    estimated = result.estimated["accuracy"]
    assert estimated.value == pytest.approx(
        skm.accuracy_score(live_y, model.predict(live_x)), abs=0.05
    )
    assert "reference" in (estimated.reason or "")
    assert result.to_dict()["realised"]["accuracy"]["value"] == result.realised["accuracy"].value


def test_versions_and_windows(tmp_path: Path, classifier) -> None:
    model, x, y = classifier
    log = tmp_path / "predictions"
    # version 1 on day one, version 2 on days one and two; 100 requests each, a minute apart
    write_log(log, "clf", "1", _requests(model, x[:100], T0, "a", proba=False), T0)
    write_log(log, "clf", "2", _requests(model, x[100:200], T0, "b", proba=False), T0)
    day2 = T0 + timedelta(days=1)
    write_log(log, "clf", "2", _requests(model, x[200:300], day2, "c", proba=False), day2)
    record_feedback_columns(
        "clf", [f"c{i}" for i in range(100)], y[200:300], root=str(tmp_path / "feedback"), now=day2
    )
    results = performance(
        "clf",
        since=T0,
        until=T0 + timedelta(days=2),
        every=timedelta(days=1),
        log_root=str(log),
    )  # no facts: guessed from the log, and the labels found beside it
    assert [(r.version, r.start, r.rows, r.labelled) for r in results] == [
        ("1", T0, 100, 0),
        ("1", day2, 0, 0),
        ("2", T0, 100, 0),
        ("2", day2, 100, 100),
    ]
    last = results[-1]
    assert last.task == "classifier"  # integer predictions: guessed a classifier of 0 and 1
    truth, pred = y[200:300], model.predict(x[200:300])
    assert last.realised["accuracy"].value == pytest.approx(skm.accuracy_score(truth, pred))
    assert last.realised["f1"].value == pytest.approx(skm.f1_score(truth, pred))
    assert results[0].realised["accuracy"].value is None
    only_2 = performance(
        "clf", since=T0, until=day2 + timedelta(days=1), version="2", log_root=str(log)
    )
    assert [r.version for r in only_2] == ["2"]


def test_guessed_classifier_without_probabilities(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "request_id": ["a", "b", "c"],
            "row": 0,
            "time": [T0] * 3,
            "output.predict": ["cat", "dog", "cat"],
            "label": ["cat", "cat", None],
        }
    )
    facts = ModelFacts.from_log(frame)
    assert facts == ModelFacts("classifier", ("cat", "dog"))
    realised, estimated = score_window(frame, facts)
    assert realised["accuracy"].value == 0.5
    assert estimated["accuracy"].value is None
    assert "no predicted probabilities" in (estimated["accuracy"].reason or "")


def test_regressor_metrics(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 2))
    target = x @ [1.0, 2.0] + rng.normal(size=200)
    model = LinearRegression().fit(x, target)
    log = tmp_path / "predictions"
    write_log(log, "reg", "1", _requests(model, x, T0, "r", proba=False), T0)
    record_feedback_columns(
        "reg", [f"r{i}" for i in range(200)], target, root=str(tmp_path / "feedback"), now=T0
    )
    [result] = performance(
        "reg",
        since=T0,
        until=T0 + timedelta(days=1),
        facts=lambda v: ModelFacts("regressor"),
        log_root=str(log),
    )
    assert result.realised["r2"].value == pytest.approx(skm.r2_score(target, model.predict(x)))
    assert result.realised["mae"].value == pytest.approx(
        skm.mean_absolute_error(target, model.predict(x))
    )
    assert result.estimated == {}


def test_feedback_calibration_when_the_package_has_none(tmp_path: Path, classifier) -> None:
    model, x, y = classifier
    log = tmp_path / "predictions"
    write_log(log, "clf", "1", _requests(model, x[2000:2500], T0, "r", proba=True), T0)
    record_feedback_columns(
        "clf", [f"r{i}" for i in range(300)], y[2000:2300], root=str(tmp_path / "feedback"), now=T0
    )
    [result] = performance(
        "clf",
        since=T0,
        until=T0 + timedelta(days=1),
        facts=lambda v: ModelFacts("classifier", (0, 1)),
        log_root=str(log),
    )
    assert "300 labelled feedback rows" in (result.estimated["accuracy"].reason or "")


def test_bulk_columns_are_checked(tmp_path: Path) -> None:
    root = str(tmp_path)
    with pytest.raises(InvalidInputError, match="row 1 has no label"):
        record_feedback_columns("m", ["a", "b"], [1, None], root=root)
    with pytest.raises(InvalidInputError, match="row 0 has no request id"):
        record_feedback_columns("m", [None, "b"], [1, 2], root=root)
    with pytest.raises(InvalidInputError, match="row 1 has no row number"):
        record_feedback_columns("m", ["a", "b"], [1, 2], rows=[0, -1], root=root)
    assert record_feedback_columns("m", [7, 8], [True, False], rows=[0, 1], root=root) == 2


def test_export_with_feedback(tmp_path: Path, classifier) -> None:
    model, x, _ = classifier
    log = tmp_path / "predictions"
    write_log(log, "clf", "1", _requests(model, x[:10], T0, "r", proba=False), T0)
    record_feedback_columns("clf", ["r1", "r3"], [1, 0], root=str(tmp_path / "feedback"), now=T0)
    everything = export_rows("clf", since=T0, log_root=str(log))
    assert len(everything) == 10 and "label" not in everything.columns
    labelled = export_rows("clf", since=T0, with_feedback=True, log_root=str(log))
    assert labelled["request_id"].tolist() == ["r1", "r3"]
    assert labelled["label"].tolist() == ["1", "0"]
    assert {"input.0", "input.1", "input.2", "output.predict", "label_value"} <= set(
        labelled.columns
    )
    out = tmp_path / "out" / "data.parquet"
    write_rows(labelled, out)
    assert pd.read_parquet(out)["label"].tolist() == ["1", "0"]
    with pytest.raises(InvalidInputError, match="already exists"):
        write_rows(labelled, out)
    write_rows(labelled, tmp_path / "data.csv")
    assert pd.read_csv(tmp_path / "data.csv")["label"].tolist() == [1, 0]
    with pytest.raises(InvalidInputError, match=".parquet or .csv"):
        write_rows(labelled, tmp_path / "data.xlsx")


def test_score_window_on_rows_without_feedback() -> None:
    frame = pd.DataFrame(
        {
            "output.predict": [1, 0],
            "output.predict_proba.0": [0.1, 0.7],
            "output.predict_proba.1": [0.9, 0.3],
        }
    )
    realised, estimated = score_window(frame, ModelFacts("classifier", (0, 1)))
    assert realised["accuracy"].value is None
    assert estimated["accuracy"].value == pytest.approx(0.8)
