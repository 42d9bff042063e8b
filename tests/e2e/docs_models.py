"""The fraud model the docs-examples pages talk about, shared by the test's page setups and by the
snippets of docs/serving.md that use ``model`` and ``X`` (their ``_page.py`` imports it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder


def transactions(rows: int = 400, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """docs/serving.md's fraud columns: FP64 amounts beside INT64 hours, text, INT64 ages."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "amount": rng.gamma(2.0, 60.0, rows).round(2),
            "hour": rng.integers(0, 24, rows),
            "country": rng.choice(["JP", "PE", "NO", "US"], rows),
            "card_age_days": rng.integers(1, 3000, rows),
        }
    )
    target = ((frame["amount"] > 150) | (frame["hour"] < 5)).astype(np.int64).to_numpy()
    return frame, target


def fraud_model(frame: pd.DataFrame, target: np.ndarray) -> Pipeline:
    prep = ColumnTransformer(
        [("country", OneHotEncoder(handle_unknown="ignore"), ["country"])],
        remainder="passthrough",
    )
    model = Pipeline([("prep", prep), ("clf", LogisticRegression(max_iter=2000))])
    return model.fit(frame, target)
