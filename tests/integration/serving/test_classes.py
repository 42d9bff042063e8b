"""A classifier's class labels, from ``log_model`` to every place that names them: the V2
metadata, ``/invocations`` with ``params.method``, ``seaway predict --proba``, ``models show``
and batch output. A package written before classes were recorded still loads and serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from servers import Server
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.batch import BatchOptions, run_job
from seaway.packaging.manifest import MANIFEST_NAME
from seaway.runtime.model import load_package

FEATURES = ["age", "income"]


def _train() -> tuple[LogisticRegression, pd.DataFrame]:
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(rng.normal(size=(200, 2)), columns=FEATURES)
    labels = np.where(frame["age"] > 0.3, "high", np.where(frame["age"] < -0.3, "low", "mid"))
    return LogisticRegression().fit(frame, labels), frame


def _seaway(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seaway", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.slow
def test_classes_are_recorded_and_named_everywhere(
    serve: Callable[..., Server], seaway_home: Path, tmp_path: Path
) -> None:
    model, frame = _train()
    rows = frame.head(5)
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(model, "tier", sample_input=frame.head(10), registry=registry)
        assert registry.get_version("tier", 1).signature.classes == ("high", "low", "mid")
    server = serve("models:/tier/1")

    # the V2 metadata says which probability column is which class
    meta = httpx.get(f"{server.url}/v2/models/tier").json()
    by_name = {output["name"]: output for output in meta["outputs"]}
    assert by_name["predict_proba"]["parameters"] == {"classes": ["high", "low", "mid"]}
    assert "parameters" not in meta["inputs"][0]
    # and so does the model's request schema in the OpenAPI description
    spec = httpx.get(f"{server.url}/openapi.json").json()
    [request] = [v for k, v in spec["components"]["schemas"].items() if k.startswith("tier.")]
    assert request["x-classes"] == ["high", "low", "mid"]
    assert "['high', 'low', 'mid']" in request["description"]

    # /invocations: params.method asks for predict_proba; predict is the default
    split = {"columns": FEATURES, "data": rows.to_numpy().tolist()}
    proba = httpx.post(
        f"{server.url}/invocations",
        json={"dataframe_split": split, "params": {"method": "predict_proba"}},
    )
    assert proba.status_code == 200, proba.text
    np.testing.assert_allclose(proba.json()["predictions"], model.predict_proba(rows), rtol=1e-6)
    labels = httpx.post(
        f"{server.url}/invocations",
        json={"dataframe_split": split, "params": {"method": "predict"}},
    )
    assert labels.json() == {"predictions": model.predict(rows).tolist()}
    refused = httpx.post(
        f"{server.url}/invocations", json={"dataframe_split": split, "params": {"top_k": 2}}
    )
    assert refused.status_code == 400
    assert refused.json()["message"] == (
        "unknown param(s) ['top_k']; /invocations takes only \"method\" (predict or predict_proba)"
    )

    # seaway predict --proba: "classes" says which column is which
    data = tmp_path / "rows.json"
    rows.to_json(data, orient="records")
    done = _seaway(
        "predict", "tier", "--data", str(data), "--proba", env={"SEAWAY_URL": server.url}
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["classes"] == ["high", "low", "mid"]
    np.testing.assert_allclose(answer["predictions"], model.predict_proba(rows), rtol=1e-6)

    # models show
    shown = _seaway("models", "show", "tier/1")
    assert shown.returncode == 0, shown.stderr
    assert "high, low, mid (predict_proba columns, in this order)" in shown.stdout

    # batch: one probability column per class, named by it
    rows.to_parquet(tmp_path / "in.parquet", index=False)
    with seaway.Registry.from_settings() as registry:
        run_job(
            registry,
            BatchOptions(
                "models:/tier/1", str(tmp_path / "in.parquet"), str(tmp_path / "out"), proba=True
            ),
        )
    out = pd.concat(pd.read_parquet(p) for p in sorted((tmp_path / "out").glob("part-*.parquet")))
    columns = ["predict_proba_high", "predict_proba_low", "predict_proba_mid"]
    assert [c for c in out.columns if c.startswith("predict_proba")] == columns
    np.testing.assert_allclose(out[columns].to_numpy(), model.predict_proba(rows), rtol=1e-6)


def _old_package(folder: Path) -> tuple[LogisticRegression, pd.DataFrame]:
    """A package as Seaway wrote it before classes and missing values were recorded."""
    model, frame = _train()
    seaway.save_model(model, folder, sample_input=frame.head(10))
    manifest_path = folder / MANIFEST_NAME
    manifest = json.loads(manifest_path.read_text())
    signature = manifest["signature"]
    assert signature.pop("classes") == ["high", "low", "mid"]
    for spec in signature["inputs"]:
        assert spec.pop("allows_missing") is False
    manifest_path.write_text(json.dumps(manifest))
    return model, frame


def test_a_package_without_recorded_classes_loads_as_before(tmp_path: Path) -> None:
    model, frame = _old_package(tmp_path / "old")
    loaded = load_package(tmp_path / "old")
    assert loaded.signature is not None and loaded.signature.classes is None
    rows = frame.head(4)
    assert loaded.predict(rows).tolist() == model.predict(rows).tolist()
    # the old rule for missing values: NaN in float inputs goes to the model
    assert all(spec.allows_missing is None for spec in loaded.signature.inputs)


@pytest.mark.slow
def test_a_package_without_recorded_classes_serves(
    serve: Callable[..., Server], tmp_path: Path
) -> None:
    model, frame = _old_package(tmp_path / "old")
    server = serve(str(tmp_path / "old"))
    meta = httpx.get(f"{server.url}/v2/models/old").json()
    assert all("parameters" not in output for output in meta["outputs"])
    rows = frame.head(3)
    split = {"columns": FEATURES, "data": rows.to_numpy().tolist()}
    answer = httpx.post(
        f"{server.url}/invocations",
        json={"dataframe_split": split, "params": {"method": "predict_proba"}},
    )
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(answer.json()["predictions"], model.predict_proba(rows), rtol=1e-6)
    with seaway.Client(server.url) as client:
        assert client.classes("old") is None
        assert (
            client.predict("old", rows.to_dict("records")).tolist() == model.predict(rows).tolist()
        )
