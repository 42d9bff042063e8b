"""ONNX models (an ``onnx.ModelProto`` or a path to a ``.onnx`` file), served with onnxruntime.

The graph declares its inputs and outputs, so the package's signature comes from the graph, not
from a sample: a sample input is then only checked against it. ``onnx.checker`` validates the
model on save, so a corrupt file fails when it is logged rather than when it is first served.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePath
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from seaway.errors import ModelLoadError, PackagingError, UnsupportedModelError
from seaway.packaging.flavors.base import (
    Flavor,
    LoadContext,
    Predictor,
    SavedModel,
    SaveOptions,
    from_module,
    require,
)
from seaway.packaging.signature import InputFormat, Signature, TensorSpec
from seaway.types import Datatype

MODEL_FILE = "model.onnx"
#: Output names that hold class probabilities (skl2onnx with ``zipmap: False``, and others).
PROBA_OUTPUTS = ("probabilities", "output_probability")
PROVIDERS = ["CPUExecutionProvider"]

#: ONNX ``TensorProto`` element types by name; looked up on the enum so no number is hard-coded.
_DATATYPES = {
    "FLOAT": Datatype.FP32,
    "DOUBLE": Datatype.FP64,
    "FLOAT16": Datatype.FP16,
    "INT8": Datatype.INT8,
    "INT16": Datatype.INT16,
    "INT32": Datatype.INT32,
    "INT64": Datatype.INT64,
    "UINT8": Datatype.UINT8,
    "UINT16": Datatype.UINT16,
    "UINT32": Datatype.UINT32,
    "UINT64": Datatype.UINT64,
    "BOOL": Datatype.BOOL,
    "STRING": Datatype.BYTES,
}


def _onnx() -> ModuleType:
    return require("onnx", package="onnx", extra="onnx", purpose="Packaging an ONNX model")


def _onnxruntime() -> ModuleType:
    return require(
        "onnxruntime", package="onnxruntime", extra="onnx", purpose="Running an ONNX model"
    )


class OnnxPredictor:
    """An onnxruntime session behind ``predict``, which returns the graph's first output."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._inputs = [node.name for node in session.get_inputs()]
        self._output = session.get_outputs()[0].name

    def predict(self, data: Any) -> Any:
        return self._run(self._output, data)

    def _run(self, output: str, data: Any) -> Any:
        return self._session.run([output], self._feed(data))[0]

    def _feed(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            return {str(name): np.asarray(value) for name, value in data.items()}
        if isinstance(data, pd.DataFrame) and len(self._inputs) > 1:
            return {name: data[name].to_numpy().reshape(-1, 1) for name in self._inputs}
        if isinstance(data, pd.DataFrame):
            data = data.to_numpy()
        return {self._inputs[0]: np.asarray(data)}


class OnnxClassifier(OnnxPredictor):
    """A graph with a probabilities tensor: ``predict_proba`` returns it."""

    def __init__(self, session: Any, proba_output: str) -> None:
        super().__init__(session)
        self._proba_output = proba_output

    def predict_proba(self, data: Any) -> Any:
        return self._run(self._proba_output, data)


class OnnxFlavor(Flavor):
    name = "onnx"
    extra = "onnx"

    def matches(self, model: Any) -> bool:
        if isinstance(model, str | PurePath):
            return str(model).lower().endswith(".onnx")
        return type(model).__name__ == "ModelProto" and from_module(model, "onnx")

    def save(self, model: Any, model_dir: Path, options: SaveOptions) -> SavedModel:
        onnx = _onnx()
        proto = _read(onnx, model)
        what = f"ONNX model {model}" if isinstance(model, str | PurePath) else "this ONNX model"
        try:
            onnx.checker.check_model(proto)
        except Exception as exc:  # onnx.checker.ValidationError
            raise PackagingError(f"{what} is not valid ONNX: {exc}") from exc
        try:
            onnx.save_model(proto, str(model_dir / MODEL_FILE))
        except ValueError as exc:  # protobuf's 2 GB limit
            raise UnsupportedModelError(f"{what} cannot be written as one file: {exc}") from exc
        return SavedModel(
            framework="onnx",
            framework_version=str(onnx.__version__),
            requirements=("onnx", "onnxruntime", "numpy"),
            options={
                "file": MODEL_FILE,
                "opsets": {op.domain or "ai.onnx": int(op.version) for op in proto.opset_import},
            },
            signature=graph_signature(onnx, proto.graph),
        )

    def wrap(self, model: Any) -> Predictor:
        proto = _read(_onnx(), model)
        return _predictor(_session(proto.SerializeToString(), "this ONNX model"))

    def load(self, context: LoadContext) -> Predictor:
        path = context.model_dir / context.options.get("file", MODEL_FILE)
        return _predictor(_session(str(path), str(path)))


def _read(onnx: ModuleType, model: Any) -> Any:
    if not isinstance(model, str | PurePath):
        return model
    try:
        return onnx.load(str(model))
    except FileNotFoundError:
        raise PackagingError(f"ONNX model file {model} does not exist") from None
    except Exception as exc:  # google.protobuf DecodeError and friends
        raise PackagingError(
            f"{model} is not a readable ONNX file ({type(exc).__name__}: {exc}); export the "
            "model again"
        ) from exc


def _session(source: str | bytes, what: str) -> Any:
    ort = _onnxruntime()
    try:
        return ort.InferenceSession(source, providers=PROVIDERS)
    except Exception as exc:  # onnxruntime's InvalidProtobuf, InvalidGraph, NotImplemented...
        raise ModelLoadError(
            f"onnxruntime {ort.__version__} cannot load {what}: {exc}. Install the onnxruntime "
            "version in the package's requirements.txt, or export with an opset it supports"
        ) from exc


def _predictor(session: Any) -> Predictor:
    for output in session.get_outputs()[1:]:
        if output.name in PROBA_OUTPUTS and str(output.type).startswith("tensor("):
            return OnnxClassifier(session, output.name)
    return OnnxPredictor(session)


def graph_signature(onnx: ModuleType, graph: Any) -> Signature | None:
    """The graph's declared inputs and outputs; ``None`` when an input's rank is unknown."""
    initializers = {init.name for init in graph.initializer}  # listed as inputs before IR 4
    inputs = [_spec(onnx, node, "input") for node in graph.input if node.name not in initializers]
    if not inputs or any(spec is None for spec in inputs):
        return None
    outputs = [spec for node in graph.output if (spec := _spec(onnx, node, "output")) is not None]
    input_format: InputFormat = "tensor" if len(inputs) == 1 else "tensors"
    return Signature(
        input_format=input_format,
        inputs=tuple(spec for spec in inputs if spec is not None),
        outputs=tuple(outputs),
    )


def _spec(onnx: ModuleType, node: Any, kind: str) -> TensorSpec | None:
    """One graph input or output; ``None`` for non-tensors (ZipMap's maps) and unknown ranks."""
    if node.type.WhichOneof("value") != "tensor_type":
        if kind == "input":
            raise UnsupportedModelError(
                f"ONNX input {node.name!r} is not a tensor; Seaway serves tensor inputs only"
            )
        return None
    tensor = node.type.tensor_type
    if not tensor.HasField("shape"):
        return None
    elem = onnx.TensorProto.DataType.Name(tensor.elem_type)
    if elem not in _DATATYPES:
        raise UnsupportedModelError(
            f"ONNX {kind} {node.name!r} has element type {elem}, which Seaway signatures cannot "
            f"describe (supported: {', '.join(_DATATYPES)})"
        )
    shape = tuple(
        int(dim.dim_value) if dim.WhichOneof("value") == "dim_value" else -1
        for dim in tensor.shape.dim
    )
    return TensorSpec(name=node.name, datatype=_DATATYPES[elem], shape=shape)
