"""Python-function versions of one model for the deployment server tests, registered with
``code_paths=[this file]`` so that a replica process can import them.

Every version takes ``[rows, 2]`` float64 (V2 input ``input``) and answers a label per row; its
sample input (zeros) is answered at once, so registering and warming never fail. Traffic sends
first values in ``[0, 1)``: the bad versions misbehave only on live rows.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

import seaway

#: FailsAbove raises on any batch holding a first value above this
THRESHOLD = 0.5


#: Slow sleeps this long (seconds) per live call
SLOW_SECONDS = 0.1


def _labels(inputs: Any) -> np.ndarray:
    return (np.asarray(inputs, dtype=np.float64).sum(axis=1) > 1.5).astype(np.int64)


def _live(inputs: Any) -> bool:
    return bool(np.any(np.asarray(inputs, dtype=np.float64) != 0))


class Good(seaway.PythonModel):
    """Label 1 when a row sums above 1.5 (an eighth of the traffic's rows)."""

    def predict(self, inputs: Any) -> Any:
        return _labels(inputs)


class FailsAbove(seaway.PythonModel):
    """Good's answers, but raises when a first value is above ``THRESHOLD`` (about half of the
    traffic's rows): a bad version that errors on a fraction of requests."""

    def predict(self, inputs: Any) -> Any:
        if float(np.asarray(inputs, dtype=np.float64)[:, 0].max(initial=0.0)) > THRESHOLD:
            raise RuntimeError(f"this version fails on values above {THRESHOLD}")
        return _labels(inputs)


class Opposite(seaway.PythonModel):
    """The opposite label of Good's (seven rows in eight labelled 1): its predictions diverge."""

    def predict(self, inputs: Any) -> Any:
        return 1 - _labels(inputs)


class Slow(seaway.PythonModel):
    """Good's answers after ``SLOW_SECONDS`` per call on live rows."""

    def predict(self, inputs: Any) -> Any:
        if _live(inputs):
            time.sleep(SLOW_SECONDS)
        return _labels(inputs)


def register(registry: seaway.Registry, name: str, *models: seaway.PythonModel) -> None:
    """Register ``models`` as the next versions of ``name``, in order."""
    for model in models:
        seaway.log_model(
            model, name, sample_input=np.zeros((1, 2)), code_paths=[__file__], registry=registry
        )


def body(seed: int) -> dict[str, Any]:
    """A one-row request whose first value is uniform in [0, 1), drawn from ``seed``."""
    row = np.random.default_rng(seed).random(2)
    return {
        "inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": row.tolist()}]
    }
