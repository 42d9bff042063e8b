"""``seaway monitor drift`` and ``seaway monitor report`` through the real CLI: a model logged with
reference data, its prediction log written by the log's own writer (and, in the last test, by a
real server with --log-sample 1.0), the report opened in headless Chromium."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import seaway
from seaway.cli.main import main
from seaway.monitoring import logstore
from seaway.monitoring.predlog import LogConfig, PredictionLog
from seaway.packaging.profile import ReferenceProfile
from seaway.packaging.reader import open_package, read_reference_profile

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))

from _browser import open_offline
from servers import start_server

HOSTILE = '<img src=x onerror="window.pwned=1">'  # a feature's name
NEW_CITY = "<script>window.pwned=2</script>"  # a category the reference never had
FEATURES = ["age", "income", "score", HOSTILE, "city"]


def data(rng: np.random.Generator, n: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "age": rng.normal(40, 10, n).round(),
            "income": rng.lognormal(10, 0.5, n),
            "score": rng.normal(shift, 1, n),
            HOSTILE: rng.normal(0, 1, n),
            "city": rng.choice(["paris", "lyon", "nice"], n, p=[0.5, 0.3, 0.2]),
        }
    )


def model_for(frame: pd.DataFrame, target: np.ndarray) -> Pipeline:
    numeric = ["age", "income", "score", HOSTILE]
    prepare = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )
    return make_pipeline(prepare, LogisticRegression()).fit(frame, target)


@pytest.fixture
def fraud(seaway_home: Path) -> Pipeline:
    """models:/fraud/1 logged with reference data and labels, and six hourly parts of traffic
    in the last six hours written by the log's writer: the last two shifted by one standard
    deviation in ``score`` and holding a new city."""
    rng = np.random.default_rng(7)
    reference = data(rng, 3000)
    target = (reference["score"] + rng.normal(0, 1, 3000) > 0).astype(int).to_numpy()
    model = model_for(reference, target)
    record = seaway.log_model(
        model, "fraud", sample_input=reference.head(), reference_data=reference,
        reference_labels=target,
    )  # fmt: skip
    with seaway.Registry.from_settings() as registry:
        package = open_package(registry.fetch(record))
    profile = ReferenceProfile.model_validate(read_reference_profile(package))
    now = datetime.now(UTC)
    clock = [now.timestamp()]
    log = PredictionLog(
        LogConfig(logstore.default_root(seaway_home), retention=None),
        source="batch", start=False, clock=lambda: clock[0],
    )  # fmt: skip
    handle = log.model("fraud", "1", sample=1.0, classes=[0, 1], profile=lambda: profile)
    assert handle is not None
    for hours_ago in range(6, 0, -1):
        shifted = hours_ago <= 2
        rows = data(rng, 400, shift=1.0 if shifted else 0.0)
        if shifted:
            rows.loc[rows.index[:40], "city"] = NEW_CITY
        when = now - timedelta(hours=hours_ago) + timedelta(minutes=10)
        clock[0] = when.timestamp()
        outputs = {"predict": model.predict(rows), "predict_proba": model.predict_proba(rows)}
        written = handle.write_rows(
            rows, outputs, request_ids=[f"r{hours_ago}-{i}" for i in range(len(rows))],
            rows=list(range(len(rows))), when=when,
        )  # fmt: skip
        assert written == len(rows)
    return model


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["monitor", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_drift_table_names_the_shifted_feature_within_80_columns(
    fraud: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "drift", "fraud", "--window", "24h")
    assert code == 0, err
    assert f"{HOSTILE}  numeric" in out  # a long name widens the table; it is never cut
    shown = ["--feature", "age", "--feature", "income", "--feature", "score", "--feature", "city"]
    code, out, err = run(capsys, "drift", "fraud", "--window", "24h", *shown)
    assert code == 0, err
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80, out
    assert HOSTILE not in out
    rows = {line.split()[0]: line.split() for line in lines if line.split()[:1] == ["score"]}
    assert rows["score"][:3] == ["score", "numeric", "ks"]
    assert rows["score"][-1] == "yes"
    assert any(line.startswith("city ") and line.endswith("yes*") for line in lines)
    assert "* city: new categories" in out
    assert "Verdict (inputs): DRIFT in" in out
    assert "Verdict (predictions):" in out
    assert "2,400 rows against 3,000 reference rows" in out


def test_drift_json_for_programs(fraud: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "drift", "fraud", "--json", "--feature", "score")
    assert code == 0, err
    result = json.loads(out)
    assert (result["model"], result["version"], result["parts"]) == ("fraud", "1", 6)
    inputs = result["inputs"]
    assert inputs["drifted"] is True
    assert [row["feature"] for row in inputs["features"]] == ["score"]
    assert inputs["features"][0]["drifted"] is True
    assert inputs["n_window"] == 2400
    assert {row["feature"] for row in result["predictions"]["features"]} >= {"predict"}


def test_the_window_takes_the_parts_written_in_it(
    fraud: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    for window, parts in (("7h", 6), ("3h", 3), ("90m", 1)):
        code, out, err = run(capsys, "drift", "fraud", "--window", window, "--json")
        assert code == 0, err
        result = json.loads(out)
        assert (result["parts"], result["inputs"]["n_window"]) == (parts, 400 * parts)


def test_a_threshold_given_per_feature_replaces_the_calibrated_one(
    fraud: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "drift", "fraud", "--json", "--threshold", "score=0.99")
    assert code == 0, err
    score = next(r for r in json.loads(out)["inputs"]["features"] if r["feature"] == "score")
    assert score["threshold"] == 0.99
    assert score["drifted"] is False


def test_no_reference_profile_says_how_to_record_one(
    tabular: tuple[pd.DataFrame, np.ndarray], capsys: pytest.CaptureFixture[str]
) -> None:
    frame, target = tabular
    seaway.log_model(LogisticRegression().fit(frame, target), "plain", sample_input=frame.head())
    code, _, err = run(capsys, "drift", "plain")
    assert code == 1
    assert err.startswith("Error: model 'plain' version 1 has no reference profile")
    assert "reference_data=" in err
    assert len(err.strip().splitlines()) == 1


def test_no_data_in_the_window_says_how_to_log_some(
    fraud: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "drift", "fraud", "--window", "30m")
    assert code == 1
    assert "nothing was logged for model 'fraud' version 1" in err
    assert "--log-sample" in err
    code, _, err = run(capsys, "report", "fraud", "--window", "30m", "--out", "r.html")
    assert code == 1 and "--log-sample" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--feature", "nope"], "the reference profile has no feature 'nope'"),
        (["--window", "soon"], "--window 'soon' is not a duration"),
        (["--threshold", "score"], "must look like KEY=VALUE"),
        (["--threshold", "score=high"], "--threshold score=high: the threshold must be a number"),
        (["--version", "9"], "9"),
    ],
)
def test_bad_options_are_one_clear_error(
    fraud: Pipeline, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, _, err = run(capsys, "drift", "fraud", *args)
    assert code in (1, 2)
    assert message in err


def test_report_is_one_offline_file_with_a_chart_per_feature(
    fraud: Pipeline, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.html"
    code, said, err = run(capsys, "report", "fraud", "--window", "24h", "--out", str(out))
    assert code == 0, err
    assert said.startswith(f"Wrote {out}")
    html = out.read_text("utf-8")
    assert HOSTILE not in html and NEW_CITY not in html
    with open_offline(out) as visit:
        page = visit.page
        cards = page.locator("div.card.feature")
        shown = {}
        for index in range(cards.count()):
            card = cards.nth(index)
            name = card.get_attribute("data-feature")
            charts = card.locator("svg.chart")
            box = charts.first.bounding_box()
            shown[name] = (charts.count(), box is not None and box["width"] > 100)
        inputs = {name: (1, True) for name in FEATURES}
        predictions = {
            "predict": (1, True),
            "predict_proba.0": (1, True),
            "predict_proba.1": (1, True),
        }
        assert shown == {**inputs, **predictions}
        assert page.evaluate("() => window.pwned") is None  # no hostile name ran
        assert page.locator("#over-time svg.chart").count() == 2  # drift and performance
        assert page.locator("#multivariate svg.chart").count() == 1
        assert visit.refused == []
        assert visit.requests == [out.resolve().as_uri()]
        assert visit.console_errors == []


def _rest_body(frame: pd.DataFrame) -> dict[str, Any]:
    def tensor(name: str) -> dict[str, Any]:
        column = frame[name]
        if column.dtype.kind in "fi":
            return {
                "name": name,
                "datatype": "FP64",
                "shape": [len(frame)],
                "data": column.astype(float).tolist(),
            }
        return {"name": name, "datatype": "BYTES", "shape": [len(frame)], "data": column.tolist()}

    return {"inputs": [tensor(name) for name in frame.columns]}


def _cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_HOME": str(home), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )


def test_served_traffic_logged_by_the_server_drifts(
    seaway_home: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """serve --log-sample 1.0, shifted requests, a clean stop (the log flushes), then the drift
    table as a user pipes it, in 80 columns."""
    rng = np.random.default_rng(3)
    reference = data(rng, 3000).drop(columns=[HOSTILE])
    target = (reference["score"] > 0).astype(int).to_numpy()
    prepare = ColumnTransformer(
        [("num", StandardScaler(), ["age", "income", "score"]),
         ("cat", OneHotEncoder(handle_unknown="ignore"), ["city"])]
    )  # fmt: skip
    model = make_pipeline(prepare, LogisticRegression()).fit(reference, target)
    seaway.log_model(model, "fraud", sample_input=reference.head(), reference_data=reference)
    server = start_server(
        ["models:/fraud/1", "--log-sample", "1.0"], seaway_home, tmp_path / "server.log"
    )
    stop: Callable[[], Any] = lambda: server.stop(signal.SIGKILL)  # noqa: E731
    request.addfinalizer(stop)
    shifted = data(rng, 600, shift=1.5).drop(columns=[HOSTILE])
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for start in range(0, len(shifted), 50):
            answer = client.post(
                "/v2/models/fraud/infer", json=_rest_body(shifted.iloc[start : start + 50])
            )
            assert answer.status_code == 200, answer.text
    assert server.stop(signal.SIGTERM) == 0, server.output()
    done = _cli(seaway_home, "monitor", "drift", "fraud", "--window", "1h")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, done.stdout
    score = next(line.split() for line in lines if line.startswith("score "))
    assert score[-1] == "yes"
    assert "600 rows against 3,000 reference rows" in done.stdout
