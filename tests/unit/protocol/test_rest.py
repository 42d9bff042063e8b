"""The V2 REST codec against the real client: bodies are built by tritonclient's HTTP library
(JSON header, ``Inference-Header-Content-Length``, binary blobs in input order) or by hand
following the binary tensor extension, and responses are read back with tritonclient's
``InferResult``."""

from __future__ import annotations

import struct
import warnings
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.http import _utils as triton_utils

from seaway.errors import InvalidInputError
from seaway.protocol.rest import (
    HEADER_LENGTH_FIELD,
    decode_infer_request,
    decode_raw_binary_request,
    encode_error,
    encode_infer_response,
    encode_model_metadata,
)
from seaway.protocol.types import (
    InferRequest,
    InferResponse,
    ModelMetadata,
    RequestedOutput,
    Tensor,
    TensorMetadata,
)
from seaway.types import Datatype

#: Values JSON can carry exactly (finite floats, integers at their type's bounds, UTF-8 text).
SAMPLES: dict[str, np.ndarray[Any, Any]] = {
    "BOOL": np.array([[True, False, True], [False, False, True]]),
    "UINT8": np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
    "UINT16": np.array([0, 65535, 3], dtype=np.uint16),
    "UINT32": np.array([0, 2**32 - 1], dtype=np.uint32),
    "UINT64": np.array([0, 2**64 - 1], dtype=np.uint64),
    "INT8": np.array([-128, 0, 127], dtype=np.int8),
    "INT16": np.array([[-32768], [32767]], dtype=np.int16),
    "INT32": np.array([-(2**31), 0, 2**31 - 1], dtype=np.int32),
    "INT64": np.array([-(2**63), 2**63 - 1], dtype=np.int64),
    "FP16": np.array([[0.5, -1.25], [65504.0, -0.0]], dtype=np.float16),
    "FP32": np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 3,
    "FP64": np.array([np.pi, -0.0, 1e300]),
    "BYTES": np.array([[b"a", b""], ["é".encode(), b"text"]], dtype=object),
}
#: What only binary data can carry: infinities, NaN and bytes that are not UTF-8.
BINARY_ONLY: dict[str, np.ndarray[Any, Any]] = {
    "FP16": np.array([np.inf, -np.inf, 1.0], dtype=np.float16),
    "FP32": np.array([[np.nan, np.inf], [-np.inf, 1e-45]], dtype=np.float32),
    "FP64": np.array([np.nan, -np.inf, 5e-324]),
    "BYTES": np.array([b"\x00\xff", b"\xc3", b"", b"\x80abc"], dtype=object),
}


