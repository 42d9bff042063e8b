"""Models to deploy: a few versions of the ``fraud`` classifier (good ones and one that always
answers the same class) and of the ``price`` regressor, with a labelled holdout file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression

import seaway
from seaway.registry import Registry


@pytest.fixture
def fraud(registry: Registry, tabular: tuple[pd.DataFrame, np.ndarray]) -> Registry:
    """``fraud`` versions 1 and 2 (LogisticRegression, good), 3 (always class 0: about half
    right); alias ``production`` -> 1."""
    frame, target = tabular
    for model in (
        LogisticRegression().fit(frame, target),
        LogisticRegression(C=0.5).fit(frame, target),
        DummyClassifier(strategy="constant", constant=0).fit(frame, target),
    ):
        seaway.log_model(model, "fraud", sample_input=frame.head(), registry=registry)
    registry.set_alias("fraud", "production", 1)
    return registry


@pytest.fixture
def holdout(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    """The classifier's rows with their labels in a ``label`` column (Parquet)."""
    frame, target = tabular
    path = tmp_path / "holdout.parquet"
    frame.assign(label=target).to_parquet(path)
    return path


@pytest.fixture
def price(registry: Registry, tabular: tuple[pd.DataFrame, np.ndarray], tmp_path: Path) -> Path:
    """A ``price`` regressor (version 1) and its holdout file (CSV, target ``y``)."""
    frame, _ = tabular
    y = (
        3.0 * frame["age"]
        - frame["income"]
        + 0.1 * np.random.default_rng(3).normal(size=len(frame))
    )
    seaway.log_model(
        LinearRegression().fit(frame, y), "price", sample_input=frame.head(), registry=registry
    )
    path = tmp_path / "price.csv"
    frame.assign(y=y).to_csv(path, index=False)
    return path
