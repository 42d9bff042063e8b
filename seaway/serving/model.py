"""A model version being served: its replica pool, its batchers, and tensor conversion.

Conversion happens here, once, for every transport: V2 tensors become the model's native input
through its signature (so REST, gRPC and MLflow requests are validated identically), and outputs
become tensors again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seaway.errors import (
    InvalidInputError,
    ModelUnavailableError,
    UnsupportedOperationError,
    listed,
    quoted,
)
from seaway.packaging.manifest import Manifest
from seaway.packaging.matrix import matrix_columns
from seaway.packaging.signature import (
    DEFAULT_OUTPUT_NAME,
    PROBA_OUTPUT_NAME,
    Signature,
    coerce_array,
)
from seaway.protocol.types import ModelMetadata, Tensor, TensorMetadata
from seaway.runtime.batcher import AdaptiveBatcher
from seaway.runtime.pool import PoolState, ReplicaPool
from seaway.runtime.replica import ReplicaSpec
from seaway.types import Datatype

if TYPE_CHECKING:
    from seaway.monitoring.predlog import ModelLog

#: Open Inference Protocol platform names by flavor (informational, as in Triton/KServe).
PLATFORMS = {
    "onnx": "onnx_onnxv1",
    "torch": "pytorch_torchscript",
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}


#: With no ``call_timeout`` set, one model call may run this fraction of the request timeout.
CALL_TIMEOUT_FRACTION = 0.25


@dataclass(frozen=True)
class ServingOptions:
    replicas: int = 1
    max_batch_size: int = 64
    max_latency_ms: float = 5.0
    max_queue: int = 2048
    timeout: float | None = 30.0
    trusted: bool = False
    #: Seconds one model call may run before its replica is killed as hung; None: a quarter of
    #: ``timeout``, so that when a merged batch hangs, its innocent requests still have time to be
    #: answered from the halves it is split into (runtime/batcher.py).
    call_timeout: float | None = None

    @property
    def model_call_timeout(self) -> float | None:
        if self.call_timeout is not None:
            return self.call_timeout
        return None if self.timeout is None else self.timeout * CALL_TIMEOUT_FRACTION


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
        self.package_path = package_path
        #: where answered requests are recorded (the prediction log; None: not logged). Set by
        #: the data plane when it publishes the version (``seaway/serving/predlog.py``).
        self.logger: ModelLog | None = None
        #: a logged request of this classifier also asks for ``predict_proba`` (for estimated
        #: performance), which its answer leaves out unless the client asked for it
        self.log_proba = False
        spec = ReplicaSpec(package_path, trusted=options.trusted, manifest_sha256=manifest_sha256)
        self.pool = ReplicaPool(
            spec, options.replicas, timeout=options.model_call_timeout, on_restart=on_restart
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
        self._default_outputs = [n for n in self._output_names if n != PROBA_OUTPUT_NAME] or list(
            self._output_names
        )
        self._batchers: dict[tuple[str, ...], AdaptiveBatcher] = {}

    @property
    def signature(self) -> Signature | None:
        return self.manifest.signature

    @property
    def ready(self) -> bool:
        """Ready means able to answer now: loaded, not failed or stopped, and at least one
        healthy replica (a pool whose every replica is down or restarting is not ready, whatever
        its configuration says)."""
        state = self.pool.state
        if state is PoolState.READY:
            return True
        return state is PoolState.DEGRADED and self.pool.healthy > 0

    @property
    def refusing(self) -> bool:
        """Not ready and not about to be: a restart failed or the pool gave up. Requests are
        refused at once then (503); during an ordinary restart they wait for it instead."""
        pool = self.pool
        return not self.ready and (pool.error is not None or pool.state is not PoolState.DEGRADED)

    @property
    def unready_reason(self) -> str:
        """Why this version cannot answer now ("" when it can): what readiness and 503s say."""
        pool = self.pool
        state = pool.state
        if state is PoolState.READY or (state is PoolState.DEGRADED and pool.healthy > 0):
            return ""
        where = f"model {self.name!r} version {self.version}"
        if state is PoolState.DEGRADED:
            why = f"{where} has no healthy replica (0 of {pool.size}; restarting)"
        elif state is PoolState.FAILED:
            why = f"{where} failed: its replicas could not be restarted"
        else:
            why = f"{where} is {state.value}"
        return f"{why}: {pool.error}" if pool.error else why

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
                lambda merged: self._call(merged, key),
                # parts of a batch that crashed or hung a replica: they hold requests the server
                # accepted and wait for a replica the pool can risk (runtime/pool.py)
                run_suspect=lambda merged: self.pool.call(merged, key, suspect=True),
                max_batch_size=self.options.max_batch_size,
                max_latency_ms=self.options.max_latency_ms,
                max_queue=self.options.max_queue,
                concurrency=self.options.replicas,
                on_batch=self._on_batch,
                name=f"model {self.name!r} version {self.version}",
            )
        return batcher.submit(native, rows, timeout)

    def _call(
        self, merged: Any, outputs: tuple[str, ...]
    ) -> Awaitable[dict[str, np.ndarray[Any, Any]]]:
        """One batch to the pool, unless no replica is healthy and restarts are failing: then
        the batch fails at once with the reason (503) instead of waiting until its deadline
        (504). During an ordinary restart it waits: a replica starts in well under a second.
        The state check comes first: it costs no system call, ``healthy`` does."""
        pool = self.pool
        if pool.state is not PoolState.READY and self.refusing:
            return _unavailable(self.unready_reason)
        return pool.call(merged, outputs)

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
                        f"this model takes {len(names)} columns {listed(names)}: send one 1-D "
                        f"tensor per column, or one 2-D tensor [rows, {len(names)}] with the "
                        f"columns in that order; got {quoted(first_name)} of shape "
                        f"{list(first.shape)}"
                    )
                columns = matrix_columns(first, signature.inputs)  # each cast to its own type
            else:
                known = set(names)
                columns = {n: _column(a, n) if n in known else a for n, a in by_name.items()}
            native = signature.coerce_columns(columns)
            return native, _rows(native)
        if signature.input_format == "tensor":
            if len(by_name) != 1 or names[0] not in by_name:
                raise InvalidInputError(
                    f"this model takes one input tensor named {quoted(names[0])}; got "
                    f"{listed(sorted(by_name))}"
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
        """The outputs to compute: those named, or by default what ``predict`` gives.

        A classifier's ``predict_proba`` is a second model call, so a request that names no
        outputs gets ``predict`` alone (as MLServer and KServe answer); naming ``predict_proba``
        in ``outputs`` still gets it, and the model's metadata lists every output.
        """
        known = self._output_names
        if not requested:
            return list(self._default_outputs)
        unknown = [name for name in requested if name not in known]
        if unknown:
            raise InvalidInputError(
                f"unknown output(s) {listed(unknown)}; this model gives {listed(known)}"
            )
        return list(dict.fromkeys(requested))

    def outputs_for_method(self, method: str) -> list[str]:
        """``/invocations``' ``params.method``: ``predict`` (what ``predict`` gives, as V2 infer
        answers by default) or ``predict_proba`` (refused for a model without it)."""
        if method != PROBA_OUTPUT_NAME:
            return self.requested_outputs(())
        if not self.supports_proba:
            raise UnsupportedOperationError(
                f"model {self.name!r} version {self.version} has no predict_proba (it gives "
                f"{listed(self._output_names)}); ask for method 'predict'"
            )
        return [PROBA_OUTPUT_NAME]

    @property
    def classes(self) -> list[Any] | None:
        """A classifier's class labels in ``predict_proba``'s column order (None: not a
        classifier, or a package logged before they were recorded)."""
        signature = self.signature
        if signature is None or signature.classes is None:
            return None
        return list(signature.classes)

    def metadata(self) -> ModelMetadata:
        signature = self.signature
        inputs: tuple[TensorMetadata, ...] = ()
        outputs: tuple[TensorMetadata, ...] = ()
        if signature is not None:
            classes = self.classes
            labelled = (DEFAULT_OUTPUT_NAME, PROBA_OUTPUT_NAME)
            inputs = tuple(TensorMetadata(s.name, s.datatype, s.shape) for s in signature.inputs)
            outputs = tuple(
                TensorMetadata(
                    s.name,
                    s.datatype,
                    s.shape,
                    {"classes": classes} if classes is not None and s.name in labelled else {},
                )
                for s in signature.outputs
            )
        return ModelMetadata(
            name=self.name,
            versions=(self.version,),
            platform=PLATFORMS.get(self.manifest.flavor, self.manifest.flavor),
            inputs=inputs,
            outputs=outputs,
        )

    @property
    def supports_proba(self) -> bool:
        return PROBA_OUTPUT_NAME in self.output_names


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


async def _unavailable(reason: str) -> dict[str, np.ndarray[Any, Any]]:
    raise ModelUnavailableError(f"{reason}; retry shortly")


def _plain(tensor: Tensor) -> np.ndarray[Any, Any]:
    """BYTES arrive as bytes; models were trained on str."""
    data = tensor.data
    if tensor.datatype is Datatype.BYTES:
        try:
            flat = [v.decode("utf-8") if isinstance(v, bytes) else v for v in data.ravel()]
        except UnicodeDecodeError as exc:
            raise InvalidInputError(
                f"input {quoted(tensor.name)} holds bytes that are not UTF-8 text"
            ) from exc
        data = np.array(flat, dtype=object).reshape(data.shape)
    return data


def _column(array: np.ndarray[Any, Any], name: str) -> np.ndarray[Any, Any]:
    if array.ndim == 2 and array.shape[1] == 1:
        return array[:, 0]
    if array.ndim != 1:
        raise InvalidInputError(
            f"column {quoted(name)} must be a 1-D tensor (or [rows, 1]); got shape "
            f"{list(array.shape)}"
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