def triton_body(
    inputs: dict[str, tuple[str, np.ndarray[Any, Any]] | tuple[str, np.ndarray[Any, Any], bool]],
    *,
    outputs: list[triton.InferRequestedOutput] | None = None,
    request_id: str = "",
    sequence_id: int | str = 0,
    priority: int = 0,
    timeout: int | None = None,
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """(body, Inference-Header-Content-Length) exactly as ``InferenceServerClient.infer`` sends."""
    infer_inputs = []
    for name, spec in inputs.items():
        datatype, array = spec[0], spec[1]
        binary = spec[2] if len(spec) == 3 else True  # tritonclient's default
        infer_input = triton.InferInput(name, list(array.shape), datatype)
        infer_input.set_data_from_numpy(array, binary_data=binary)
        infer_inputs.append(infer_input)
    return triton_utils._get_inference_request(  # type: ignore[no-any-return]
        infer_inputs, request_id, outputs, sequence_id, False, False, priority, timeout, parameters
    )


def decode(
    body: bytes, header_length: int | None = None, model_version: str | None = None
) -> InferRequest:
    return decode_infer_request(
        body, model_name="model", model_version=model_version, header_length=header_length
    )


def decode_json(doc: Any) -> InferRequest:
    return decode(orjson.dumps(doc))


def one_input(datatype: str, shape: list[int], data: Any) -> dict[str, Any]:
    return {"inputs": [{"name": "x", "datatype": datatype, "shape": shape, "data": data}]}


def decode_one(datatype: str, shape: list[int], data: Any) -> np.ndarray[Any, Any]:
    (tensor,) = decode_json(one_input(datatype, shape, data)).inputs
    return tensor.data


def binary_body(inputs: list[dict[str, Any]], blobs: list[bytes], **doc: Any) -> tuple[bytes, int]:
    """A binary-extension body built by hand: JSON header, then the blobs as given."""
    header = orjson.dumps({"inputs": inputs, **doc})
    return header + b"".join(blobs), len(header)


def bytes_blob(*items: bytes) -> bytes:
    """BYTES elements as the extension lays them out: a 4-byte little-endian length, then bytes."""
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def read_with_triton(body: bytes, header_length: int | None) -> triton.InferResult:
    return triton.InferResult.from_response_body(body, header_length=header_length)


def assert_same_array(actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> None:
    assert actual.shape == expected.shape
    if expected.dtype == object:
        assert actual.tolist() == expected.tolist()
    else:
        np.testing.assert_array_equal(actual, expected)


# --- requests: every datatype, JSON and binary ---------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_decodes_every_datatype_from_tritonclient(datatype: str, binary: bool) -> None:
    array = SAMPLES[datatype]
    body, header_length = triton_body({"x": (datatype, array, binary)})
    assert (header_length is not None) is binary
    (tensor,) = decode(body, header_length).inputs
    assert tensor.name == "x"
    assert tensor.datatype is Datatype(datatype)
    assert tensor.shape == array.shape
    assert tensor.data.dtype == Datatype(datatype).numpy_dtype
    assert dict(tensor.parameters) == {}  # binary_data_size is consumed by the codec
    assert_same_array(tensor.data, array)
    if datatype == "BYTES":
        assert all(type(item) is bytes for item in tensor.data.ravel())


@pytest.mark.parametrize("datatype", list(BINARY_ONLY))
def test_binary_carries_what_json_cannot(datatype: str) -> None:
    array = BINARY_ONLY[datatype]
    (tensor,) = decode(*triton_body({"x": (datatype, array)})).inputs
    assert tensor.data.dtype == Datatype(datatype).numpy_dtype
    assert_same_array(tensor.data, array)


def test_binary_layout_built_by_hand_with_json_input_between_binary_ones() -> None:
    body, header_length = binary_body(
        [
            {
                "name": "s",
                "datatype": "BYTES",
                "shape": [3],
                "parameters": {"binary_data_size": 17},
            },
            {"name": "j", "datatype": "INT32", "shape": [2], "data": [7, -7]},
            {"name": "f", "datatype": "FP32", "shape": [2], "parameters": {"binary_data_size": 8}},
            {"name": "b", "datatype": "BOOL", "shape": [3], "parameters": {"binary_data_size": 3}},
            {
                "name": "u",
                "datatype": "UINT16",
                "shape": [1],
                "parameters": {"binary_data_size": 2},
            },
        ],
        [
            bytes_blob(b"\x00\xff", b"", "é!".encode()),  # 4+2 + 4+0 + 4+3 = 17
            struct.pack("<2f", 1.5, -2.0),
            b"\x01\x00\x01",
            b"\x02\x01",  # little-endian 258
        ],
    )
    s, j, f, b, u = decode(body, header_length).inputs
    assert s.data.tolist() == [b"\x00\xff", b"", "é!".encode()]
    assert j.data.tolist() == [7, -7]
    assert f.data.tolist() == [1.5, -2.0]
    assert f.data.dtype == np.float32
    assert b.data.tolist() == [True, False, True]
    assert u.data.tolist() == [258]


def test_blobs_are_read_in_input_order() -> None:
    inputs = [
        {"name": "a", "datatype": "INT8", "shape": [1], "parameters": {"binary_data_size": 1}},
        {"name": "b", "datatype": "INT8", "shape": [2], "parameters": {"binary_data_size": 2}},
    ]
    a, b = decode(*binary_body(inputs, [b"\x01", b"\x02\x03"])).inputs
    assert (a.data.tolist(), b.data.tolist()) == ([1], [2, 3])
    a, b = decode(*binary_body(inputs, [b"\x02\x03", b"\x01"])).inputs
    assert (a.data.tolist(), b.data.tolist()) == ([2], [3, 1])


def test_several_inputs_mixing_json_and_binary_from_tritonclient() -> None:
    texts = np.array(["héllo", "", "wörld"], dtype=object)
    body, header_length = triton_body(
        {
            "raw": ("BYTES", BINARY_ONLY["BYTES"]),
            "text": ("BYTES", texts, False),
            "f": ("FP64", BINARY_ONLY["FP64"]),
            "i": ("INT16", SAMPLES["INT16"], False),
            "e": ("FP32", np.zeros((0, 3), dtype=np.float32)),
        }
    )
    raw, text, f, i, e = decode(body, header_length).inputs
    assert [t.name for t in (raw, text, f, i, e)] == ["raw", "text", "f", "i", "e"]
    assert raw.data.tolist() == BINARY_ONLY["BYTES"].tolist()
    assert text.data.tolist() == [b"h\xc3\xa9llo", b"", b"w\xc3\xb6rld"]
    np.testing.assert_array_equal(f.data, BINARY_ONLY["FP64"])
    np.testing.assert_array_equal(i.data, SAMPLES["INT16"])
    assert e.data.shape == (0, 3)
    assert e.data.dtype == np.float32


def test_binary_arrays_are_aligned_writable_copies() -> None:
    array = np.arange(5, dtype=np.float64)
    # a 1-character id makes the JSON header an odd length, so the blob starts misaligned
    for request_id in ("a", "ab"):
        body, header_length = triton_body({"x": ("FP64", array)}, request_id=request_id)
        (tensor,) = decode(body, header_length).inputs
        assert tensor.data.flags.aligned
        assert tensor.data.flags.writeable
        assert not np.shares_memory(tensor.data, np.frombuffer(body, dtype=np.uint8))
        tensor.data[0] = 42.0
        assert tensor.data.tolist() == [42.0, 1.0, 2.0, 3.0, 4.0]


def test_nested_and_flat_data_decode_alike() -> None:
    nested = decode_one("INT32", [2, 3], [[1, 2, 3], [4, 5, 6]])
    flat = decode_one("INT32", [2, 3], [1, 2, 3, 4, 5, 6])
    assert nested.shape == flat.shape == (2, 3)
    assert nested.tolist() == flat.tolist() == [[1, 2, 3], [4, 5, 6]]
    words = decode_one("BYTES", [2, 2], [["a", "b"], ["c", "d"]])
    assert words.tolist() == decode_one("BYTES", [2, 2], ["a", "b", "c", "d"]).tolist()
    assert words.tolist() == [[b"a", b"b"], [b"c", b"d"]]
    # nesting that differs from the shape is read row-major, as Triton does
    assert decode_one("FP64", [4], [[1, 2], [3, 4]]).tolist() == [1.0, 2.0, 3.0, 4.0]


def test_json_numbers_and_nulls() -> None:
    fp32 = decode_one("FP32", [2, 2], [[1, None], [2.5, 3]])
    assert fp32.dtype == np.float32
    assert np.isnan(fp32[0, 1])
    assert fp32[~np.isnan(fp32)].tolist() == [1.0, 2.5, 3.0]
    assert np.isnan(decode_one("FP64", [2], [None, None])).all()
    fp16 = decode_one("FP16", [3], [0.5, 65504, -2])
    assert fp16.dtype == np.float16
    assert fp16.tolist() == [0.5, 65504.0, -2.0]
    # integers beyond 64 bits are still numbers for FP64
    big = decode(
        b'{"inputs":[{"name":"x","datatype":"FP64","shape":[1],"data":[18446744073709551616]}]}'
    )
    assert big.inputs[0].data.tolist() == [2.0**64]


def test_uint64_above_int64_mixed_with_small_values_is_exact() -> None:
    # numpy reads [1, 2**63] as float64; the codec must still deliver exact UINT64 values
    data = [[1, 2**63], [2**64 - 1, 0], [2**64 - 2, 3]]
    array = decode_one("UINT64", [3, 2], data)
    assert array.dtype == np.uint64
    assert array.tolist() == data
    assert decode_one("UINT64", [2], [2**63 + 1, 7]).tolist() == [2**63 + 1, 7]


def test_large_integer_arrays_of_zeros_and_ones_are_not_mistaken_for_booleans() -> None:
    data = [0, 1] * 50
    assert decode_one("INT8", [100], data).tolist() == data
    assert decode_one("FP32", [10, 10], [data[i : i + 10] for i in range(0, 100, 10)]).sum() == 50


@pytest.mark.parametrize(
    ("datatype", "shape", "data"),
    [
        ("FP32", [0, 3], []),
        ("INT8", [2, 0], [[], []]),
        ("BYTES", [0], []),
        ("BYTES", [1, 0], [[]]),
        ("BOOL", [0], []),
    ],
)
def test_empty_tensors(datatype: str, shape: list[int], data: Any) -> None:
    array = decode_one(datatype, shape, data)
    assert array.shape == tuple(shape)
    assert array.dtype == Datatype(datatype).numpy_dtype


def test_scalar_shape_takes_one_element() -> None:
    array = decode_one("INT64", [], [5])
    assert array.shape == ()
    assert array.item() == 5


def test_decodes_request_fields_parameters_and_requested_outputs() -> None:
    body, header_length = triton_body(
        {"x": ("INT64", np.array([1, 2]))},
        outputs=[
            triton.InferRequestedOutput("y"),
            triton.InferRequestedOutput("z", binary_data=False),
        ],
        request_id="req-1",
        sequence_id="session-7",
        priority=3,
        timeout=5000,
        parameters={"flag": True, "n": -4, "ratio": 0.25, "label": "cat"},
    )
    request = decode(body, header_length, model_version="3")
    assert request.model_name == "model"
    assert request.model_version == "3"
    assert request.id == "req-1"
    assert dict(request.parameters) == {
        "sequence_id": "session-7",
        "sequence_start": False,
        "sequence_end": False,
        "priority": 3,
        "timeout": 5000,
        "flag": True,
        "n": -4,
        "ratio": 0.25,
        "label": "cat",
    }
    assert [(o.name, o.binary, dict(o.parameters)) for o in request.outputs] == [
        ("y", True, {}),
        ("z", False, {}),
    ]
    assert request.binary_output is False


def test_no_requested_outputs_means_binary_data_output_from_tritonclient() -> None:
    request = decode(*triton_body({"x": ("FP32", SAMPLES["FP32"])}))
    assert request.outputs == ()
    assert request.binary_output is True
    assert "binary_data_output" not in request.parameters
    assert request.id is None
    assert request.model_version is None


def test_plain_json_request_defaults() -> None:
    request = decode_json(
        {
            "id": "r",
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [1],
                    "data": [1],
                    "parameters": {"content_type": "np", "binary_data": True},
                }
            ],
            "outputs": [{"name": "y", "parameters": {"custom": 1}}],
            "parameters": {"binary_data_output": False},
        }
    )
    assert request.id == "r"
    assert request.binary_output is False
    assert dict(request.parameters) == {}
    assert dict(request.inputs[0].parameters) == {"content_type": "np", "binary_data": True}
    assert request.outputs == (RequestedOutput("y", None, {"custom": 1}),)


