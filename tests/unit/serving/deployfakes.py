"""A served version for deployment tests: answers in process, fails or waits on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from seaway.errors import InvalidInputError, PredictionError
from seaway.protocol.types import InferRequest, ModelMetadata, Tensor, TensorMetadata
from seaway.types import Datatype


class _Options:
    timeout = None


class FakeVersion:
    """Version ``version`` of model ``name``: answers ``answer`` for every row (``predict``),
    or raises PredictionError when ``fails``, or waits for ``gate`` when one is given."""

    def __init__(
        self,
        version: str,
        *,
        name: str = "fraud",
        answer: Any = None,
        fails: bool = False,
        gate: asyncio.Event | None = None,
        signature: Any = None,
    ) -> None:
        self.name = name
        self.version = version
        self.answer = int(version) if answer is None else answer
        self.fails = fails
        self.gate = gate
        self.signature = signature
        self.logger = None
        self.log_proba = False
        self.ready = True
        self.refusing = False
        self.unready_reason = ""
        self.options = _Options
        #: rows of each call, in order
        self.calls: list[int] = []
        self.stopped = False

    def native_inputs(self, tensors: Sequence[Tensor]) -> tuple[Any, int]:
        data = tensors[0].data
        return data, len(data)

    def native_data(self, data: Any) -> tuple[Any, int]:
        array = np.asarray(data)
        return array, len(array)

    def requested_outputs(self, requested: Sequence[str]) -> list[str]:
        unknown = [name for name in requested if name != "predict"]
        if unknown:
            raise InvalidInputError(f"unknown output(s) {unknown}")
        return ["predict"]

    def outputs_for_method(self, method: str) -> list[str]:
        return ["predict"]

    async def predict(
        self, native: Any, rows: int, outputs: Sequence[str], timeout: Any
    ) -> dict[str, np.ndarray[Any, Any]]:
        self.calls.append(rows)
        if self.gate is not None:
            await self.gate.wait()
        if self.fails:
            raise PredictionError(f"version {self.version} fails")
        return {"predict": np.full(rows, self.answer)}

    def metadata(self) -> ModelMetadata:
        inputs = (TensorMetadata("x", Datatype.FP64, (-1, 2)),)
        outputs = (TensorMetadata("predict", Datatype.INT64, (-1,)),)
        return ModelMetadata(self.name, (self.version,), "fake", inputs, outputs)

    async def stop(self, drain: bool = True) -> None:
        self.stopped = True


def request(
    name: str = "fraud-prod",
    rows: int = 1,
    *,
    version: str | None = None,
    rid: str | None = None,
    extra: Sequence[Tensor] = (),
) -> InferRequest:
    """A V2 request of ``rows`` rows of two numbers (and ``extra`` tensors)."""
    data = np.ones((rows, 2))
    tensors = (Tensor("x", Datatype.FP64, data.shape, data), *extra)
    return InferRequest(model_name=name, model_version=version, id=rid, inputs=tensors)
