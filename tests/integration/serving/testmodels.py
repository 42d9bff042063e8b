"""Python-function models for serving tests, packaged with ``code_paths=[this file]``.

They live in their own module so that a replica process can import them from the package's code
folder (a class defined in a test module could not be imported there).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

import seaway


class Slow(seaway.PythonModel):
    """Sums each row, after sleeping SEAWAY_TEST_SLEEP seconds (default 1.5) per call."""

    def predict(self, inputs: Any) -> Any:
        time.sleep(float(os.environ.get("SEAWAY_TEST_SLEEP", "1.5")))
        return np.asarray(inputs).sum(axis=1)


def save(model: seaway.PythonModel, folder: Any, columns: int = 2) -> None:
    seaway.save_model(model, folder, sample_input=np.ones((1, columns)), code_paths=[__file__])