def test_header_length_may_cover_the_whole_body() -> None:
    body = orjson.dumps(one_input("INT8", [1], [3]))
    assert decode(body, len(body)).inputs[0].data.tolist() == [3]


# --- request errors: JSON data --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("datatype", "value", "bounds"),
    [
        ("INT8", 128, r"\[-128, 127\]"),
        ("INT8", -129, r"\[-128, 127\]"),
        ("UINT8", 256, r"\[0, 255\]"),
        ("UINT8", -1, r"\[0, 255\]"),
        ("INT16", 32768, r"\[-32768, 32767\]"),
        ("UINT16", 65536, r"\[0, 65535\]"),
        ("INT32", -(2**31) - 1, r"\[-2147483648, 2147483647\]"),
        ("UINT32", 2**32, r"\[0, 4294967295\]"),
        ("UINT32", -1, r"\[0, 4294967295\]"),
        ("INT64", 2**63, r"\[-9223372036854775808, 9223372036854775807\]"),
        ("UINT64", -1, r"\[0, 18446744073709551615\]"),
    ],
)
def test_out_of_range_integers_name_element_and_bounds(
    datatype: str, value: int, bounds: str
) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"input 'x' \({datatype}\): element 1 \({value}\) is out of range {bounds}",
    ):
        decode_one(datatype, [2], [1, value])


def test_out_of_range_is_found_in_mixed_signs_of_64_bit_data() -> None:
    body = (
        b'{"inputs":[{"name":"x","datatype":"INT64","shape":[2],"data":[-1,18446744073709551615]}]}'
    )
    with pytest.raises(
        InvalidInputError, match=r"input 'x' \(INT64\): element 1 \(18446744073709551615\)"
    ):
        decode(body)


def test_integer_beyond_uint64_is_refused() -> None:
    # orjson reads integers past 2**64 as floats, so this is "not an integer"
    body = (
        b'{"inputs":[{"name":"x","datatype":"UINT64","shape":[1],"data":[18446744073709551616]}]}'
    )
    with pytest.raises(
        InvalidInputError,
        match=r"input 'x' \(UINT64\): element 0 .*UINT64 data must be JSON integers",
    ):
        decode(body)


@pytest.mark.parametrize(("datatype", "value"), [("FP32", 1e39), ("FP16", 70000.0)])
def test_floats_beyond_their_range_are_refused_without_a_numpy_warning(
    datatype: str, value: float
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(
            InvalidInputError,
            match=rf"input 'x' \({datatype}\): a value is out of the {datatype} range",
        ):
            decode_one(datatype, [2], [1.0, value])


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "index", "shown", "expected"),
    [
        ("FP32", [2], [1.5, True], 1, "true", "JSON numbers"),
        ("FP64", [2], [False, True], 0, "false", "JSON numbers"),
        ("INT32", [2, 2], [[2, 3], [True, 4]], 2, "true", "JSON integers"),
        ("UINT8", [2], [False, 7], 0, "false", "JSON integers"),
        ("INT64", [70], [2] * 69 + [True], 69, "true", "JSON integers"),
        ("FP32", [2, 35], [[2.5] * 35, [2.5] * 34 + [False]], 69, "false", "JSON numbers"),
        ("BOOL", [2], [True, 1], 1, "1", "JSON booleans"),
        ("BOOL", [2], [0, 1], 0, "0", "JSON booleans"),
    ],
)
def test_booleans_and_numbers_do_not_mix(
    datatype: str, shape: list[int], data: Any, index: int, shown: str, expected: str
) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"input 'x' \({datatype}\): element {index} is {shown} \(a (boolean|number)\); "
        rf"{datatype} data must be {expected}",
    ):
        decode_one(datatype, shape, data)


