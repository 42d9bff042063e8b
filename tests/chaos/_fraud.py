"""Two registered versions of one model whose answers tell them apart (chaos tests' traffic)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

import seaway


class TwoVersions:
    """fraud/1 and fraud/2 predict opposite classes, so each answer says which version gave it;
    the alias ``production`` points at version 1."""

    def __init__(self, frame: pd.DataFrame, target: np.ndarray) -> None:
        self.frame = frame
        self.models = {
            "1": LogisticRegression().fit(frame, target),
            "2": LogisticRegression().fit(frame, 1 - target),
        }
        with seaway.Registry.from_settings() as registry:
            for model in self.models.values():
                seaway.log_model(model, "fraud", sample_input=frame.head(10), registry=registry)
            registry.set_alias("fraud", "production", 1)

    def body(self, seed: int) -> dict[str, Any]:
        rng = np.random.default_rng(seed)
        rows = self.frame.iloc[rng.integers(0, len(self.frame), size=int(rng.integers(1, 5)))]
        return {
            "inputs": [
                {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
                for c in rows.columns
            ],
            "outputs": [{"name": "predict"}],
        }

    def check(self, body: dict[str, Any], answer: dict[str, Any]) -> bool:
        """The answer is what the version that says it answered predicts for these rows."""
        rows = pd.DataFrame({i["name"]: i["data"] for i in body["inputs"]})
        model = self.models.get(answer.get("model_version", ""))
        return model is not None and answer["outputs"][0]["data"] == model.predict(rows).tolist()
