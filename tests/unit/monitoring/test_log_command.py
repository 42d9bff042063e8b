"""``seaway monitor log NAME``: the latest logged rows, within 80 columns, and the log's counts."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seaway.cli.main import app, main
from seaway.monitoring.predlog import LogConfig, PredictionLog


def _write_log(
    root: Path, requests: int, *, buffer_rows: int = 1000, at: float | None = None
) -> None:
    log = PredictionLog(
        LogConfig(str(root), buffer_rows=buffer_rows, retention=None),
        rng=random.Random(0),
        start=False,
        clock=time.time if at is None else lambda: at,
    )
    handle = log.model("fraud", "2", sample=1.0, classes=[0, 1])
    assert handle is not None
    for i in range(requests):
        inputs = {"amount": np.array([10.0 + i]), "country": np.array(["fr"], dtype=object)}
        outputs = {"predict": np.array([i % 2]), "predict_proba": np.array([[0.25, 0.75]])}
        handle.record(inputs, outputs, 1, 0.003, f"request-{i:04d}-with-a-long-id")
    log.close()


def test_prints_the_latest_rows_and_the_counts_within_80_columns(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _write_log(root, 30, buffer_rows=25)
    result = CliRunner().invoke(
        app,
        ["monitor", "log", "fraud", "--store", str(root), "--limit", "5"],
        env={"COLUMNS": "80"},
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if not line.startswith("store")]
    assert max(len(line) for line in lines) <= 80  # the store's path is as long as it is
    assert "Latest 5 of 25 logged rows of fraud" in result.output
    assert "request-0024" in result.output and "request-0019" not in result.output
    assert "amount=34" in result.output
    assert "dropped            5 requests" in result.output


def test_json_and_an_empty_window(tmp_path: Path) -> None:
    root = tmp_path / "log"
    _write_log(root, 3)
    result = CliRunner().invoke(
        app, ["monitor", "log", "fraud", "--store", str(root), "--limit", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["summary"]["rows"] == 3 and data["summary"]["versions"] == ["2"]
    assert [row["request_id"][:12] for row in data["rows"]] == ["request-0001", "request-0002"]
    assert data["rows"][0]["output.predict_proba.1"] == 0.75

    empty = CliRunner().invoke(app, ["monitor", "log", "other", "--store", str(root)])
    assert empty.exit_code == 0
    assert "No predictions of 'other' logged since" in empty.output


def test_delete_older_than_sweeps_the_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "log"
    _write_log(root, 2, at=time.time() - 3 * 86400)  # three days ago
    _write_log(root, 1)
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "log",
            "fraud",
            "--store",
            str(root),
            "--since",
            "7d",
            "--delete-older-than",
            "2d",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["summary"]["deleted"] >= 1  # the old day's folder (and its writer's counters)
    assert data["summary"]["rows"] == 1
    assert main(["monitor", "log", "fraud", "--since", "soon"]) == 1
    assert "Error: --since 'soon' is neither a duration" in capsys.readouterr().err
