"""Models for batch tests, packaged with ``code_paths=[this file]`` so worker processes import them."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import numpy as np
import pandas as pd

import seaway


class SlowSum(seaway.PythonModel):
    """Adds columns a and b, after sleeping SEAWAY_TEST_SLEEP seconds (default 0) per call."""

    def predict(self, inputs: Any) -> Any:
        time.sleep(float(os.environ.get("SEAWAY_TEST_SLEEP", "0")))
        return (inputs["a"] + inputs["b"]).to_numpy()


def register_slow_sum(registry: seaway.Registry, name: str = "sum") -> None:
    sample = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    seaway.log_model(SlowSum(), name, sample_input=sample, code_paths=[__file__], registry=registry)


def frame(rows: int, start: int = 0) -> pd.DataFrame:
    ids = np.arange(start, start + rows)
    return pd.DataFrame({"id": ids, "a": ids * 1.0, "b": ids * 0.5, "note": [f"n{i}" for i in ids]})


class Picky(seaway.PythonModel):
    """Doubles column a, but raises on any negative value: the model, not the data check, fails."""

    def predict(self, inputs: Any) -> Any:
        if (inputs["a"] < 0).any():
            raise ValueError("a must not be negative")
        return inputs["a"].to_numpy() * 2


def register(model: seaway.PythonModel, name: str, registry: seaway.Registry) -> None:
    sample = pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]})
    seaway.log_model(model, name, sample_input=sample, code_paths=[__file__], registry=registry)


def negate(x: Any) -> Any:
    """A custom function: a pipeline using it needs trusted=True to load."""
    return -x


class Stuck(seaway.PythonModel):
    """With SEAWAY_TEST_STUCK set, writes its process id there and never returns: a model hung
    in a call. Without it (its sample check when logged), adds a and b."""

    def predict(self, inputs: Any) -> Any:
        path = os.environ.get("SEAWAY_TEST_STUCK")
        if path is None:
            return (inputs["a"] + inputs["b"]).to_numpy()
        with open(path + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(path + ".tmp", path)
        threading.Event().wait()
        raise AssertionError("unreachable")


class Gated(seaway.PythonModel):
    """With SEAWAY_TEST_GATE set, each call first creates GATE.called, then waits until the file
    GATE exists: a job held running until a test lets it go. Without it, adds a and b."""

    def predict(self, inputs: Any) -> Any:
        gate = os.environ.get("SEAWAY_TEST_GATE")
        if gate is not None:
            open(gate + ".called", "a").close()
            while not os.path.exists(gate):
                time.sleep(0.01)
        return (inputs["a"] + inputs["b"]).to_numpy()


class HoldAfterFirst(seaway.PythonModel):
    """With SEAWAY_TEST_GATE set, the first call in a process answers; every later one first
    creates GATE.called, then waits until the file GATE exists: a job that has committed a chunk
    and is held in the next. Without it, adds a and b."""

    calls = 0

    def predict(self, inputs: Any) -> Any:
        gate = os.environ.get("SEAWAY_TEST_GATE")
        HoldAfterFirst.calls += 1
        if gate is not None and HoldAfterFirst.calls > 1:
            open(gate + ".called", "a").close()
            while not os.path.exists(gate):
                time.sleep(0.01)
        return (inputs["a"] + inputs["b"]).to_numpy()


def wait_for_file(path: str) -> str:
    """Block until ``path`` exists (a pool item held busy until a test lets it go)."""
    while not os.path.exists(path):
        time.sleep(0.01)
    return path