@pytest.mark.parametrize(
    ("datatype", "data", "message"),
    [
        ("INT32", [1, 1.5], r"element 1 is 1\.5 \(a number\); INT32 data must be JSON integers"),
        ("INT8", [None, 1], r"element 0 is null \(null\); INT8 data must be JSON integers"),
        ("UINT16", [1, "2"], r'element 1 is "2" \(a string\); UINT16 data must be JSON integers'),
        ("FP32", ["1.5", 2], r'element 0 is "1\.5" \(a string\); FP32 data must be JSON numbers'),
        ("FP64", [1, {"a": 1}], r"element 1 is \{\"a\":1\} \(an object\); FP64 data must be"),
        ("FP32", [True, None], r"element 0 is true \(a boolean\)"),
        (
            "BOOL",
            [True, "false"],
            r'element 1 is "false" \(a string\); BOOL data must be JSON booleans',
        ),
        ("BYTES", ["a", 1], r"element 1 is 1 \(a number\); BYTES data must be JSON strings"),
        # null is a missing value (the signature decides): the first non-string is named
        (
            "BYTES",
            [None, 2],
            r"element 1 is 2 \(a number\); BYTES data must be JSON strings or null",
        ),
        (
            "BYTES",
            ["a", {"b64": "AA=="}],
            r"element 1 is \{\"b64\":\"AA==\"\} \(an object\).*binary data",
        ),
    ],
)
def test_elements_of_the_wrong_json_type(datatype: str, data: list[Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=rf"input 'x' \({datatype}\): {message}"):
        decode_one(datatype, [2], data)


@pytest.mark.parametrize(
    ("datatype", "data"),
    [
        ("INT32", [[1, 2], [3]]),
        ("INT32", [[1, 2], 3]),
        ("FP32", [[1, None], [2]]),
        ("BOOL", [[True], [False, True]]),
        ("BYTES", [["a", "b"], ["c"]]),
        ("BYTES", [["a", "b"], "c"]),
    ],
)
def test_ragged_data_is_refused(datatype: str, data: list[Any]) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"input 'x' \({datatype}\): data is not rectangular \(nested arrays of unequal length\)",
    ):
        decode_one(datatype, [3], data)


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "count", "needs"),
    [
        ("FP32", [2, 2], [1, 2, 3], 3, 4),
        ("INT8", [3], [[1, 2], [3, 4]], 4, 3),
        ("BYTES", [2, 2], ["a", "b"], 2, 4),
        ("BOOL", [1], [], 0, 1),
        ("INT64", [0], [1], 1, 0),
    ],
)
def test_element_count_must_match_shape(
    datatype: str, shape: list[int], data: list[Any], count: int, needs: int
) -> None:
    shown = str(shape).replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(
        InvalidInputError,
        match=rf"input 'x' \({datatype}\): data has {count} elements but shape {shown} needs {needs}",
    ):
        decode_one(datatype, shape, data)


@pytest.mark.parametrize("data", [5, "abc", {"a": [1]}, None])
def test_data_must_be_an_array(data: Any) -> None:
    with pytest.raises(
        InvalidInputError, match=r"input 'x' \(FP32\): \"data\" must be a JSON array"
    ):
        decode_one("FP32", [1], data)


# --- request errors: structure --------------------------------------------------------------------


def test_bf16_is_refused_with_what_to_send() -> None:
    with pytest.raises(
        InvalidInputError, match="input 'x': datatype BF16 is not supported; send FP32 or FP16"
    ):
        decode_one("BF16", [1], [1.0])


@pytest.mark.parametrize(
    ("datatype", "shown"),
    [
        ("fp32", '"fp32"'),
        ("STRING", '"STRING"'),
        (None, "null"),
        (3, "3"),
        ([], r"\[\]"),  # unhashable: once a TypeError (a 500) on the short path
        ({"FP32": 1}, r'\{"FP32":1\}'),
    ],
)
def test_unknown_datatype_lists_the_choices(datatype: Any, shown: str) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"input 'x': unknown datatype {shown}; expected one of BOOL, UINT8, .*FP64, BYTES",
    ):
        decode_one(datatype, [1], [1])


@pytest.mark.parametrize(
    ("shape", "shown"),
    [
        ([-1, 2], r"\[-1,2\]"),
        ([True], r"\[true\]"),
        ([1.0], r"\[1\.0\]"),
        ("2", '"2"'),
        (None, "null"),
    ],
)
def test_shape_must_be_non_negative_integers(shape: Any, shown: str) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"input 'x': \"shape\" must be a list of non-negative integers, got {shown}",
    ):
        decode_one("FP32", shape, [1.0, 2.0])


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, r'request needs "inputs": a non-empty array of input tensors'),
        ({"inputs": []}, r'request needs "inputs"'),
        ({"inputs": {"x": [1]}}, r'request needs "inputs"'),
        ({"inputs": [5]}, r"inputs\[0\] must be a JSON object, not a number"),
        ({"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}, r'inputs\[0\] needs a "name" string'),
        ({"inputs": [{"name": "", "datatype": "FP32", "shape": [1], "data": [1]}]}, r'inputs\[0\] needs a "name"'),
        ({"inputs": [{"name": 7, "datatype": "FP32", "shape": [1], "data": [1]}]}, r'inputs\[0\] needs a "name"'),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [1]}]}, r"input 'x' has neither \"data\" nor \"binary_data_size\""),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1], "parameters": {"binary_data_size": 4}}]},
            r"input 'x' has both \"data\" and \"binary_data_size\"; send one",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": -4}}]},
            r"input 'x': \"binary_data_size\" must be a non-negative integer",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": True}}]},
            r"input 'x': \"binary_data_size\" must be a non-negative integer",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": "4"}}]},
            r"input 'x': \"binary_data_size\" must be a non-negative integer",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": [1]}, {"name": "x", "datatype": "INT8", "shape": [1], "data": [2]}]},
            r"input\(s\) \['x'\] appear more than once in the request",
        ),
    ],
)  # fmt: skip
def test_malformed_inputs_name_the_problem(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_json(doc)


def test_duplicate_names_are_all_listed() -> None:
    tensor = {"datatype": "INT8", "shape": [1], "data": [1]}
    doc = {"inputs": [{"name": n, **tensor} for n in ("b", "a", "b", "c", "a")]}
    with pytest.raises(InvalidInputError, match=r"input\(s\) \['a', 'b'\] appear more than once"):
        decode_json(doc)


def with_request(**doc: Any) -> dict[str, Any]:
    return {**one_input("FP32", [1], [1.0]), **doc}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (with_request(parameters=[1]), r'request: "parameters" must be a JSON object'),
        (with_request(parameters={"p": None}), r"request: parameter 'p' must be a string, number or boolean, not null"),
        (with_request(parameters={"p": [1]}), r"request: parameter 'p' must be a string, number or boolean, not an array"),
        (with_request(parameters={"p": {"a": 1}}), r"request: parameter 'p' .* not an object"),
        (with_request(parameters={"binary_data_output": 1}), r'request parameter "binary_data_output" must be true or false'),
        (with_request(parameters={"binary_data_output": "true"}), r'"binary_data_output" must be true or false'),
        (with_request(id=5), r'request "id" must be a string, not a number'),
        (with_request(outputs={"name": "y"}), r'"outputs" must be an array of requested outputs'),
        (with_request(outputs=["y"]), r'outputs\[0\] must be an object with a "name" string'),
        (with_request(outputs=[{"name": "y"}, {}]), r'outputs\[1\] must be an object with a "name" string'),
        (with_request(outputs=[{"name": "y"}, {"name": "y"}]), r"output\(s\) \['y'\] appear more than once"),
        (with_request(outputs=[{"name": "y", "parameters": {"binary_data": 1}}]), r"output 'y': \"binary_data\" must be true or false"),
        (with_request(outputs=[{"name": "y", "parameters": {"classification": 2}}]), r"output 'y': parameter 'classification' is not supported by this server"),
        (with_request(outputs=[{"name": "y", "parameters": {"shared_memory_region": "r"}}]), r"output 'y': parameter 'shared_memory_region' is not supported"),
        (with_request(outputs=[{"name": "y", "parameters": 3}]), r"output 'y': \"parameters\" must be a JSON object"),
    ],
)  # fmt: skip
def test_bad_parameters_ids_and_outputs(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_json(doc)


@pytest.mark.parametrize(
    "key", ["shared_memory_region", "shared_memory_byte_size", "shared_memory_offset"]
)
def test_shared_memory_inputs_are_refused(key: str) -> None:
    doc = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "parameters": {key: 1}}]}
    with pytest.raises(
        InvalidInputError, match=f"input 'x': parameter '{key}' is not supported by this server"
    ):
        decode_json(doc)


