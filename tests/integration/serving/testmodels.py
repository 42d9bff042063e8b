"""Python-function models for serving tests, packaged with ``code_paths=[this file]``.

They live in their own module so that a replica process can import them from the package's code
folder (a class defined in a test module could not be imported there).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
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


class Echo(seaway.PythonModel):
    """Returns every named input unchanged: a round trip for each Open Inference datatype."""

    def predict(self, inputs: Any) -> Any:
        return {name: np.asarray(value) for name, value in inputs.items()}


#: One tensor per V2 datatype, two rows of three: the Echo model's sample input.
ECHO_SAMPLE: dict[str, np.ndarray] = {
    "bool": np.array([[True, False, True], [False, True, False]]),
    "int8": np.array([[-128, 0, 127], [1, 2, 3]], dtype=np.int8),
    "int16": np.array([[-32768, 0, 32767], [1, 2, 3]], dtype=np.int16),
    "int32": np.array([[-(2**31), 0, 2**31 - 1], [1, 2, 3]], dtype=np.int32),
    "int64": np.array([[-(2**63), 0, 2**63 - 1], [1, 2, 3]], dtype=np.int64),
    "uint8": np.array([[0, 1, 255], [1, 2, 3]], dtype=np.uint8),
    "uint16": np.array([[0, 1, 65535], [1, 2, 3]], dtype=np.uint16),
    "uint32": np.array([[0, 1, 2**32 - 1], [1, 2, 3]], dtype=np.uint32),
    "uint64": np.array([[0, 1, 2**64 - 1], [1, 2, 3]], dtype=np.uint64),
    "fp16": np.array([[-1.5, 0.0, 65504.0], [0.25, 2.0, 3.0]], dtype=np.float16),
    "fp32": np.array([[-1.5, 0.0, 3.4e38], [0.25, 2.0, 3.0]], dtype=np.float32),
    "fp64": np.array([[-1.5, 0.0, 1.7e308], [0.25, 2.0, 3.0]], dtype=np.float64),
    "text": np.array([["a", "héllo", ""], ["x", "y", "z"]], dtype=object),
}


def save_echo(folder: Any) -> None:
    seaway.save_model(Echo(), folder, sample_input=ECHO_SAMPLE, code_paths=[__file__])


def negate(x: Any) -> Any:
    """A custom function: a pipeline using it needs trusted=True to load."""
    return -x


class SleepFor(seaway.PythonModel):
    """Sums each row, after sleeping as many seconds as the batch's first value (when positive).

    The request decides how slow the call is, so one server can answer fast and hang on demand.
    A negative first value makes it answer complex numbers, which no Open Inference datatype
    holds: a model bug the server only finds while encoding the answer.
    """

    def predict(self, inputs: Any) -> Any:
        array = np.asarray(inputs, dtype=np.float64)
        first = float(array.ravel()[0]) if array.size else 0.0
        if first > 0:
            time.sleep(first)
        if first < 0:
            return array.sum(axis=1) * 1j
        return array.sum(axis=1)


def save_sleep_for(folder: Any, **kwargs: Any) -> None:
    """A SleepFor package taking [rows, 2] float64; its sample input does not sleep."""
    seaway.save_model(
        SleepFor(), folder, sample_input=np.zeros((1, 2)), code_paths=[__file__], **kwargs
    )


class SlowLoad(seaway.PythonModel):
    """Takes SEAWAY_TEST_LOAD_SLEEP seconds (default 3) to load, then sums each row.

    With SEAWAY_TEST_GATE naming a folder, loading waits for ``open`` there instead (it creates
    ``entered`` first): a test decides when loading ends, whatever the machine's speed.
    """

    def load(self, context: seaway.ModelContext) -> None:
        folder = os.environ.get("SEAWAY_TEST_GATE")
        if folder:
            _wait_at_gate(Path(folder))
        else:
            time.sleep(float(os.environ.get("SEAWAY_TEST_LOAD_SLEEP", "3")))

    def predict(self, inputs: Any) -> Any:
        return np.asarray(inputs).sum(axis=1)


class ByteLengths(seaway.PythonModel):
    """Takes raw bytes (a BYTES input that is not text) and answers each value's length."""

    def predict(self, inputs: Any) -> Any:
        values = np.asarray(inputs).ravel()
        assert all(isinstance(v, bytes) for v in values), [type(v) for v in values]
        return np.array([len(v) for v in values], dtype=np.int64)


def save_byte_lengths(folder: Any) -> None:
    sample = np.array([b"\x89PNG\r\n", b"\xff\xfe\x00"], dtype=object)
    seaway.save_model(ByteLengths(), folder, sample_input=sample, code_paths=[__file__])


class CountingClassifier(seaway.PythonModel):
    """A classifier (it has predict_proba) that appends the name of every method called to the
    file SEAWAY_TEST_CALLS, when set: tests count the model calls a request costs."""

    def predict(self, inputs: Any) -> Any:
        _note_call("predict")
        return (np.asarray(inputs, dtype=np.float64).sum(axis=1) > 0).astype(np.int64)

    def predict_proba(self, inputs: Any) -> Any:
        _note_call("predict_proba")
        positive = 1.0 / (1.0 + np.exp(-np.asarray(inputs, dtype=np.float64).sum(axis=1)))
        return np.stack([1.0 - positive, positive], axis=1)


def _note_call(method: str) -> None:
    path = os.environ.get("SEAWAY_TEST_CALLS")
    if path:
        with open(path, "a") as handle:
            handle.write(method + "\n")


def save_counting_classifier(folder: Any) -> None:
    """A CountingClassifier package taking [rows, 2] float64."""
    seaway.save_model(
        CountingClassifier(), folder, sample_input=np.zeros((1, 2)), code_paths=[__file__]
    )


class Gated(SleepFor):
    """A SleepFor whose batches holding a row with a negative first value wait at a gate.

    With SEAWAY_TEST_GATE naming a folder, such a call creates ``entered`` there, waits until
    ``open`` exists, and answers the rows' sums: a test holds the replica busy while it queues
    requests, and knows when it is (no sleep stands in for it). Without the variable, and for
    other batches (the warm-up's too), it is a SleepFor.
    """

    def predict(self, inputs: Any) -> Any:
        array = np.asarray(inputs, dtype=np.float64)
        folder = os.environ.get("SEAWAY_TEST_GATE")
        if not folder or not array.size or not (array[:, 0] < 0).any():
            return super().predict(inputs)
        _wait_at_gate(Path(folder))
        return array.sum(axis=1)


def _wait_at_gate(gate: Path) -> None:
    """Create ``entered`` in ``gate``, then wait until ``open`` exists there."""
    (gate / "entered").touch()
    deadline = time.monotonic() + 300  # a test that never opens it fails, not hangs
    while not (gate / "open").exists() and time.monotonic() < deadline:
        time.sleep(0.01)


def save_gated(folder: Any, columns: int = 2) -> None:
    """A Gated package taking [rows, columns] float64; its sample input does not sleep."""
    seaway.save_model(Gated(), folder, sample_input=np.zeros((1, columns)), code_paths=[__file__])
