"""A model version being served: its replica pool, its batchers, and tensor conversion.

Conversion happens here, once, for every transport: V2 tensors become the model's native input
through its signature (so REST, gRPC and MLflow requests are validated identically), and outputs
become tensors again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seaway.errors import InvalidInputError
from seaway.packaging.manifest import Manifest
from seaway.packaging.signature import DEFAULT_OUTPUT_NAME, Signature, coerce_array
from seaway.protocol.types import ModelMetadata, Tensor, TensorMetadata
from seaway.runtime.batcher import AdaptiveBatcher
from seaway.runtime.pool import PoolState, ReplicaPool
from seaway.runtime.replica import PREDICT_PROBA, ReplicaSpec
from seaway.types import Datatype

#: Open Inference Protocol platform names by flavor (informational, as in Triton/KServe).
PLATFORMS = {
    "onnx": "onnx_onnxv1",
    "torch": "pytorch_torchscript",
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}


@dataclass(frozen=True)
class ServingOptions:
    replicas: int = 1
    max_batch_size: int = 64
    max_latency_ms: float = 5.0
    max_queue: int = 2048
    timeout: float | None = 30.0
    trusted: bool = False


class ServedModel:
    def __init__(
        self,
        name: str,
        version: str,
        package_path: str,
        manifest: Manifest,
        options: ServingOptions,
        *,
        manifest_sha256: str | None = None,
        on_batch: Callable[[int, int], None] | None = None,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.version = version
        self.manifest = manifest
        self.options = options
        spec = ReplicaSpec(package_path, trusted=options.trusted, manifest_sha256=manifest_sha256)
        self.pool = ReplicaPool(
            spec, options.replicas, timeout=options.timeout, on_restart=on_restart
        )
        self._on_batch = on_batch
        signature = manifest.signature
        #: BYTES inputs the model takes as raw bytes; other BYTES inputs are decoded to text
        self._binary_inputs = {s.name for s in signature.inputs if s.binary} if signature else set()
        #: a one-array signature of numbers: requests take the shortest path (see native_inputs)
        self._lone_spec = (
            signature.inputs[0]
            if signature is not None
            and signature.input_format == "tensor"
            and signature.inputs[0].datatype is not Datatype.BYTES
            else None
        )
        self._output_names = (
            [spec.name for spec in signature.outputs]
            if signature is not None and signature.outputs
            else [DEFAULT_OUTPUT_NAME]
        )
        self._batchers: dict[tuple[str, ...], AdaptiveBatcher] = {}

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def ready(self) -> bool:
        return self.pool.state in (PoolState.READY, PoolState.DEGRADED)

    @property
    def output_names(self) -> list[str]:
        return list(self._output_names)

    @property
    def queued(self) -> int:
        return sum(b.queued for b in self._batchers.values())

    @property
    def in_flight(self) -> int:
        return sum(b.in_flight for b in self._batchers.values())

    async def start(self) -> None:
        await self.pool.start()

    async def stop(self, drain: bool = True) -> None:
        for batcher in self._batchers.values():
            await batcher.close(drain=drain)
        await self.pool.stop()

    def predict(
        self, native: Any, rows: int, outputs: Sequence[str], timeout: float | None = None
    ) -> Awaitable[dict[str, np.ndarray[Any, Any]]]:
        """``outputs`` of these ``rows``; ``timeout`` covers queueing and the model call. (The
        batcher's coroutine itself, not one more around it: this is on every request's path.)"""
        key = tuple(outputs)
        batcher = self._batchers.get(key)
        if batcher is None:
            batcher = self._batchers[key] = AdaptiveBatcher(
                lambda merged: self.pool.call(merged, key),
                max_batch_size=self.options.max_batch_size,
                max_latency_ms=self.options.max_latency_ms,
                max_queue=self.options.max_queue,
                concurrency=self.options.replicas,
                on_batch=self._on_batch,
                name=f"model {self.name!r} version {self.version}",
            )
        return batcher.submit(native, rows, timeout)

    # ---- conversion ---------------------------------------------------------------------------

    def native_inputs(self, tensors: Sequence[Tensor]) -> tuple[Any, int]:
        """V2 tensors -> the model's native input (validated by the signature) and its row count."""
        spec = self._lone_spec
        if (
            spec is not None
            and len(tensors) == 1
            and tensors[0].name == spec.name
            and tensors[0].datatype is not Datatype.BYTES
        ):
            array = coerce_array(tensors[0].data, spec)  # what signature.coerce does for it
            return array, len(array) if array.ndim else 1
        signature = self.signature
        binary = self._binary_inputs
        by_name = {t.name: t.data if t.name in binary else _plain(t) for t in tensors}
        if signature is None:
            data: Any = next(iter(by_name.values())) if len(by_name) == 1 else by_name
            return data, _rows(data)
        names = signature.input_names
        if signature.input_format == "dataframe":
            # columns stay plain arrays here; the replica builds one DataFrame per batch
            (first_name, first), *_ = by_name.items()
            if len(by_name) == 1 and first.ndim == 2 and first_name not in names:
                if first.shape[1] != len(names):
                    raise InvalidInputError(
                        f"this model takes {len(names)} columns {names}: send one 1-D tensor per "
                        f"column, or one 2-D tensor [rows, {len(names)}] with the columns in that "
                        f"order; got {first_name!r} of shape {list(first.shape)}"
                    )
                columns = {name: first[:, i] for i, name in enumerate(names)}
            else:
                known = set(names)
                columns = {n: _column(a, n) if n in known else a for n, a in by_name.items()}
            native = signature.coerce_columns(columns)
            return native, _rows(native)
        if signature.input_format == "tensor":
            if len(by_name) != 1 or names[0] not in by_name:
                raise InvalidInputError(
                    f"this model takes one input tensor named {names[0]!r}; got {sorted(by_name)}"
                )
            data = by_name[names[0]]
        else:
            data = by_name
        native = signature.coerce(data)
        return native, _rows(native)

    def native_data(self, data: Any) -> tuple[Any, int]:
        """Plain containers (MLflow scoring) -> the model's native input and its row count."""
        signature = self.signature
        native = signature.coerce(data) if signature is not None else data
        return native, _rows(native)

    def requested_outputs(self, requested: Sequence[str]) -> list[str]:
        known = self._output_names
        if not requested:
            return list(known)
        unknown = [name for name in requested if name not in known]
        if unknown:
            raise InvalidInputError(f"unknown output(s) {unknown}; this model gives {known}")
        return list(dict.fromkeys(requested))

    def metadata(self) -> ModelMetadata:
        signature = self.signature
        inputs: tuple[TensorMetadata, ...] = ()
        outputs: tuple[TensorMetadata, ...] = ()
        if signature is not None:
            inputs = tuple(TensorMetadata(s.name, s.datatype, s.shape) for s in signature.inputs)
            outputs = tuple(TensorMetadata(s.name, s.datatype, s.shape) for s in signature.outputs)
        return ModelMetadata(
            name=self.name,
            versions=(self.version,),
            platform=PLATFORMS.get(self.manifest.flavor, self.manifest.flavor),
            inputs=inputs,
            outputs=outputs,
        )

    @property
    def supports_proba(self) -> bool:
        return PREDICT_PROBA in self.output_names


