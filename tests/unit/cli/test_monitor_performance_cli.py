"""``seaway monitor feedback / performance / export`` in process, on a log in the contract layout."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "monitoring"))
from test_performance import _requests, write_log


@pytest.fixture
def logged(seaway_home: Path) -> tuple[LogisticRegression, np.ndarray, np.ndarray]:
    """Version 1 of "clf" registered with reference labels, and 200 of its requests logged an
    hour ago (with probabilities)."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 3))
    y = (x[:, 0] + rng.normal(size=1200) > 0).astype(int)
    model = LogisticRegression().fit(x[:1000], y[:1000])
    seaway.log_model(
        model, "clf", sample_input=x[:5], reference_data=x[:1000], reference_labels=y[:1000]
    )
    start = datetime.now(UTC) - timedelta(hours=4)
    frame = _requests(model, x[1000:], start, "r", proba=True)
    write_log(seaway_home / "monitoring" / "predictions", "clf", "1", frame, start)
    return model, x[1000:], y[1000:]


def _run(*args: str) -> int:
    return main(list(args))


def test_feedback_then_performance_equals_sklearn(
    logged, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, x, y = logged
    labels = tmp_path / "labels.csv"
    pd.DataFrame({"rid": [f"r{i}" for i in range(150)], "truth": y[:150]}).to_csv(
        labels, index=False
    )
    assert _run("monitor", "feedback", "clf", "--file", str(labels), "--id-column", "rid",
                "--label-column", "truth") == 0  # fmt: skip
    assert "Recorded 150 labels" in capsys.readouterr().out
    assert _run("monitor", "performance", "clf", "--window", "1d", "--json") == 0
    [result] = json.loads(capsys.readouterr().out)["results"]
    truth, pred = y[:150], model.predict(x[:150])
    assert result["rows"] == 200 and result["labelled"] == 150
    realised = result["realised"]
    assert realised["accuracy"]["value"] == pytest.approx(skm.accuracy_score(truth, pred))
    assert realised["precision"]["value"] == pytest.approx(skm.precision_score(truth, pred))
    proba = model.predict_proba(x[:150])[:, 1]
    assert realised["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(truth, proba))
    assert "calibrated on 1000 labelled reference rows" in result["estimated"]["accuracy"]["reason"]
    assert _run("monitor", "performance", "clf", "--window", "1d", "--every", "2h") == 0
    out = capsys.readouterr().out
    assert "v1, every 2h" in out and out.count(" 0 ") >= 10  # 12 spans, 4 hours logged
    assert "(est.)" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert _run("monitor", "performance", "clf", "--window", "1d") == 0
    out = capsys.readouterr().out
    assert "realised" in out and "estimated" in out and "roc_auc" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_export_with_feedback(logged, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, y = logged
    labels = tmp_path / "labels.parquet"
    pd.DataFrame({"request_id": ["r3", "r4"], "label": y[3:5]}).to_parquet(labels)
    assert _run("monitor", "feedback", "clf", "--file", str(labels)) == 0
    out = tmp_path / "data.parquet"
    assert (
        _run("monitor", "export", "clf", "--since", "1d", "--with-feedback", "--out", str(out)) == 0
    )
    assert "Wrote 2 labelled rows" in capsys.readouterr().out
    data = pd.read_parquet(out)
    assert data["request_id"].tolist() == ["r3", "r4"]
    assert {"input.0", "input.1", "input.2", "label"} <= set(data.columns)
    assert _run("monitor", "export", "clf", "--out", str(out)) == 1
    assert "already exists" in capsys.readouterr().err


def test_bad_feedback_files(logged, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "labels.csv"
    pd.DataFrame({"id": ["r1"], "label": [1]}).to_csv(missing, index=False)
    assert _run("monitor", "feedback", "clf", "--file", str(missing)) == 1
    assert "no column 'request_id'" in capsys.readouterr().err
    holes = tmp_path / "holes.csv"
    pd.DataFrame({"request_id": ["r1", "r2"], "label": [1, None]}).to_csv(holes, index=False)
    assert _run("monitor", "feedback", "clf", "--file", str(holes)) == 1
    assert "row 1 has no label" in capsys.readouterr().err
    assert _run("monitor", "feedback", "clf", "--file", str(tmp_path / "x.xlsx")) == 1
    assert "does not exist" in capsys.readouterr().err
    assert _run("monitor", "feedback", "clf", "--file", str(holes), "--id-column", "a",
                "--key-column", "b") == 1  # fmt: skip
    assert "not both" in capsys.readouterr().err


def test_ids_keep_their_zeros_and_keys_label_batch_rows(
    seaway_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    labels = tmp_path / "labels.csv"
    labels.write_text("key,label\n00123,1\n")
    assert _run("monitor", "feedback", "m", "--file", str(labels), "--key-column", "key") == 0
    part = next((seaway_home / "monitoring" / "feedback").rglob("*.parquet"))
    assert pd.read_parquet(part)["request_id"].tolist() == ["00123"]


def test_performance_of_nothing(seaway_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("monitor", "performance", "nobody") == 0
    assert "No predictions of 'nobody' logged" in capsys.readouterr().out
    assert _run("monitor", "performance", "nobody", "--window", "30d", "--every", "1m") == 1
    assert "more than 500 spans" in capsys.readouterr().err
