"""Open Inference Protocol (V2) REST codec: JSON bodies and the binary tensor data extension.

Pure functions from request bytes to :class:`InferRequest` and from :class:`InferResponse` back to
bytes. Every problem in a request raises ``InvalidInputError`` naming the tensor and what is wrong,
so the server answers 400 ``{"error": ...}`` without looking inside. Decisions the spec leaves open:

- JSON elements are checked as strictly as Triton checks them: numbers for FP (integers allowed,
  ``null`` reads as NaN because that is how NaN is written back), integers within range for
  INT/UINT, booleans for BOOL, strings for BYTES (stored UTF-8 encoded; no ``{"b64": ...}``: raw
  bytes go as binary data; ``null`` is a missing value, which the model's signature may
  refuse). FP16 may come as JSON numbers; BF16 is refused.
- ``data`` may be nested or flat; it must be rectangular and its element count must match ``shape``.
- Binary tensors are copied out of the body: arrays are aligned, writable and do not pin the body.
- JSON output ``data`` is flat row-major (tritonclient reshapes it); NaN and infinities become
  ``null``. A BYTES output sent as JSON must be UTF-8, else the client is told to ask for binary.
- Transport parameters (``binary_data_size``, ``binary_data``, ``binary_data_output``) are consumed
  here; shared memory and classification, which Seaway does not implement, are refused.
"""

from __future__ import annotations

import math
import struct
from collections import Counter
from itertools import chain
from typing import Any, NamedTuple, NoReturn

import numpy as np
import orjson

from seaway.errors import InvalidInputError, brief, listed, quoted
from seaway.protocol.limits import MAX_DIMS, check_shape
from seaway.protocol.types import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    ParameterValue,
    RequestedOutput,
    Tensor,
    TensorMetadata,
)
from seaway.types import Datatype

#: HTTP header giving the byte length of the JSON part of a body that carries binary tensors.
HEADER_LENGTH_FIELD = "Inference-Header-Content-Length"

_DATATYPES = {datatype.value: datatype for datatype in Datatype}
_WIRE = {dt: dt.numpy_dtype.newbyteorder("<") for dt in Datatype if dt is not Datatype.BYTES}
#: numpy kinds that ``np.asarray`` may infer from valid JSON data of each datatype
_KINDS = {
    dt: "b" if dt is Datatype.BOOL else "iuf" if dt.numpy_dtype.kind == "f" else "iu"
    for dt in Datatype
}
_NOT_SUPPORTED = ("shared_memory_region", "shared_memory_byte_size", "shared_memory_offset")
_LENGTH = struct.Struct("<I")
_RAGGED = "data is not rectangular (nested arrays of unequal length)"
_SMALL = 64  # below this many elements a Python scan for hidden booleans beats numpy


class _Input(NamedTuple):
    name: str
    datatype: Datatype
    shape: tuple[int, ...]
    parameters: dict[str, ParameterValue]
    data: Any
    binary_size: int | None


