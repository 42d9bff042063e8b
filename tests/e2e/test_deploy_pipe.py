"""``seaway deploy`` and ``seaway validate`` as a user runs them: a real process whose output goes
to a pipe (no COLUMNS), so every line must fit 80 columns by itself (issue 12)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LogisticRegression

import seaway


def run_cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "SEAWAY_HOME": str(home)}
    environ.pop("COLUMNS", None)
    environ.pop("SEAWAY_REGISTRY_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env=environ,
        cwd=cwd,
        timeout=120,
    )


def _fits(text: str) -> None:
    assert [line for line in text.splitlines() if len(line) > 80] == []


@pytest.fixture
def project(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    """``fraud`` 1 (good) and 2 (always 0), a holdout file, and a rollout spec gated on it."""
    frame, target = tabular
    seaway.log_model(LogisticRegression().fit(frame, target), "fraud", sample_input=frame.head())
    constant = DummyClassifier(strategy="constant", constant=0).fit(frame, target)
    seaway.log_model(constant, "fraud", sample_input=frame.head())
    folder = tmp_path / "project"
    folder.mkdir()
    frame.assign(label=target).to_parquet(folder / "holdout-data-for-the-fraud-model.parquet")
    spec = {
        "name": "fraud-scoring-for-the-risk-team",
        "model": "fraud",
        "routes": [{"version": 1}],
        "rollout": {"version": 2, "steps": [{"weight": 10, "min_duration": "5m"}, {"weight": 100}]},
        "validation": {
            "data": "holdout-data-for-the-fraud-model.parquet",
            "target": "label",
            "min": {"accuracy": 0.9},
        },
    }
    (folder / "deploy.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return folder


def test_deploy_in_a_pipe(project: Path, seaway_home: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, home=seaway_home, cwd=project)

    refused = cli("deploy", "apply", "deploy.yaml")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.startswith("Error: deployment fraud-scoring-for-the-risk-team not ")
    assert "models:/fraud/2 failed validation" in refused.stderr
    assert "Traceback" not in refused.stderr

    spec = yaml.safe_load((project / "deploy.yaml").read_text())
    spec["validation"]["max"], spec["validation"]["min"] = {"p99_ms": 60_000}, {}
    (project / "deploy.yaml").write_text(yaml.safe_dump(spec))
    applied = cli("deploy", "apply", "deploy.yaml", "-m", "roll out version 2 behind a gate")
    assert applied.returncode == 0, applied.stderr
    _fits(applied.stdout)
    assert "Traffic: 1:90 2:10" in applied.stdout

    paused = cli("deploy", "pause", "fraud-scoring-for-the-risk-team")
    assert paused.returncode == 0, paused.stderr
    for command in (["status"], ["history"], ["history", "--decisions"], ["results"]):
        done = cli("deploy", *command, "fraud-scoring-for-the-risk-team")
        assert done.returncode == 0, done.stderr
        _fits(done.stdout)
    listed = cli("deploy", "list")
    _fits(listed.stdout)
    assert "fraud-scoring-for-the-risk-team" in listed.stdout  # an identifier stays whole


def test_validate_in_a_pipe(project: Path, seaway_home: Path) -> None:
    done = run_cli(
        "validate",
        "models:/fraud/2",
        "--data",
        "holdout-data-for-the-fraud-model.parquet",
        "--target",
        "label",
        "--min",
        "accuracy=0.9",
        home=seaway_home,
        cwd=project,
    )
    assert done.returncode == 1
    _fits(done.stdout)
    assert "MISSED" in done.stdout
    assert done.stderr.startswith("Error: models:/fraud/2 failed validation on ")
    assert "Traceback" not in done.stderr
