"""Shared vocabulary: tensor datatypes (the Open Inference Protocol's names) and their numpy twins.

Signatures, codecs and the serving layer all speak these names, so a signature written by the
packager can be served over V2 without translation.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import numpy as np


class Datatype(StrEnum):
    BOOL = "BOOL"
    UINT8 = "UINT8"
    UINT16 = "UINT16"
    UINT32 = "UINT32"
    UINT64 = "UINT64"
    INT8 = "INT8"
    INT16 = "INT16"
    INT32 = "INT32"
    INT64 = "INT64"
    FP16 = "FP16"
    FP32 = "FP32"
    FP64 = "FP64"
    BYTES = "BYTES"

    @property
    def numpy_dtype(self) -> np.dtype[Any]:
        return _NUMPY_DTYPES[self]

    @property
    def itemsize(self) -> int | None:
        """Bytes per element, ``None`` for variable-length BYTES."""
        return None if self is Datatype.BYTES else self.numpy_dtype.itemsize

    @classmethod
    def from_numpy(cls, dtype: Any) -> Datatype:
        """Map a numpy or pandas dtype; strings, objects and categories become BYTES."""
        known = _FROM_DTYPE.get(dtype) if isinstance(dtype, np.dtype) else None
        if known is not None:  # the hot path: every output of every request
            return known
        try:
            np_dtype = np.dtype(dtype)
        except TypeError:
            # pandas extension dtypes (string, category, nullable ints) expose a numpy twin
            np_dtype = np.dtype(getattr(dtype, "numpy_dtype", object))
        if np_dtype.kind in "OUSV":
            return cls.BYTES
        try:
            return _FROM_NUMPY[np_dtype.str.lstrip("<>=|")]
        except KeyError as exc:
            raise TypeError(
                f"numpy dtype {np_dtype} has no Open Inference Protocol datatype"
            ) from exc


_TO_NUMPY: dict[Datatype, str] = {
    Datatype.BOOL: "bool",
    Datatype.UINT8: "uint8",
    Datatype.UINT16: "uint16",
    Datatype.UINT32: "uint32",
    Datatype.UINT64: "uint64",
    Datatype.INT8: "int8",
    Datatype.INT16: "int16",
    Datatype.INT32: "int32",
    Datatype.INT64: "int64",
    Datatype.FP16: "float16",
    Datatype.FP32: "float32",
    Datatype.FP64: "float64",
    Datatype.BYTES: "object",
}
_FROM_NUMPY: dict[str, Datatype] = {
    "b1": Datatype.BOOL,
    "u1": Datatype.UINT8,
    "u2": Datatype.UINT16,
    "u4": Datatype.UINT32,
    "u8": Datatype.UINT64,
    "i1": Datatype.INT8,
    "i2": Datatype.INT16,
    "i4": Datatype.INT32,
    "i8": Datatype.INT64,
    "f2": Datatype.FP16,
    "f4": Datatype.FP32,
    "f8": Datatype.FP64,
}
_NUMPY_DTYPES: dict[Datatype, np.dtype[Any]] = {
    dt: np.dtype(name) for dt, name in _TO_NUMPY.items()
}
#: native-order numpy dtypes of every datatype but BYTES (whose numpy twin, object, is not unique)
_FROM_DTYPE: dict[np.dtype[Any], Datatype] = {
    np.dtype(name): dt for dt, name in _TO_NUMPY.items() if dt is not Datatype.BYTES
}


class JobStatus(StrEnum):
    """A batch job's life: shared by the registry, the CLI and (later) the UI.

    ``running`` with no heartbeat for a while reads as ``interrupted`` (the process died); rerun
    it with ``--resume``, which continues from its last committed chunk.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


class RolloutPhase(StrEnum):
    """Where a progressive rollout stands: shared by routing, the registry's JSON, the CLI and API.

    ``progressing`` and ``paused`` are live; the other three are terminal (nothing advances them).
    """

    PROGRESSING = "progressing"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    ROLLED_BACK = "rolled_back"
    ABORTED = "aborted"


class RolloutAction(StrEnum):
    """What one rollout decision did: the decision log's vocabulary (controller's and people's)."""

    ADVANCE = "advance"
    HOLD = "hold"
    ROLLBACK = "rollback"
    COMPLETE = "complete"
    PAUSE = "pause"
    RESUME = "resume"
    PROMOTE = "promote"
    ABORT = "abort"
    START = "start"


class GateVerdict(StrEnum):
    """One analysis gate's outcome; ``insufficient_data`` holds a rollout, never moves it."""

    PASS = "pass"
    FAIL = "fail"
    INSUFFICIENT = "insufficient_data"