def decode_infer_request(
    body: bytes, *, model_name: str, model_version: str | None, header_length: int | None
) -> InferRequest:
    """Decode an infer request; ``header_length`` is the ``Inference-Header-Content-Length``."""
    if header_length == 0:
        raise InvalidInputError(
            f"{HEADER_LENGTH_FIELD}: 0 marks a raw binary request, which only a model with exactly one "
            "input whose shape can be deduced accepts; send a JSON header instead"
        )
    if header_length is not None and not 0 < header_length <= len(body):
        raise InvalidInputError(
            f"{HEADER_LENGTH_FIELD} is {header_length} but the body has only {len(body)} bytes"
        )
    end = len(body) if header_length is None else header_length
    doc = _load_json(body if header_length is None else memoryview(body)[:end], header_length)
    if header_length is None and type(doc) is dict:
        plain = _plain_request(doc, model_name, model_version)
        if plain is not None:
            return plain
    if not isinstance(doc, dict):
        raise InvalidInputError(f"request body must be a JSON object, not {_json_type(doc)}")
    items = doc.get("inputs")
    if not isinstance(items, list) or not items:
        raise InvalidInputError('request needs "inputs": a non-empty array of input tensors')
    specs = [_input(index, item) for index, item in enumerate(items)]
    _no_duplicates([spec.name for spec in specs], "input")

    declared = sum(spec.binary_size or 0 for spec in specs)
    if declared != len(body) - end:
        raise InvalidInputError(_binary_size_problem(declared, len(body) - end, header_length))
    tensors: list[Tensor] = []
    offset, view = end, memoryview(body)
    for spec in specs:
        if spec.binary_size is None:
            array = _from_json(spec.data, spec.datatype, spec.shape, spec.name)
        else:
            chunk = view[offset : offset + spec.binary_size]
            array = _from_binary(chunk, spec.datatype, spec.shape, f"input {quoted(spec.name)}")
            offset += spec.binary_size
        tensors.append(Tensor(spec.name, spec.datatype, spec.shape, array, spec.parameters))

    parameters = _parameters(doc.get("parameters"), "request")
    binary_output = parameters.pop("binary_data_output", False)
    if not isinstance(binary_output, bool):
        raise InvalidInputError('request parameter "binary_data_output" must be true or false')
    request_id = doc.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise InvalidInputError(f'request "id" must be a string, not {_json_type(request_id)}')
    return InferRequest(
        model_name=model_name,
        inputs=tuple(tensors),
        model_version=model_version,
        id=request_id,
        outputs=_requested_outputs(doc.get("outputs")),
        parameters=parameters,
        binary_output=binary_output,
    )


_PLAIN_KEYS = ({"inputs"}, {"inputs", "outputs"}, {"inputs", "id"}, {"inputs", "outputs", "id"})
_INPUT_KEYS = {"name", "datatype", "shape", "data"}
_OUTPUT_KEYS = {"name"}


def _plain_request(
    doc: dict[str, Any], model_name: str, model_version: str | None
) -> InferRequest | None:
    """The common request in the fewest steps: JSON tensors of numbers or booleans, outputs by
    name, no parameters. ``None`` for anything else, or anything wrong: the checked path then
    decodes it, or words the error. Same result as that path for every request it takes."""
    if doc.keys() not in _PLAIN_KEYS:
        return None
    items, outputs, request_id = doc["inputs"], doc.get("outputs"), doc.get("id")
    if type(items) is not list or not items or not (request_id is None or type(request_id) is str):
        return None
    tensors = []
    names: set[str] = set()
    for item in items:
        if type(item) is not dict or item.keys() != _INPUT_KEYS:
            return None
        name, datatype, shape = item["name"], item["datatype"], item["shape"]
        if type(name) is not str or not name or name in names or type(datatype) is not str:
            return None
        datatype = _DATATYPES.get(datatype)
        if datatype is None or datatype is Datatype.BYTES or type(shape) is not list:
            return None
        if len(shape) > MAX_DIMS or 0 in shape:
            return None  # the checked path refuses shapes numpy cannot build
        for dim in shape:
            if type(dim) is not int or dim < 0:
                return None
        names.add(name)
        dims = tuple(shape)
        array = _from_json(item["data"], datatype, dims, name)
        tensors.append(Tensor(name, datatype, dims, array, {}))
    requested: tuple[RequestedOutput, ...] = ()
    if outputs is not None:
        if type(outputs) is not list:
            return None
        wanted: set[str] = set()
        for output in outputs:
            if type(output) is not dict or output.keys() != _OUTPUT_KEYS:
                return None
            wanted_name = output["name"]
            if type(wanted_name) is not str or not wanted_name or wanted_name in wanted:
                return None
            wanted.add(wanted_name)
        requested = tuple([RequestedOutput(output["name"], None, {}) for output in outputs])
    return InferRequest(model_name, tuple(tensors), model_version, request_id, requested, {}, False)


