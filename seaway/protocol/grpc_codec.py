"""Open Inference Protocol gRPC messages to and from the transport-neutral types.

Requests arrive either as ``raw_input_contents`` (one bytes entry per input, little-endian,
row-major; BOOL one byte; BYTES a 4-byte little-endian length before each element), which is what
tritonclient always sends, or as typed ``InferTensorContents`` fields. Responses are always raw, as
Triton answers, because clients decode raw bytes with one ``np.frombuffer`` instead of walking
repeated fields.

Every problem with a request raises :class:`~seaway.errors.InvalidInputError` naming the tensor and
what to change. Fixed-size raw inputs are decoded without copying: their arrays are read-only views
of the message's bytes, so code that wants to modify an input must copy it first.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from seaway.errors import InvalidInputError, PredictionError, quoted
from seaway.protocol.grpc.inference_pb2 import (
    InferParameter,
    InferTensorContents,
    ModelInferRequest,
    ModelInferResponse,
    ModelMetadataResponse,
)
from seaway.protocol.limits import MAX_DIMS, check_shape
from seaway.protocol.types import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    Parameters,
    ParameterValue,
    RequestedOutput,
    Tensor,
)
from seaway.types import Datatype

__all__ = [
    "decode_infer_request",
    "decode_parameters",
    "encode_infer_response",
    "encode_model_metadata",
    "encode_parameters",
]

#: The typed contents field that carries each datatype. FP16 has none: it must be sent raw.
_CONTENTS_FIELD: dict[Datatype, str] = {
    Datatype.BOOL: "bool_contents",
    Datatype.INT8: "int_contents",
    Datatype.INT16: "int_contents",
    Datatype.INT32: "int_contents",
    Datatype.INT64: "int64_contents",
    Datatype.UINT8: "uint_contents",
    Datatype.UINT16: "uint_contents",
    Datatype.UINT32: "uint_contents",
    Datatype.UINT64: "uint64_contents",
    Datatype.FP32: "fp32_contents",
    Datatype.FP64: "fp64_contents",
    Datatype.BYTES: "bytes_contents",
}
#: The numpy type protobuf's repeated field holds, before narrowing to the tensor's datatype.
_FIELD_DTYPE: dict[str, np.dtype[Any]] = {
    "bool_contents": np.dtype(np.bool_),
    "int_contents": np.dtype(np.int32),
    "int64_contents": np.dtype(np.int64),
    "uint_contents": np.dtype(np.uint32),
    "uint64_contents": np.dtype(np.uint64),
    "fp32_contents": np.dtype(np.float32),
    "fp64_contents": np.dtype(np.float64),
}
_ALL_FIELDS = (*_FIELD_DTYPE, "bytes_contents")
#: The wire is little-endian whatever the host is.
_WIRE_DTYPE: dict[Datatype, np.dtype[Any]] = {
    dt: dt.numpy_dtype.newbyteorder("<") for dt in Datatype if dt is not Datatype.BYTES
}
_SUPPORTED = ", ".join(dt.value for dt in Datatype)
_LENGTH = struct.Struct("<I")
_INT64_MIN, _UINT64_END = -(2**63), 2**64


# --- requests -------------------------------------------------------------------------------------


def decode_infer_request(msg: ModelInferRequest) -> InferRequest:
    """Turn a ``ModelInferRequest`` into an :class:`InferRequest`, validating every tensor.

    Empty ``model_version`` and ``id`` become ``None`` (proto3 cannot tell unset from empty).
    """
    raw: Sequence[bytes] = msg.raw_input_contents
    if not msg.inputs:
        raise InvalidInputError(
            'the request has no inputs; send at least one input tensor in "inputs"'
        )
    if raw and len(raw) != len(msg.inputs):
        raise InvalidInputError(
            f"raw_input_contents has {len(raw)} entries but the request has {len(msg.inputs)} "
            "inputs; send exactly one entry per input, in input order"
        )
    inputs: list[Tensor] = []
    seen: set[str] = set()
    for index, tensor in enumerate(msg.inputs):
        if not tensor.name:
            raise InvalidInputError(f"input #{index} has no name; every input needs one")
        if tensor.name in seen:
            raise InvalidInputError(
                f"input {quoted(tensor.name)} appears twice; send each input once"
            )
        seen.add(tensor.name)
        inputs.append(_decode_input(tensor, raw[index] if raw else None))

    outputs: list[RequestedOutput] = []
    for index, requested in enumerate(msg.outputs):
        if not requested.name:
            raise InvalidInputError(f"requested output #{index} has no name")
        where = f"requested output {quoted(requested.name)}"
        outputs.append(
            RequestedOutput(
                requested.name, parameters=decode_parameters(requested.parameters, where)
            )
        )
    return InferRequest(
        model_name=msg.model_name,
        model_version=msg.model_version or None,
        id=msg.id or None,
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        parameters=decode_parameters(msg.parameters, "the request"),
    )


def _decode_input(tensor: ModelInferRequest.InferInputTensor, raw: bytes | None) -> Tensor:
    name = tensor.name
    try:
        datatype = Datatype(tensor.datatype)
    except ValueError:
        raise InvalidInputError(
            f"input {quoted(name)} has datatype {quoted(tensor.datatype)}, which Seaway does not "
            f"support; use one of {_SUPPORTED}"
        ) from None
    shape = tuple(int(dim) for dim in tensor.shape)
    if len(shape) > MAX_DIMS or 0 in shape:
        check_shape(shape, f"input {quoted(name)}")
    if any(dim < 0 for dim in shape):
        raise InvalidInputError(
            f"input {quoted(name)} has shape {list(shape)}; a request's dimensions must be concrete "
            "sizes (>= 0), not -1"
        )
    count = math.prod(shape)
    typed = _typed_fields(tensor.contents) if tensor.HasField("contents") else []
    if raw is not None:
        if typed:
            raise InvalidInputError(
                f"input {quoted(name)} sets contents.{typed[0]} while the request uses "
                "raw_input_contents; when raw contents are used every input must be raw"
            )
        data = _decode_raw(name, datatype, shape, count, raw)
    else:
        data = _decode_typed(name, datatype, shape, count, tensor.contents, typed)
    parameters = (
        decode_parameters(tensor.parameters, f"input {quoted(name)}") if tensor.parameters else {}
    )
    return Tensor(name, datatype, shape, data, parameters)


def _typed_fields(contents: InferTensorContents) -> list[str]:
    return [field for field in _ALL_FIELDS if len(getattr(contents, field))]


def _decode_raw(
    name: str, datatype: Datatype, shape: tuple[int, ...], count: int, raw: bytes
) -> np.ndarray[Any, Any]:
    if datatype is Datatype.BYTES:
        return _decode_bytes(name, shape, count, raw)
    wire = _WIRE_DTYPE[datatype]
    expected = count * wire.itemsize
    if len(raw) != expected:
        raise InvalidInputError(
            f"input {quoted(name)} has {len(raw)} bytes of raw data, but shape {list(shape)} of "
            f"{datatype.value} needs {expected} ({count} elements of {wire.itemsize} bytes)"
        )
    if datatype is Datatype.BOOL:
        octets = np.frombuffer(raw, dtype=np.uint8)
        if count and int(octets.max()) > 1:
            raise InvalidInputError(
                f"input {quoted(name)} is BOOL but its raw data holds bytes other than 0 and 1"
            )
        return octets.view(np.bool_).reshape(shape)
    return np.frombuffer(raw, dtype=wire).reshape(shape)


def _decode_bytes(
    name: str, shape: tuple[int, ...], count: int, raw: bytes
) -> np.ndarray[Any, Any]:
    """Walk the 4-byte length prefixes; the only per-element loop, as BYTES sizes vary."""
    items: list[bytes] = []
    offset, end = 0, len(raw)
    for index in range(count):
        if offset + 4 > end:
            raise InvalidInputError(
                f"input {quoted(name)} (BYTES) has raw data for {index} of the {count} elements its "
                f"shape {list(shape)} needs; each element is a 4-byte little-endian length "
                "followed by that many bytes"
            )
        (length,) = _LENGTH.unpack_from(raw, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(
                f"input {quoted(name)} (BYTES) element {index} declares {length} bytes but only "
                f"{end - offset} remain in its raw data"
            )
        items.append(raw[offset : offset + length])
        offset += length
    if offset != end:
        raise InvalidInputError(
            f"input {quoted(name)} (BYTES) has {end - offset} bytes of raw data left over after the "
            f"{count} elements its shape {list(shape)} needs"
        )
    return _object_array(items, shape)


def _decode_typed(
    name: str,
    datatype: Datatype,
    shape: tuple[int, ...],
    count: int,
    contents: InferTensorContents,
    typed: list[str],
) -> np.ndarray[Any, Any]:
    field = _CONTENTS_FIELD.get(datatype)
    if field is None:
        raise InvalidInputError(
            f"input {quoted(name)} is {datatype.value}, which has no typed contents field; "
            "send it in raw_input_contents"
        )
    if not typed:
        if count == 0:
            return np.empty(shape, dtype=datatype.numpy_dtype)
        raise InvalidInputError(
            f"input {quoted(name)} has no data; send it in raw_input_contents (one entry per input) "
            f"or in contents.{field}"
        )
    if typed != [field]:
        wrong = next(f for f in typed if f != field)
        raise InvalidInputError(
            f"input {quoted(name)} is {datatype.value} but sets contents.{wrong}; "
            f"{datatype.value} data goes in contents.{field} only"
        )
    values = getattr(contents, field)
    if len(values) != count:
        raise InvalidInputError(
            f"input {quoted(name)} has {len(values)} elements in contents.{field}, but its shape "
            f"{list(shape)} needs {count}"
        )
    if datatype is Datatype.BYTES:
        return _object_array(list(values), shape)
    array = np.array(values, dtype=_FIELD_DTYPE[field])
    target = datatype.numpy_dtype
    if target != array.dtype:  # INT8/16 and UINT8/16 travel widened in 32-bit fields
        info = np.iinfo(target)
        if int(array.min()) < info.min or int(array.max()) > info.max:
            raise InvalidInputError(
                f"input {quoted(name)} is {datatype.value} but contents.{field} holds values outside "
                f"[{info.min}, {info.max}]"
            )
        array = array.astype(target)
    return array.reshape(shape)


def _object_array(items: list[bytes], shape: tuple[int, ...]) -> np.ndarray[Any, Any]:
    # Filling a preallocated array keeps numpy from reading equal-length bytes as a 2-D array.
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array.reshape(shape)


# --- responses ------------------------------------------------------------------------------------


def encode_infer_response(resp: InferResponse) -> ModelInferResponse:
    """Build a ``ModelInferResponse`` with every output in ``raw_output_contents``.

    Raises :class:`~seaway.errors.PredictionError` when an output's data does not fit its shape
    or datatype: that is the model's fault, not the client's.
    """
    msg = ModelInferResponse(
        model_name=resp.model_name, model_version=resp.model_version or "", id=resp.id or ""
    )
    encode_parameters(resp.parameters, msg.parameters)
    raw: list[bytes] = []
    for tensor in resp.outputs:
        datatype = Datatype(tensor.datatype)
        output = msg.outputs.add(name=tensor.name, datatype=datatype.value, shape=tensor.shape)
        encode_parameters(tensor.parameters, output.parameters)
        raw.append(_encode_raw(tensor, datatype))
    msg.raw_output_contents.extend(raw)
    return msg


def _encode_raw(tensor: Tensor, datatype: Datatype) -> bytes:
    data = tensor.data
    count = math.prod(tensor.shape)
    if data.size != count:
        raise PredictionError(
            f"output '{tensor.name}' has {data.size} elements but its shape "
            f"{list(tensor.shape)} needs {count}"
        )
    if datatype is Datatype.BYTES:
        return _encode_bytes(tensor.name, data)
    try:
        # BOOL is one byte per element (numpy's own layout); tobytes("C") fixes strides.
        return np.asarray(data, dtype=_WIRE_DTYPE[datatype]).tobytes(order="C")
    except (TypeError, ValueError) as exc:
        raise PredictionError(
            f"output '{tensor.name}' cannot be sent as {datatype.value}: {exc}"
        ) from exc


def _encode_bytes(name: str, data: np.ndarray[Any, Any]) -> bytes:
    """Length-prefix each element; str is UTF-8, other objects their ``str()`` like tritonclient."""
    parts: list[bytes] = []
    for item in np.asarray(data, dtype=object).reshape(-1).tolist():
        if isinstance(item, bytes):
            blob = item
        elif isinstance(item, str):
            blob = item.encode("utf-8")
        elif isinstance(item, bytearray | memoryview):
            blob = bytes(item)
        else:
            blob = str(item).encode("utf-8")
        if len(blob) > 0xFFFFFFFF:
            raise PredictionError(f"output '{name}' has a BYTES element over 4 GiB")
        parts.append(_LENGTH.pack(len(blob)))
        parts.append(blob)
    return b"".join(parts)


def encode_model_metadata(meta: ModelMetadata) -> ModelMetadataResponse:
    """Build a ``ModelMetadataResponse``; ``-1`` in a shape marks a variable dimension."""
    msg = ModelMetadataResponse(
        name=meta.name, versions=list(meta.versions), platform=meta.platform
    )
    for tensor in meta.inputs:
        msg.inputs.add(
            name=tensor.name, datatype=Datatype(tensor.datatype).value, shape=tensor.shape
        )
    for tensor in meta.outputs:
        msg.outputs.add(
            name=tensor.name, datatype=Datatype(tensor.datatype).value, shape=tensor.shape
        )
    return msg


# --- parameters -----------------------------------------------------------------------------------


def decode_parameters(
    params: Mapping[str, InferParameter], where: str = "the request"
) -> dict[str, ParameterValue]:
    """Unwrap each ``InferParameter`` oneof into a plain Python value; ``where`` names the owner."""
    values: dict[str, ParameterValue] = {}
    for key, param in params.items():
        choice = param.WhichOneof("parameter_choice")
        if choice is None:
            raise InvalidInputError(
                f"parameter {quoted(key)} of {where} has no value; set one of bool_param, "
                "int64_param, string_param, double_param or uint64_param"
            )
        values[key] = getattr(param, choice)
    return values


def encode_parameters(params: Parameters, target: MutableMapping[str, InferParameter]) -> None:
    """Write plain values into a message's ``parameters`` map.

    bool before int (bool is an int in Python); ints past int64 go to ``uint64_param``. Raises
    ``TypeError`` for anything else, which is a bug in the caller rather than bad client input.
    """
    for key, value in params.items():
        param = target[key]
        if isinstance(value, bool | np.bool_):
            param.bool_param = bool(value)
        elif isinstance(value, int | np.integer):
            number = int(value)
            if not _INT64_MIN <= number < _UINT64_END:
                raise TypeError(f"parameter '{key}' = {number} does not fit in 64 bits")
            if number < 2**63:
                param.int64_param = number
            else:
                param.uint64_param = number
        elif isinstance(value, float | np.floating):
            param.double_param = float(value)
        elif isinstance(value, str):
            param.string_param = value
        else:
            raise TypeError(
                f"parameter '{key}' is a {type(value).__name__}; parameters must be bool, int, "
                "float or str"
            )