def test_input_parameter_of_the_wrong_type() -> None:
    doc = one_input("FP32", [1], [1.0])
    doc["inputs"][0]["parameters"] = {"unit": ["cm"]}
    with pytest.raises(
        InvalidInputError,
        match=r"input 'x': parameter 'unit' must be a string, number or boolean, not an array",
    ):
        decode_json(doc)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", r"request body must be a JSON object, not an array"),
        (b'"x"', r"request body must be a JSON object, not a string"),
        (b"{", rf"request body is not valid JSON: .*send the {HEADER_LENGTH_FIELD} header"),
        (b"", r"request body is not valid JSON"),
        (b'{"inputs": [1e400]}', r"request body is not valid JSON"),
    ],
)
def test_body_that_is_not_a_json_object(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode(body)


def test_binary_body_without_the_header_length_gets_a_hint() -> None:
    body, _ = triton_body({"x": ("FP32", SAMPLES["FP32"])})
    with pytest.raises(
        InvalidInputError,
        match=rf"request body is not valid JSON: .*\(if the body carries binary tensor data, "
        rf"send the {HEADER_LENGTH_FIELD} header\)",
    ):
        decode(body)


# --- request errors: binary data ------------------------------------------------------------------


def test_header_length_zero_is_for_raw_binary_requests_only() -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"{HEADER_LENGTH_FIELD}: 0 marks a raw binary request, .* send a JSON header instead",
    ):
        decode(b"\x00\x00\x80\x3f", 0)


def test_header_length_longer_than_the_body() -> None:
    body, header_length = triton_body({"x": ("INT8", SAMPLES["INT8"])})
    with pytest.raises(
        InvalidInputError,
        match=rf"{HEADER_LENGTH_FIELD} is {len(body) + 1} but the body has only {len(body)} bytes",
    ):
        decode(body, len(body) + 1)
    assert header_length is not None
    assert decode(body, header_length).inputs[0].data.tolist() == [-128, 0, 127]


@pytest.mark.parametrize("delta", [-3, 2])
def test_header_length_that_misses_the_json_end(delta: int) -> None:
    body, header_length = triton_body({"x": ("INT8", SAMPLES["INT8"])})
    assert header_length is not None
    with pytest.raises(
        InvalidInputError,
        match=rf"request body is not valid JSON: .*\(the JSON header is the first "
        rf"{header_length + delta} bytes, per {HEADER_LENGTH_FIELD}\)",
    ):
        decode(body, header_length + delta)


def test_binary_data_size_without_header_length() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP32",
                    "shape": [1],
                    "parameters": {"binary_data_size": 4},
                }
            ]
        }
    )
    with pytest.raises(
        InvalidInputError,
        match=rf"inputs declare 4 bytes of binary data but the request has no {HEADER_LENGTH_FIELD} header",
    ):
        decode(header)


def test_declared_sizes_must_add_up_to_the_bytes_after_the_header() -> None:
    body, header_length = triton_body(
        {"a": ("FP32", np.ones(2, np.float32)), "b": ("INT32", np.ones(2, np.int32))}
    )
    assert header_length is not None
    for wrong, available in ((body[:-8], 8), (body + b"\x00" * 4, 20)):
        with pytest.raises(
            InvalidInputError,
            match=rf"inputs declare 16 bytes of binary data \(binary_data_size\) but {available} "
            rf"bytes follow the {header_length}-byte JSON header",
        ):
            decode(wrong, header_length)


def test_bytes_after_the_header_but_no_binary_input() -> None:
    header = orjson.dumps(one_input("INT8", [1], [1]))
    with pytest.raises(
        InvalidInputError,
        match="3 bytes follow the JSON header but no input has a binary_data_size",
    ):
        decode(header + b"abc", len(header))


def test_binary_size_must_match_shape_and_datatype() -> None:
    body, header_length = binary_body(
        [
            {"name": "a", "datatype": "INT8", "shape": [2], "parameters": {"binary_data_size": 2}},
            {"name": "x", "datatype": "FP32", "shape": [4], "parameters": {"binary_data_size": 12}},
        ],
        [b"\x01\x02", b"\x00" * 12],
    )
    with pytest.raises(
        InvalidInputError,
        match=r"input 'x': binary_data_size is 12 bytes but FP32 shape \[4\] needs 16",
    ):
        decode(body, header_length)


