"""Python-function models for the deployment tests, packaged with ``code_paths=[this file]``.

Each answers its sample input (all zeros) at once, so saving and warming never wait or fail;
requests with other values get the behaviour named.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import seaway

COLUMNS = ["age", "income", "score", "tenure"]


def _live(inputs: Any) -> bool:
    """Not the sample (nor its probes for missing values): some value is a number but 0."""
    values = np.asarray(pd.DataFrame(inputs), dtype=np.float64)
    return bool(np.any(np.isfinite(values) & (values != 0)))


class GatedLabels(seaway.PythonModel):
    """Answers label 1 per row, once the file ``open`` exists in the gate folder (its artifact
    ``gate`` names it): a test holds it back as long as it likes, and knows when it let go. It
    writes ``entered`` there first."""

    gate = ""

    def load(self, context: seaway.ModelContext) -> None:
        self.gate = context.artifacts["gate"].read_text()

    def predict(self, inputs: Any) -> Any:
        if self.gate and _live(inputs):
            folder = Path(self.gate)
            (folder / "entered").touch()
            deadline = time.monotonic() + 120  # a test that never opens it fails, not hangs
            while not (folder / "open").exists() and time.monotonic() < deadline:
                time.sleep(0.01)
        return np.ones(len(pd.DataFrame(inputs)), dtype=np.int64)


class Failing(seaway.PythonModel):
    """Raises on every request."""

    def predict(self, inputs: Any) -> Any:
        if _live(inputs):
            raise RuntimeError("this shadow always fails")
        return np.ones(len(pd.DataFrame(inputs)), dtype=np.int64)


def save(model: seaway.PythonModel, folder: Path, gate: Path | None = None) -> Any:
    """``gate``: the folder a GatedLabels waits at."""
    sample = pd.DataFrame(np.zeros((2, len(COLUMNS))), columns=COLUMNS)
    artifacts = {}
    if gate is not None:
        artifacts["gate"] = folder.parent / f"{folder.name}-gate.txt"
        artifacts["gate"].write_text(str(gate))
    return seaway.save_model(
        model, folder, sample_input=sample, code_paths=[__file__], artifacts=artifacts
    )
