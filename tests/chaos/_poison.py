"""A Python-function model for the fault-isolation chaos tests, packaged with ``code_paths=[this
file]`` so that its replicas can import it.

Each request is one row ``[value, id]``; the answer is the row's sum, so every caller can check it
got its own. A value of -1 crashes the replica (``os._exit(1)``), -2 hangs it. Every call sleeps
SEAWAY_TEST_CALL_SLEEP seconds (so that requests queue and merge under load), and each replica
writes its pid into SEAWAY_TEST_PID_DIR when it loads (so a test can kill one from outside).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import seaway

CRASH = -1.0
HANG = -2.0


class Poison(seaway.PythonModel):
    def load(self, context: seaway.ModelContext) -> None:
        folder = os.environ.get("SEAWAY_TEST_PID_DIR")
        if folder:
            (Path(folder) / str(os.getpid())).touch()

    def predict(self, inputs: Any) -> Any:
        rows = np.asarray(inputs, dtype=np.float64)
        if (rows[:, 0] == CRASH).any():
            os._exit(1)
        if (rows[:, 0] == HANG).any():
            time.sleep(3600)
        time.sleep(float(os.environ.get("SEAWAY_TEST_CALL_SLEEP", "0")))
        return rows.sum(axis=1)


def save(folder: Path) -> None:
    seaway.save_model(Poison(), folder, sample_input=np.zeros((1, 2)), code_paths=[__file__])


def body(value: float, ident: int) -> dict[str, Any]:
    return {
        "inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [value, ident]}]
    }


def right(sent: dict[str, Any], answer: dict[str, Any]) -> bool:
    """The answer is the sum of this request's own row."""
    return bool(answer["outputs"][0]["data"] == [sum(sent["inputs"][0]["data"])])