@pytest.mark.parametrize(
    ("shape", "blob", "message"),
    [
        ([2], bytes_blob(b"a"), r"BYTES binary data ends before element 1 of 2 \(each element is a 4-byte little-endian length"),
        ([2], bytes_blob(b"a") + b"\x01\x00", r"BYTES binary data ends before element 1 of 2"),
        ([1], struct.pack("<I", 5) + b"ab", r"BYTES element 0 claims 5 bytes but only 2 remain"),
        ([1], bytes_blob(b"a") + b"xyz", r"binary_data_size is 8 bytes but its 1 BYTES elements use 5"),
        ([0], b"\x00", r"binary_data_size is 1 bytes but its 0 BYTES elements use 0"),
        # big-endian lengths are not the extension's layout
        ([1], struct.pack(">I", 2) + b"ab", r"BYTES element 0 claims 33554432 bytes but only 2 remain"),
    ],
)  # fmt: skip
def test_malformed_binary_bytes(shape: list[int], blob: bytes, message: str) -> None:
    body, header_length = binary_body(
        [{"name": "s", "datatype": "BYTES", "shape": shape, "parameters": {"binary_data_size": len(blob)}}],
        [blob],
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match=rf"input 's': {message}"):
        decode(body, header_length)


def test_binary_bool_bytes_must_be_zero_or_one() -> None:
    body, header_length = binary_body(
        [{"name": "b", "datatype": "BOOL", "shape": [3], "parameters": {"binary_data_size": 3}}],
        [b"\x00\x01\x02"],
    )
    with pytest.raises(InvalidInputError, match="input 'b': BOOL binary data must be bytes 0 or 1"):
        decode(body, header_length)


# --- raw binary requests (Inference-Header-Content-Length: 0) -------------------------------------


def decode_raw(body: bytes, datatype: str, shape: tuple[int, ...]) -> InferRequest:
    return decode_raw_binary_request(
        body,
        input_meta=TensorMetadata("x", Datatype(datatype), shape),
        model_name="model",
        model_version="2",
    )


