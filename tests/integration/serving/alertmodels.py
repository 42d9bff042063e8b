"""A model for the alert tests, packaged with ``code_paths=[this file]``: it sums each row, and
raises on a row whose first value is negative (the server answers 400: the model failed on this
input), so a test decides which requests fail."""

from __future__ import annotations

from typing import Any

import numpy as np

import seaway


class Picky(seaway.PythonModel):
    def predict(self, inputs: Any) -> Any:
        rows = np.asarray(inputs, dtype=np.float64)
        if (rows[:, 0] < 0).any():
            raise ValueError("negative first value")
        return rows.sum(axis=1)


def save(folder: Any) -> None:
    seaway.save_model(Picky(), folder, sample_input=np.zeros((1, 2)), code_paths=[__file__])


def body(value: float) -> dict[str, Any]:
    return {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP64", "data": [value, 1]}]}
