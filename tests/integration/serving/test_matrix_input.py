"""A single 2-D tensor [rows, columns] for a model whose columns mix FP64 and INT64 (docs/serving.md:
each column is cast to its own datatype where no value changes, else refused by name)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from servers import Server
from sklearn.linear_model import LogisticRegression

import seaway


def test_one_fp64_matrix_serves_a_model_with_int64_columns(
    serve: Callable[..., Server], seaway_home: Path
) -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {"amount": rng.normal(100, 30, 80), "hour": rng.integers(0, 24, 80).astype(np.int64)}
    )
    model = LogisticRegression().fit(frame, (frame["amount"] > 100).astype(np.int64))
    with seaway.Registry.from_settings() as registry:
        seaway.log_model(model, "mixed", sample_input=frame.head(5), registry=registry)
    server = serve("models:/mixed/1")

    def infer(rows: list[list[float]]) -> httpx.Response:
        tensor = {"name": "x", "shape": [len(rows), 2], "datatype": "FP64", "data": rows}
        return httpx.post(
            f"{server.url}/v2/models/mixed/infer", json={"inputs": [tensor]}, timeout=30
        )

    answer = infer([[66.4, 19.0], [310.0, 3.0]])
    assert answer.status_code == 200, answer.text
    expected = model.predict(pd.DataFrame({"amount": [66.4, 310.0], "hour": [19, 3]}))
    assert answer.json()["outputs"][0]["data"] == expected.tolist()

    refused = infer([[66.4, 19.5]])
    assert refused.status_code == 400
    assert "column 'hour'" in refused.json()["error"] and "19.5" in refused.json()["error"]
