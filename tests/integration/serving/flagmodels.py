"""Python-function models whose behaviour a test switches from outside, through a file.

Packaged with ``code_paths=[this file]`` so that replica processes can import them. The file's
path comes in the ``SEAWAY_TEST_FLAG`` environment variable, which replicas inherit from the
server.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np

import seaway


def _flagged() -> bool:
    flag = os.environ.get("SEAWAY_TEST_FLAG")
    return bool(flag) and Path(flag).exists()


class FailLoadOnFlag(seaway.PythonModel):
    """Sums each row; refuses to load while the flag file exists (restarts fail meanwhile).
    A batch whose first value is negative kills the replica process (a crash on demand)."""

    def load(self, context: seaway.ModelContext) -> None:
        if _flagged():
            raise RuntimeError("the flag file says: do not load")

    def predict(self, inputs: Any) -> Any:
        array = np.asarray(inputs, dtype=np.float64)
        if array.size and array.ravel()[0] < 0:
            os._exit(1)
        return array.sum(axis=1)


class HoldLoadOnFlag(FailLoadOnFlag):
    """As ``FailLoadOnFlag``, but a load waits while the flag file exists (a slow restart that
    will succeed) instead of failing."""

    def load(self, context: seaway.ModelContext) -> None:
        while _flagged():
            time.sleep(0.02)


def save_hold_load_on_flag(folder: Any) -> None:
    seaway.save_model(
        HoldLoadOnFlag(), folder, sample_input=np.zeros((1, 2)), code_paths=[__file__]
    )


def save_fail_load_on_flag(folder: Any) -> None:
    seaway.save_model(
        FailLoadOnFlag(), folder, sample_input=np.zeros((1, 2)), code_paths=[__file__]
    )