def output_tensors(outputs: Mapping[str, np.ndarray[Any, Any]]) -> tuple[Tensor, ...]:
    """Model outputs -> V2 tensors; strings become BYTES."""
    tensors = []
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.dtype.kind in "OUS":
            array = np.array([_to_bytes(v) for v in array.ravel()], dtype=object).reshape(
                array.shape
            )
        tensors.append(Tensor(name, Datatype.from_numpy(array.dtype), tuple(array.shape), array))
    return tuple(tensors)


def _plain(tensor: Tensor) -> np.ndarray[Any, Any]:
    """BYTES arrive as bytes; models were trained on str."""
    data = tensor.data
    if tensor.datatype is Datatype.BYTES:
        try:
            flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in data.ravel()]
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"input {tensor.name!r} holds bytes that are not UTF-8 text"
            ) from exc
        data = np.array(flat, dtype=object).reshape(data.shape)
    return data


def _column(array: np.ndarray[Any, Any], name: str) -> np.ndarray[Any, Any]:
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(
            f"column {name!r} must be a 1-D tensor (or [rows, 1]); got shape {list(array.shape)}"
        )
    return array


def _rows(native: Any) -> int:
    if isinstance(native, pd.DataFrame):
        return len(native.index)
    if isinstance(native, Mapping):
        return len(next(iter(native.values()))) if native else 0
    return len(native) if getattr(native, "ndim", 1) > 0 else 1


def _to_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")
