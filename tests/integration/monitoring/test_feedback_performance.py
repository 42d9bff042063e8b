"""Feedback under a real ``seaway serve``: predictions logged (with probabilities, for a model
logged with reference labels), labels posted over REST and with ``seaway.Client``, then
``seaway monitor performance`` shows scikit-learn's accuracy on those labels and ``seaway monitor
export`` the inputs with their labels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.monitoring import logstore

sys.path.insert(0, str(Path(__file__).parents[1] / "serving"))

from servers import Server, start_server


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEAWAY_HOME": str(home), "COLUMNS": "80"}
    done = subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done


@pytest.fixture
def churn(seaway_home: Path) -> tuple[LogisticRegression, pd.DataFrame, np.ndarray]:
    """models:/churn/1, logged with reference data and labels (so it has a calibration), and
    160 live rows with their true labels."""
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(rng.normal(size=(600, 3)), columns=["age", "visits", "spend"])
    target = np.where(frame["age"] - frame["visits"] + rng.normal(size=600) > 0, "stays", "leaves")
    model = LogisticRegression().fit(frame[:400], target[:400])
    seaway.log_model(
        model,
        "churn",
        sample_input=frame.head(5),
        reference_data=frame[:400],
        reference_labels=target[:400],
    )
    return model, frame[400:560].reset_index(drop=True), target[400:560]


@pytest.fixture
def server(seaway_home: Path, tmp_path: Path) -> Iterator[Server]:
    started = start_server(
        ["models:/churn/1", "--log-sample", "1.0"], seaway_home, tmp_path / "server.log"
    )
    yield started
    started.stop(signal.SIGKILL)


def test_feedback_over_rest_and_client_gives_sklearn_accuracy(
    churn, server: Server, seaway_home: Path, tmp_path: Path
) -> None:
    model, live, truth = churn
    ids = []
    with seaway.Client(server.url) as client:
        for start in range(0, len(live), 4):  # 40 requests of 4 rows
            answer = client.predict("churn", live.iloc[start : start + 4])
            assert answer.shape == (4,)
            assert client.last_request_id is not None
            ids.append(client.last_request_id)
        given = client.predict("churn", live.iloc[:1], request_id="mine-1")
        assert client.last_request_id == "mine-1" and given.shape == (1,)
        # half the labels with the client, one request at a time
        for n, rid in enumerate(ids[:20]):
            assert client.feedback("churn", rid, truth[n * 4 : n * 4 + 4]) == 4
    # the other half over plain REST, as items, on the versioned route
    items = [
        {"request_id": rid, "row": row, "label": str(truth[(20 + n) * 4 + row])}
        for n, rid in enumerate(ids[20:])
        for row in range(4)
    ]
    answer = httpx.post(f"{server.url}/v2/models/churn/versions/1/feedback", json={"items": items})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"model_name": "churn", "accepted": 80}
    bad = httpx.post(f"{server.url}/v2/models/churn/feedback", json={"labels": [1]})
    assert bad.status_code == 400 and "request_id" in bad.json()["error"]
    assert httpx.post(f"{server.url}/v2/models/nope/feedback", json={}).status_code == 404
    assert server.stop(signal.SIGTERM) == 0, server.output()  # a clean stop flushes the log

    logged = logstore.read_log("churn")
    assert len(logged) == len(live) + 1
    # the model has a calibration: its logged requests carry their probabilities too
    assert {"output.predict_proba.leaves", "output.predict_proba.stays"} <= set(logged.columns)

    done = _cli("monitor", "performance", "churn", "--window", "1d", "--json", home=seaway_home)
    [result] = json.loads(done.stdout)["results"]
    predicted = model.predict(live)
    assert result["labelled"] == len(live)
    realised = result["realised"]
    assert realised["accuracy"]["value"] == pytest.approx(skm.accuracy_score(truth, predicted))
    assert realised["f1"]["value"] == pytest.approx(
        skm.f1_score(truth, predicted, pos_label="stays")
    )
    proba = model.predict_proba(live)[:, 1]
    assert realised["roc_auc"]["value"] == pytest.approx(skm.roc_auc_score(truth == "stays", proba))
    assert result["estimated"]["accuracy"]["value"] is not None
    table = _cli("monitor", "performance", "churn", "--window", "1d", home=seaway_home).stdout
    assert "accuracy" in table and max(map(len, table.splitlines())) <= 80

    out = tmp_path / "data.parquet"
    _cli("monitor", "export", "churn", "--with-feedback", "--out", str(out), home=seaway_home)
    data = pd.read_parquet(out)
    assert len(data) == len(live)  # "mine-1" has no label
    assert {"input.age", "input.visits", "input.spend", "label"} <= set(data.columns)
    by_id = data.set_index(["request_id", "row"])["label"]
    assert by_id[(ids[0], 2)] == truth[2] and by_id[(ids[39], 3)] == truth[159]


def test_answers_leave_out_the_logged_probabilities_unless_asked(
    churn, server: Server, seaway_home: Path
) -> None:
    _, live, _ = churn
    body = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [2], "data": live[c][:2].tolist()}
            for c in live.columns
        ]
    }
    plain = httpx.post(f"{server.url}/v2/models/churn/infer", json=body).json()
    assert [o["name"] for o in plain["outputs"]] == ["predict"]
    both = httpx.post(
        f"{server.url}/v2/models/churn/infer",
        json={**body, "outputs": [{"name": "predict_proba"}]},
    ).json()
    assert [o["name"] for o in both["outputs"]] == ["predict_proba"]
    mlflow = httpx.post(
        f"{server.url}/invocations", json={"dataframe_records": live[:2].to_dict("records")}
    ).json()
    assert len(mlflow["predictions"]) == 2 and not isinstance(mlflow["predictions"][0], list)
    assert server.stop(signal.SIGTERM) == 0
    logged = logstore.read_log("churn")
    assert len(logged) == 6
    assert logged["output.predict_proba.stays"].notna().all()