@pytest.mark.parametrize("datatype", [d for d in SAMPLES if d != "BYTES"])
def test_raw_binary_body_is_one_input_of_any_fixed_size_datatype(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = decode_raw(array.tobytes(), datatype, array.shape)
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", Datatype(datatype), array.shape)
    assert tensor.data.dtype == Datatype(datatype).numpy_dtype
    np.testing.assert_array_equal(tensor.data, array)
    assert (request.model_name, request.model_version) == ("model", "2")
    assert request.binary_output is True
    assert request.outputs == ()


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((-1, 3), (2, 3)),
        ((-1, 3), (1, 3)),
        ((3, -1), (3, 4)),
        ((-1,), (6,)),
        ((2, -1, 2), (2, 3, 2)),
    ],
)
def test_raw_binary_deduces_the_variable_dimension(
    shape: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    array = np.arange(np.prod(expected), dtype=np.float32).reshape(expected)
    (tensor,) = decode_raw(array.tobytes(), "FP32", shape).inputs
    assert tensor.shape == expected
    np.testing.assert_array_equal(tensor.data, array)
    assert tensor.data.flags.writeable
    assert tensor.data.flags.aligned


@pytest.mark.parametrize("shape", [(1,), (-1,), (1, -1)])
def test_raw_binary_bytes_input_is_the_whole_body_as_one_element(shape: tuple[int, ...]) -> None:
    body = b"\x00\xff\x01 not utf-8 \xc3"
    (tensor,) = decode_raw(body, "BYTES", shape).inputs
    assert tensor.shape == (1,) * len(shape)
    assert tensor.data.ravel().tolist() == [body]  # no 4-byte length prefix in a raw body


@pytest.mark.parametrize(
    ("body", "datatype", "shape", "message"),
    [
        (b"", "FP32", (-1,), r"raw binary request for input 'x' has an empty body"),
        (b"", "BYTES", (1,), r"raw binary request for input 'x' has an empty body"),
        (b"\x00" * 8, "FP32", (-1, -1), r"input 'x' has shape \[-1, -1\]: with more than one variable dimension .* send a JSON header"),
        (b"\x00" * 10, "FP32", (2, 3), r"raw binary body of 10 bytes does not fit input 'x' \(FP32\[2, 3\] needs 24 bytes\)"),
        (b"\x00" * 10, "FP32", (-1, 3), r"raw binary body of 10 bytes does not fit input 'x' \(FP32\[-1, 3\] needs a multiple of 12 bytes\)"),
        (b"\x00" * 3, "INT16", (-1,), r"does not fit input 'x' \(INT16\[-1\] needs a multiple of 2 bytes\)"),
        (b"ab", "BYTES", (2,), r"input 'x' has shape \[2\]; a raw binary BYTES input must hold exactly one element"),
        (b"ab", "BYTES", (-1, 2), r"input 'x' has shape \[-1, 2\]; a raw binary BYTES input must hold exactly one element"),
        (b"\x01\x02", "BOOL", (-1,), r"input 'x': BOOL binary data must be bytes 0 or 1"),
    ],
)  # fmt: skip
def test_raw_binary_errors(
    body: bytes, datatype: str, shape: tuple[int, ...], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_raw(body, datatype, shape)


# --- responses ------------------------------------------------------------------------------------


def response_of(*tensors: Tensor, **kwargs: Any) -> InferResponse:
    return InferResponse("model", tensors, **kwargs)


def sample_tensor(name: str, datatype: str, array: np.ndarray[Any, Any]) -> Tensor:
    return Tensor(name, Datatype(datatype), array.shape, array)


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_tritonclient_reads_every_datatype_we_encode_as_binary(datatype: str) -> None:
    array = SAMPLES[datatype]
    response = response_of(sample_tensor("y", datatype, array), model_version="2", id="r")
    body, header_length = encode_infer_response(
        response, InferRequest("model", (), binary_output=True)
    )
    assert header_length is not None
    header = orjson.loads(body[:header_length])
    assert "data" not in header["outputs"][0]
    assert header["outputs"][0]["parameters"] == {"binary_data_size": len(body) - header_length}
    result = read_with_triton(body, header_length)
    assert_same_array(result.as_numpy("y"), array)
    assert result.get_output("y")["datatype"] == datatype
    assert result.get_response()["model_version"] == "2"
    assert result.get_response()["id"] == "r"


@pytest.mark.parametrize("datatype", list(SAMPLES))
def test_tritonclient_reads_every_datatype_we_encode_as_json(datatype: str) -> None:
    array = SAMPLES[datatype]
    body, header_length = encode_infer_response(
        response_of(sample_tensor("y", datatype, array)), InferRequest("model", ())
    )
    assert header_length is None
    doc = orjson.loads(body)
    assert doc["outputs"][0]["shape"] == list(array.shape)
    data = doc["outputs"][0]["data"]  # flat, row-major
    if datatype == "BYTES":
        assert data == [item.decode() for item in array.ravel().tolist()]
    else:
        np.testing.assert_array_equal(np.array(data, dtype=array.dtype), array.ravel())
    read = read_with_triton(body, None).as_numpy("y")
    if datatype == "BYTES":  # tritonclient keeps JSON strings as str
        assert read.tolist() == [[b.decode() for b in row] for row in array.tolist()]
    else:
        np.testing.assert_array_equal(read, array)
        assert read.dtype == array.dtype


@pytest.mark.parametrize("datatype", list(BINARY_ONLY))
def test_binary_responses_carry_nan_infinities_and_raw_bytes(datatype: str) -> None:
    array = BINARY_ONLY[datatype]
    request = InferRequest("model", (), outputs=(RequestedOutput("y", binary=True),))
    body, header_length = encode_infer_response(
        response_of(sample_tensor("y", datatype, array)), request
    )
    assert_same_array(read_with_triton(body, header_length).as_numpy("y"), array)


def test_binary_response_layout_by_hand() -> None:
    response = response_of(
        Tensor("s", Datatype.BYTES, (2,), np.array([b"\xff", "é"], dtype=object)),
        Tensor("i", Datatype.INT16, (2,), np.array([1, -2], dtype=np.int16)),
        Tensor("b", Datatype.BOOL, (2,), np.array([True, False])),
    )
    body, header_length = encode_infer_response(
        response, InferRequest("model", (), binary_output=True)
    )
    assert header_length is not None
    header = orjson.loads(body[:header_length])
    assert [o["parameters"]["binary_data_size"] for o in header["outputs"]] == [4 + 1 + 4 + 2, 4, 2]
    assert body[header_length:] == (
        bytes_blob(b"\xff", "é".encode()) + struct.pack("<2h", 1, -2) + b"\x01\x00"
    )


def test_nan_and_infinities_become_null_in_json() -> None:
    body, _ = encode_infer_response(
        response_of(
            Tensor("f", Datatype.FP32, (3,), np.array([np.nan, np.inf, 1.5], np.float32)),
            Tensor("h", Datatype.FP16, (2,), np.array([-np.inf, 0.5], np.float16)),
            Tensor("d", Datatype.FP64, (1,), np.array([np.nan])),
        ),
        InferRequest("model", ()),
    )
    assert [o["data"] for o in orjson.loads(body)["outputs"]] == [
        [None, None, 1.5],
        [None, 0.5],
        [None],
    ]


def test_binary_data_per_output_overrides_binary_data_output() -> None:
    response = response_of(
        Tensor("a", Datatype.INT32, (2,), np.array([1, 2], np.int32)),
        Tensor("b", Datatype.FP64, (1,), np.array([0.5])),
        Tensor("c", Datatype.BYTES, (1,), np.array([b"z"], dtype=object)),
    )

    def layout(request: InferRequest) -> dict[str, str]:
        body, header_length = encode_infer_response(response, request)
        header = orjson.loads(body if header_length is None else body[:header_length])
        result = read_with_triton(body, header_length)
        assert result.as_numpy("a").tolist() == [1, 2]
        assert result.as_numpy("b").tolist() == [0.5]
        return {o["name"]: "data" if "data" in o else "binary" for o in header["outputs"]}

    everything_binary = InferRequest(
        "model",
        (),
        outputs=(RequestedOutput("a", binary=False), RequestedOutput("b"), RequestedOutput("c")),
        binary_output=True,
    )
    assert layout(everything_binary) == {"a": "data", "b": "binary", "c": "binary"}
    json_by_default = InferRequest(
        "model", (), outputs=(RequestedOutput("b", binary=True), RequestedOutput("c", None))
    )
    assert layout(json_by_default) == {"a": "data", "b": "binary", "c": "data"}
    assert layout(InferRequest("model", ())) == {"a": "data", "b": "data", "c": "data"}


def test_json_response_document_exactly() -> None:
    transposed = np.arange(6, dtype=np.int64).reshape(2, 3).T
    response = response_of(
        Tensor("t", Datatype.INT64, (3, 2), transposed, parameters={"unit": "cm"}),
        Tensor("w", Datatype.BYTES, (2,), np.array(["a", "bé"])),
        model_version="7",
        id="abc",
        parameters={"took_ms": np.float64(1.5), "n": np.int32(2)},
    )
    body, header_length = encode_infer_response(response, InferRequest("model", ()))
    assert header_length is None
    assert orjson.loads(body) == {
        "model_name": "model",
        "model_version": "7",
        "id": "abc",
        "parameters": {"took_ms": 1.5, "n": 2},
        "outputs": [
            {
                "name": "t",
                "datatype": "INT64",
                "shape": [3, 2],
                "parameters": {"unit": "cm"},
                "data": [0, 3, 1, 4, 2, 5],
            },
            {"name": "w", "datatype": "BYTES", "shape": [2], "data": ["a", "bé"]},
        ],
    }


def test_unversioned_response_without_id_omits_them() -> None:
    body, _ = encode_infer_response(
        response_of(Tensor("y", Datatype.BOOL, (1,), np.array([True]))), InferRequest("model", ())
    )
    assert orjson.loads(body) == {
        "model_name": "model",
        "outputs": [{"name": "y", "datatype": "BOOL", "shape": [1], "data": [True]}],
    }


def test_binary_output_keeps_its_own_parameters() -> None:
    tensor = Tensor("y", Datatype.FP32, (2,), np.ones(2, np.float32), parameters={"unit": "kg"})
    body, header_length = encode_infer_response(
        response_of(tensor), InferRequest("model", (), binary_output=True)
    )
    assert header_length is not None
    assert orjson.loads(body[:header_length])["outputs"][0]["parameters"] == {
        "unit": "kg",
        "binary_data_size": 8,
    }
    assert dict(tensor.parameters) == {"unit": "kg"}  # the response's tensor is not modified


def test_empty_binary_output_still_has_a_header_length() -> None:
    tensor = Tensor("e", Datatype.FP32, (0, 3), np.zeros((0, 3), np.float32))
    body, header_length = encode_infer_response(
        response_of(tensor), InferRequest("model", (), binary_output=True)
    )
    assert header_length == len(body)
    assert read_with_triton(body, header_length).as_numpy("e").shape == (0, 3)


def test_non_utf8_bytes_as_json_tell_the_client_to_ask_for_binary() -> None:
    response = response_of(Tensor("raw", Datatype.BYTES, (1,), np.array([b"\xff"], dtype=object)))
    with pytest.raises(
        InvalidInputError,
        match=r"output 'raw' holds bytes that are not UTF-8 text and cannot be sent as JSON; "
        r'request it with "binary_data": true',
    ):
        encode_infer_response(response, InferRequest("model", ()))
    body, header_length = encode_infer_response(
        response, InferRequest("model", (), outputs=(RequestedOutput("raw", binary=True),))
    )
    assert read_with_triton(body, header_length).as_numpy("raw").tolist() == [b"\xff"]


def test_round_trip_through_our_own_decoder() -> None:
    """A binary response body is a valid binary request body with outputs renamed to inputs."""
    tensors = tuple(
        sample_tensor(name.lower(), name, BINARY_ONLY.get(name, array))
        for name, array in SAMPLES.items()
    )
    body, header_length = encode_infer_response(
        response_of(*tensors), InferRequest("model", (), binary_output=True)
    )
    assert header_length is not None
    header = orjson.loads(body[:header_length])
    request_header = orjson.dumps({"inputs": header["outputs"]})
    decoded = decode(request_header + body[header_length:], len(request_header)).inputs
    for original, back in zip(tensors, decoded, strict=True):
        assert (back.name, back.datatype, back.shape) == (
            original.name,
            original.datatype,
            original.shape,
        )
        assert_same_array(back.data, original.data)


# --- metadata and errors --------------------------------------------------------------------------


def test_model_metadata_document() -> None:
    meta = ModelMetadata(
        name="iris",
        versions=("1", "2"),
        platform="seaway_sklearn",
        inputs=(TensorMetadata("x", Datatype.FP64, (-1, 4)),),
        outputs=(
            TensorMetadata("label", Datatype.BYTES, (-1,)),
            TensorMetadata("proba", Datatype.FP32, (-1, 3)),
        ),
    )
    assert orjson.loads(encode_model_metadata(meta)) == {
        "name": "iris",
        "versions": ["1", "2"],
        "platform": "seaway_sklearn",
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 4]}],
        "outputs": [
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
            {"name": "proba", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }


def test_model_metadata_without_versions_omits_the_key() -> None:
    meta = ModelMetadata("m", (), "seaway_onnx", (), ())
    assert orjson.loads(encode_model_metadata(meta)) == {
        "name": "m",
        "platform": "seaway_onnx",
        "inputs": [],
        "outputs": [],
    }


@pytest.mark.parametrize("message", ["plain", 'quote " and \\ backslash', "naïve\nline"])
def test_error_body(message: str) -> None:
    body = encode_error(message)
    assert orjson.loads(body) == {"error": message}
    assert list(orjson.loads(body)) == ["error"]


PLAIN = [
    {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [1.5, 2, -3]}]},
    {
        "id": "req-1",
        "inputs": [
            {"name": "a", "datatype": "INT8", "shape": [2], "data": [[-128], [127]]},
            {"shape": [3], "data": [True, False, True], "datatype": "BOOL", "name": "b"},
            {"name": "c", "datatype": "FP16", "shape": [0, 2], "data": []},
        ],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
    },
    {
        "inputs": [{"name": "u", "datatype": "UINT64", "shape": [2], "data": [0, 2**64 - 1]}],
        "outputs": [],
    },
]