def decode_raw_binary_request(
    body: bytes, *, input_meta: TensorMetadata, model_name: str, model_version: str | None
) -> InferRequest:
    """Decode a body that is only the bytes of the model's single input (header length 0).

    The one variable dimension, if any, is deduced from the body's size (one row is batch 1); a
    BYTES input takes the whole body as its single element. All outputs are returned binary.
    """
    name, datatype, what = input_meta.name, input_meta.datatype, f"input {input_meta.name!r}"
    if not body:
        raise InvalidInputError(f"raw binary request for {what} has an empty body")
    variable = [axis for axis, dim in enumerate(input_meta.shape) if dim < 0]
    if len(variable) > 1:
        raise InvalidInputError(
            f"{what} has shape {list(input_meta.shape)}: with more than one variable dimension its "
            "shape cannot be deduced from a raw binary body; send a JSON header"
        )
    shape = [1 if dim < 0 else dim for dim in input_meta.shape]
    if datatype is Datatype.BYTES:
        if math.prod(shape) != 1:
            raise InvalidInputError(
                f"{what} has shape {list(input_meta.shape)}; a raw binary BYTES input must hold "
                "exactly one element"
            )
        array = _object_array([bytes(body)]).reshape(shape)
    else:
        row = math.prod(shape) * (datatype.itemsize or 1)
        if variable and row and len(body) % row == 0:
            shape[variable[0]] = len(body) // row
        elif len(body) != row:
            needs = f"a multiple of {row}" if variable else str(row)
            raise InvalidInputError(
                f"raw binary body of {len(body)} bytes does not fit {what} "
                f"({datatype.value}{list(input_meta.shape)} needs {needs} bytes)"
            )
        array = _from_binary(memoryview(body), datatype, tuple(shape), what)
    tensor = Tensor(name, datatype, tuple(shape), array)
    return InferRequest(model_name, (tensor,), model_version=model_version, binary_output=True)


def encode_infer_response(
    response: InferResponse, request: InferRequest
) -> tuple[bytes, int | None]:
    """Encode a response as ``request`` asked; returns (body, JSON header length or None)."""
    binary_flags = {output.name: output.binary for output in request.outputs}
    outputs, blobs = [], []
    for tensor in response.outputs:
        entry: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,  # a str enum: orjson writes its value
            "shape": list(tensor.shape),
        }
        binary = binary_flags.get(tensor.name)
        if request.binary_output if binary is None else binary:
            blob = _to_binary(tensor)
            blobs.append(blob)
            entry["parameters"] = {**tensor.parameters, "binary_data_size": len(blob)}
        else:
            entry["data"] = _to_json(tensor)
            if tensor.parameters:
                entry["parameters"] = dict(tensor.parameters)
        outputs.append(entry)
    doc: dict[str, Any] = {"model_name": response.model_name}
    if response.model_version is not None:
        doc["model_version"] = response.model_version
    if response.id is not None:
        doc["id"] = response.id
    if response.parameters:
        doc["parameters"] = dict(response.parameters)
    doc["outputs"] = outputs
    header = encode_json(doc)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def encode_error(message: str) -> bytes:
    """The V2 error body, ``{"error": message}``, the message cut short if it is long."""
    return orjson.dumps({"error": brief(message)})


def encode_model_metadata(metadata: ModelMetadata) -> bytes:
    doc: dict[str, Any] = {"name": metadata.name}
    if metadata.versions:
        doc["versions"] = list(metadata.versions)
    doc["platform"] = metadata.platform
    doc["inputs"] = [_tensor_metadata(meta) for meta in metadata.inputs]
    doc["outputs"] = [_tensor_metadata(meta) for meta in metadata.outputs]
    return encode_json(doc)