@pytest.mark.parametrize("doc", PLAIN)
def test_plain_requests_decode_as_the_checked_path_does(doc: dict[str, Any]) -> None:
    """Plain requests take a short path; the same request with an (empty) "parameters" takes the
    checked one. Both must give the same request."""
    short = decode_json(doc)
    checked = decode_json({**doc, "parameters": {}})
    assert [t.data.dtype for t in short.inputs] == [t.data.dtype for t in checked.inputs]
    assert all(
        np.array_equal(a.data, b.data) for a, b in zip(short.inputs, checked.inputs, strict=True)
    )

    def described(request: InferRequest) -> list[Any]:
        return [(t.name, t.datatype, t.shape, dict(t.parameters)) for t in request.inputs]

    assert described(short) == described(checked)
    assert (short.id, short.outputs, short.binary_output, dict(short.parameters)) == (
        checked.id,
        checked.outputs,
        checked.binary_output,
        dict(checked.parameters),
    )


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"inputs": [{"name": "x", "datatype": "FP64", "shape": [2], "data": [1.0]}]}, "needs 2"),
        ({"inputs": [{"name": "x", "datatype": "INT8", "shape": [1], "data": [1.5]}]}, "element 0"),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [True]}]},
            "a boolean",
        ),
        ({"inputs": [{"name": "x", "datatype": "FP8", "shape": [1], "data": [1]}]}, "FP8"),
        ({"inputs": [{"name": "x", "datatype": "FP64", "shape": [-1], "data": [1]}]}, "shape"),
        (
            {
                "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}] * 2,
            },
            "more than once",
        ),
        (
            {
                "inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}],
                "outputs": [{"name": ""}],
            },
            r"outputs\[0\]",
        ),
        (
            {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1], "data": [1]}], "id": 3},
            '"id"',
        ),
    ],
)
def test_plain_requests_with_a_problem_get_the_checked_paths_message(
    doc: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_json(doc)


def test_null_in_bytes_data_is_a_missing_value() -> None:
    """Read as None, for the model's signature to accept or refuse as every entry point does."""
    body = orjson.dumps(
        {"inputs": [{"name": "city", "datatype": "BYTES", "shape": [3], "data": ["a", None, "b"]}]}
    )
    request = decode_infer_request(body, model_name="m", model_version=None, header_length=None)
    assert request.inputs[0].data.tolist() == [b"a", None, b"b"]