def encode_json(obj: Any) -> bytes:
    """orjson with numpy arrays and scalars; bytes become UTF-8 text (invalid UTF-8 is an error)."""
    return orjson.dumps(obj, default=json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def json_default(obj: Any) -> Any:
    """orjson ``default`` for what it cannot write itself: object/0-d arrays, numpy scalars, bytes."""
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8")
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


# -- decoding helpers --------------------------------------------------------------------------


def _load_json(header: bytes | memoryview, header_length: int | None) -> Any:
    try:
        return orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        hint = (
            f" (if the body carries binary tensor data, send the {HEADER_LENGTH_FIELD} header)"
            if header_length is None
            else f" (the JSON header is the first {header_length} bytes, per {HEADER_LENGTH_FIELD})"
        )
        raise InvalidInputError(f"request body is not valid JSON: {exc}{hint}") from None


def _input(index: int, item: Any) -> _Input:
    if not isinstance(item, dict):
        raise InvalidInputError(f"inputs[{index}] must be a JSON object, not {_json_type(item)}")
    name = item.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidInputError(f'inputs[{index}] needs a "name" string')
    what = f"input {quoted(name)}"
    datatype = _datatype(item.get("datatype"), what)
    shape = item.get("shape")
    if not isinstance(shape, list) or not all(type(dim) is int and dim >= 0 for dim in shape):
        raise InvalidInputError(
            f'{what}: "shape" must be a list of non-negative integers, got {_json_text(shape)}'
        )
    check_shape(shape, what)
    parameters = _parameters(item.get("parameters"), what)
    size = parameters.pop("binary_data_size", None)
    has_data = "data" in item
    if size is not None and (type(size) is not int or size < 0):
        raise InvalidInputError(f'{what}: "binary_data_size" must be a non-negative integer')
    if size is not None and has_data:
        raise InvalidInputError(f'{what} has both "data" and "binary_data_size"; send one')
    if size is None and not has_data:
        raise InvalidInputError(f'{what} has neither "data" nor "binary_data_size"')
    return _Input(name, datatype, tuple(shape), parameters, item.get("data"), size)


def _datatype(value: Any, what: str) -> Datatype:
    datatype = _DATATYPES.get(value) if isinstance(value, str) else None
    if datatype is not None:
        return datatype
    if value == "BF16":
        raise InvalidInputError(f"{what}: datatype BF16 is not supported; send FP32 or FP16")
    raise InvalidInputError(
        f"{what}: unknown datatype {_json_text(value)}; expected one of {', '.join(_DATATYPES)}"
    )


def _parameters(value: Any, what: str) -> dict[str, ParameterValue]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInputError(f'{what}: "parameters" must be a JSON object')
    for key, item in value.items():
        if not isinstance(item, str | int | float):  # bool is an int
            raise InvalidInputError(
                f"{what}: parameter {quoted(key)} must be a string, number or boolean, "
                f"not {_json_type(item)}"
            )
        if key in _NOT_SUPPORTED or key == "classification":
            raise InvalidInputError(
                f"{what}: parameter {quoted(key)} is not supported by this server"
            )
    return value


def _requested_outputs(value: Any) -> tuple[RequestedOutput, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidInputError('"outputs" must be an array of requested outputs')
    outputs = []
    for index, item in enumerate(value):
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f'outputs[{index}] must be an object with a "name" string')
        parameters = _parameters(item.get("parameters"), f"output {quoted(name)}")
        binary = parameters.pop("binary_data", None)
        if binary is not None and not isinstance(binary, bool):
            raise InvalidInputError(f'output {quoted(name)}: "binary_data" must be true or false')
        outputs.append(RequestedOutput(name, binary, parameters))
    _no_duplicates([output.name for output in outputs], "output")
    return tuple(outputs)


def _no_duplicates(names: list[str], what: str) -> None:
    if len(set(names)) != len(names):
        twice = sorted(name for name, count in Counter(names).items() if count > 1)
        raise InvalidInputError(f"{what}(s) {listed(twice)} appear more than once in the request")


def _binary_size_problem(declared: int, available: int, header_length: int | None) -> str:
    if header_length is None:
        return (
            f"inputs declare {declared} bytes of binary data but the request has no "
            f"{HEADER_LENGTH_FIELD} header"
        )
    if declared == 0:
        return f"{available} bytes follow the JSON header but no input has a binary_data_size"
    return (
        f"inputs declare {declared} bytes of binary data (binary_data_size) but "
        f"{available} bytes follow the {header_length}-byte JSON header"
    )


def _from_json(
    data: Any, datatype: Datatype, shape: tuple[int, ...], name: str
) -> np.ndarray[Any, Any]:
    """Input ``name``'s JSON ``data`` as an array of ``datatype``."""
    if not isinstance(data, list):
        raise InvalidInputError(
            f'{_what(name, datatype)}: "data" must be a JSON array, not {_json_type(data)}'
        )
    if datatype is Datatype.BYTES:
        what = _what(name, datatype)
        flat = _nested_objects(data, what)
        _check_count(len(flat), shape, what)
        if not all(type(item) is str or item is None for item in flat):
            _raise_bad_element(flat, datatype, what)
        # null is a missing value: the signature decides whether the model takes it
        return _object_array([None if item is None else item.encode() for item in flat]).reshape(
            shape
        )
    try:
        array = np.asarray(data)
    except ValueError:
        raise InvalidInputError(f"{_what(name, datatype)}: {_RAGGED}") from None
    count = math.prod(shape)
    if array.size != count:
        _check_count(array.size, shape, _what(name, datatype))
    target = datatype.numpy_dtype
    if count == 0:
        return np.empty(shape, target)
    kind = array.dtype.kind
    if kind not in _KINDS[datatype] or (kind != "b" and _hides_booleans(array, data)):
        # returns only for valid data numpy could not type: FP with nulls, UINT64 above 2**63
        _raise_bad_element(data, datatype, _what(name, datatype))
        array = np.asarray(data, dtype=np.float64 if target.kind == "f" else target)
    elif target.kind in "iu" and not _fits(array, target):
        _raise_bad_element(data, datatype, _what(name, datatype))
    if target.itemsize == 8 or target.kind != "f":  # no cast that could overflow
        return array.astype(target, copy=False).reshape(shape)
    with np.errstate(over="ignore"):  # an overflow to infinity is reported just below
        result = array.astype(target, copy=False).reshape(shape)
    if np.isinf(result).any():
        raise InvalidInputError(
            f"{_what(name, datatype)}: a value is out of the {datatype.value} range"
        )
    return result


def _what(name: str, datatype: Datatype) -> str:
    """How errors name an input (built only for errors: requests pass by the thousand)."""
    return f"input {quoted(name)} ({datatype.value})"


def _hides_booleans(array: np.ndarray[Any, Any], data: list[Any]) -> bool:
    """numpy reads ``[true, 2]`` as ``[1, 2]``: look for bools wherever a 0 or 1 turned up."""
    if array.size > _SMALL and not ((array == 0) | (array == 1)).any():
        return False
    leaves: Any = data
    for _ in range(array.ndim - 1):
        leaves = chain.from_iterable(leaves)
    return bool in set(map(type, leaves))


def _fits(array: np.ndarray[Any, Any], target: np.dtype[Any]) -> bool:
    if array.dtype.kind == target.kind and target.itemsize == 8:
        return True
    info = np.iinfo(target)
    return info.min <= int(array.min()) and int(array.max()) <= info.max


def _raise_bad_element(data: list[Any], datatype: Datatype, what: str) -> None:
    """Raise for the first element that is not valid ``datatype`` data (slow path, errors only)."""
    kind = datatype.numpy_dtype.kind
    info = np.iinfo(datatype.numpy_dtype) if kind in "iu" else None
    for index, item in enumerate(_leaves(data)):
        if kind == "f":
            ok = type(item) in (int, float) or item is None
        elif info is not None:
            ok = type(item) is int and info.min <= item <= info.max
            if type(item) is int and not ok:
                raise InvalidInputError(
                    f"{what}: element {index} ({item}) is out of range [{info.min}, {info.max}]"
                )
        else:
            ok = type(item) is bool if kind == "b" else type(item) is str or item is None
        if not ok:
            expected = _EXPECTED[kind]
            raise InvalidInputError(
                f"{what}: element {index} is {_json_text(item)} ({_json_type(item)}); "
                f"{datatype.value} data must be {expected}"
            )
    if kind not in "fiu":
        raise InvalidInputError(f"{what}: data holds values that are not {datatype.value}")


_EXPECTED = {
    "f": "JSON numbers (or null for NaN)",
    "i": "JSON integers",
    "u": "JSON integers",
    "b": "JSON booleans",
    "O": 'JSON strings or null (send raw bytes as binary data, not {"b64": ...})',
}


def _leaves(data: list[Any]) -> Any:
    for item in data:
        if isinstance(item, list):
            yield from _leaves(item)
        else:
            yield item


def _check_count(count: int, shape: tuple[int, ...], what: str) -> None:
    if count != math.prod(shape):
        raise InvalidInputError(
            f"{what}: data has {count} elements but shape {list(shape)} needs {math.prod(shape)}"
        )


def _nested_objects(data: list[Any], what: str) -> list[Any]:
    """The leaves of rectangular nested lists in row-major order."""
    try:
        flat = np.array(data, dtype=object).ravel().tolist()
    except ValueError:
        flat = [[]]  # numpy refuses some ragged nestings even for object arrays
    if any(type(item) is list for item in flat):
        raise InvalidInputError(f"{what}: {_RAGGED}")
    return flat


def _object_array(items: list[Any]) -> np.ndarray[Any, Any]:
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def _from_binary(
    buffer: memoryview, datatype: Datatype, shape: tuple[int, ...], what: str
) -> np.ndarray[Any, Any]:
    count = math.prod(shape)
    if datatype is Datatype.BYTES:
        return _object_array(_split_bytes(buffer, count, what)).reshape(shape)
    expected = count * (datatype.itemsize or 0)
    if len(buffer) != expected:
        raise InvalidInputError(
            f"{what}: binary_data_size is {len(buffer)} bytes but {datatype.value} shape "
            f"{list(shape)} needs {expected}"
        )
    if datatype is Datatype.BOOL:
        raw = np.frombuffer(buffer, dtype=np.uint8)
        if raw.size and raw.max() > 1:
            raise InvalidInputError(f"{what}: BOOL binary data must be bytes 0 or 1")
        return raw.astype(bool).reshape(shape)
    return np.frombuffer(buffer, dtype=_WIRE[datatype]).astype(datatype.numpy_dtype).reshape(shape)


def _split_bytes(buffer: memoryview, count: int, what: str) -> list[bytes]:
    items, offset, end = [], 0, len(buffer)
    for index in range(count):
        if offset + 4 > end:
            raise InvalidInputError(
                f"{what}: BYTES binary data ends before element {index} of {count} "
                "(each element is a 4-byte little-endian length, then the bytes)"
            )
        (length,) = _LENGTH.unpack_from(buffer, offset)
        offset += 4
        if offset + length > end:
            raise InvalidInputError(
                f"{what}: BYTES element {index} claims {length} bytes but only {end - offset} remain"
            )
        items.append(bytes(buffer[offset : offset + length]))
        offset += length
    if offset != end:
        raise InvalidInputError(
            f"{what}: binary_data_size is {end} bytes but its {count} BYTES elements use {offset}"
        )
    return items


# -- encoding helpers --------------------------------------------------------------------------


def _to_json(tensor: Tensor) -> Any:
    if tensor.datatype is not Datatype.BYTES:
        data, dtype = tensor.data, tensor.datatype.numpy_dtype
        if type(data) is np.ndarray and data.ndim == 1 and data.dtype == dtype:
            return data  # already what the JSON holds
        return np.asarray(data, dtype=dtype).reshape(-1)
    texts = []
    for item in np.asarray(tensor.data, dtype=object).ravel().tolist():
        if isinstance(item, bytes | bytearray):
            try:
                item = bytes(item).decode("utf-8")
            except UnicodeDecodeError:
                _not_utf8(tensor.name)
        texts.append(item if isinstance(item, str) else str(item))
    return texts


def _not_utf8(name: str) -> NoReturn:
    raise InvalidInputError(
        f"output {quoted(name)} holds bytes that are not UTF-8 text and cannot be sent as JSON; "
        'request it with "binary_data": true'
    )


def _to_binary(tensor: Tensor) -> bytes:
    if tensor.datatype is not Datatype.BYTES:
        return np.asarray(tensor.data, dtype=_WIRE[tensor.datatype]).tobytes()
    parts: list[bytes] = []
    for item in np.asarray(tensor.data, dtype=object).ravel().tolist():
        raw = bytes(item) if isinstance(item, bytes | bytearray) else str(item).encode()
        parts += (_LENGTH.pack(len(raw)), raw)
    return b"".join(parts)


def _tensor_metadata(meta: TensorMetadata) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": meta.name,
        "datatype": meta.datatype.value,
        "shape": list(meta.shape),
    }
    if meta.parameters:
        doc["parameters"] = dict(meta.parameters)
    return doc


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array" if isinstance(value, list) else "an object"


def _json_text(value: Any, limit: int = 40) -> str:
    text = orjson.dumps(value).decode()
    return text if len(text) <= limit else text[: limit - 3] + "..."
