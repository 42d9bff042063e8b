"""Errors stay short whatever the request quotes: 100,000 names, one name a megabyte long, a shape
of 100,000 dimensions. Each place that builds a message from what the client sent is tried here;
``tests/chaos/test_grpc_malformed.py`` and the end-to-end test in ``tests/integration/serving``
try both transports."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from seaway.errors import InvalidInputError, brief, listed, quoted
from seaway.packaging.signature import infer_signature
from seaway.protocol import grpc_codec, mlflow_scoring, rest
from seaway.protocol.grpc import inference_pb2 as pb

MANY = 100_000
LONG = "n" * 1_000_000
#: No message below may be longer than this (the names alone would be over 700 KB).
SHORT = 1024


def _message(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(InvalidInputError) as caught:
        call(*args, **kwargs)
    message = str(caught.value)
    assert len(message) <= SHORT, message[:300]
    return message


def _rest(doc: Any) -> str:
    body = orjson.dumps(doc)
    return _message(
        rest.decode_infer_request, body, model_name="m", model_version=None, header_length=None
    )


def test_listed_names_the_first_few_and_counts_the_rest() -> None:
    assert listed(["a", "b"]) == "['a', 'b']"
    text = listed(f"x{i}" for i in range(MANY))
    assert text == f"['x0', 'x1', 'x2', 'x3', 'x4'] and {MANY - 5} more"
    assert len(listed([LONG] * 3)) < 300


def test_quoted_cuts_long_values_and_brief_says_it_cut() -> None:
    assert quoted("age") == "'age'"
    assert len(quoted(LONG)) == 64 and quoted(LONG).endswith("...")
    assert brief("short") == "short"
    cut = brief("x" * 5000)
    assert len(cut) == 1024 and cut.endswith("(cut from 5000 characters)")


def test_rest_duplicate_names_are_listed_briefly_and_quickly() -> None:
    # every name twice: counting with list.count was quadratic (10^10 steps for this request)
    inputs = [
        {"name": f"x{i % MANY}", "datatype": "FP32", "shape": [1], "data": [1.0]}
        for i in range(2 * MANY)
    ]
    message = _rest({"inputs": inputs})
    assert f"and {MANY - 5} more appear more than once" in message
    outputs = [{"name": f"y{i % 5000}"} for i in range(10_000)]
    message = _rest({"inputs": inputs[:1], "outputs": outputs})
    assert "and 4995 more appear more than once" in message


@pytest.mark.parametrize(
    "item",
    [
        {"name": LONG, "datatype": "FP32", "shape": [2], "data": [1.0]},  # count mismatch
        {"name": LONG, "datatype": "FP32", "shape": [1], "data": ["a"]},  # bad element
        {"name": LONG, "datatype": "NOPE", "shape": [1], "data": [1]},  # datatype
        {"name": LONG, "datatype": "FP32", "shape": [1], "data": [1], "parameters": {LONG: []}},
        {"name": "x", "datatype": "FP32", "shape": [1], "data": [1], "parameters": {LONG: []}},
        {
            "name": LONG,
            "datatype": "FP32",
            "shape": [1],
            "parameters": {"binary_data_size": 4},
            "data": [],
        },
    ],
)
def test_rest_long_names_are_cut(item: dict[str, Any]) -> None:
    assert "..." in _rest({"inputs": [item]})


def test_rest_long_output_names_are_cut() -> None:
    item = {"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}
    outputs = [{"name": LONG, "parameters": {"binary_data": 3}}]
    assert "..." in _rest({"inputs": [item], "outputs": outputs})


def test_rest_error_bodies_are_brief() -> None:
    body = orjson.loads(rest.encode_error("e" * 100_000))
    assert len(body["error"]) == 1024


@pytest.mark.parametrize(
    "shape",
    [[1] * 70, [1] * 33, [0, 2**62], [2**40, 2**40, 0]],
    ids=["70-dims", "33-dims", "empty-huge", "empty-huge-2"],
)
def test_rest_shapes_numpy_cannot_build_are_refused(shape: list[int]) -> None:
    # numpy raised ValueError for these (a 500); data [] or [1.0] matches their element count
    data = [] if 0 in shape else [1.0]
    item = {"name": "x", "datatype": "FP32", "shape": shape, "data": data}
    assert "input 'x'" in _rest({"inputs": [item]})
    binary = {
        "name": "x",
        "datatype": "FP32",
        "shape": shape,
        "parameters": {"binary_data_size": 0},
    }
    doc = orjson.dumps({"inputs": [binary]})
    if 0 in shape:
        _message(
            rest.decode_infer_request,
            doc,
            model_name="m",
            model_version=None,
            header_length=len(doc),
        )


def _grpc(msg: pb.ModelInferRequest) -> str:
    return _message(grpc_codec.decode_infer_request, msg)


def test_grpc_a_request_without_inputs_is_invalid() -> None:
    assert "no inputs" in _grpc(pb.ModelInferRequest(model_name="m"))


def test_grpc_long_names_and_datatypes_are_cut() -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name=LONG, datatype="FP32", shape=[2])
    msg.raw_input_contents.append(b"\0" * 4)
    assert "..." in _grpc(msg)
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="x", datatype=LONG, shape=[1])
    assert "..." in _grpc(msg)
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name=LONG, datatype="FP32", shape=[1])
    msg.inputs.add(name=LONG, datatype="FP32", shape=[1])
    assert "..." in _grpc(msg)
    msg = pb.ModelInferRequest(model_name="m")
    tensor = msg.inputs.add(name="x", datatype="FP32", shape=[1])
    tensor.contents.fp32_contents.append(1.0)
    tensor.parameters[LONG].Clear()
    assert "..." in _grpc(msg)
    msg.outputs.add(name=LONG).parameters["p"].Clear()
    assert "..." in _grpc(msg)


@pytest.mark.parametrize("shape", [[1] * 70, [0, 2**62]], ids=["70-dims", "empty-huge"])
def test_grpc_shapes_numpy_cannot_build_are_refused(shape: list[int]) -> None:
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="x", datatype="FP32", shape=shape)
    msg.raw_input_contents.append(b"" if 0 in shape else b"\0" * 4)
    assert "input 'x'" in _grpc(msg)


def test_mlflow_lists_and_names_are_bounded() -> None:
    params = {f"p{i}": 1 for i in range(MANY)}
    doc = orjson.dumps({"instances": [[1]], "params": params})
    assert f"and {MANY - 5} more" in _message(mlflow_scoring.decode_invocations, doc, "json")
    rows = [{f"c{i}": 1 for i in range(MANY)}, {"other": 1}]
    doc = orjson.dumps({"dataframe_records": rows})
    assert f"and {MANY - 5} more" in _message(mlflow_scoring.decode_invocations, doc, "json")
    split = {"columns": [f"c{i}" for i in range(MANY)], "data": [[1]]}
    doc = orjson.dumps({"dataframe_split": split})
    assert f"and {MANY - 5} more" in _message(mlflow_scoring.decode_invocations, doc, "json")
    doc = orjson.dumps({"inputs": [1], **{f"k{i}": 1 for i in range(MANY)}})
    assert f"and {MANY - 5} more" in _message(mlflow_scoring.decode_invocations, doc, "json")
    with pytest.raises(InvalidInputError) as caught:
        mlflow_scoring.parse_content_type("text/" + LONG)
    assert len(str(caught.value)) < 200
    body = orjson.loads(mlflow_scoring.encode_mlflow_error("e" * 100_000, 400))
    assert len(body["message"]) == 1024


def test_signature_checks_name_the_first_few_inputs() -> None:
    frame = pd.DataFrame({f"c{i}": [1.0] for i in range(20)})
    signature = infer_signature(frame)
    given = {f"x{i}": [1.0] for i in range(MANY)}
    message = _message(signature.coerce_columns, given)
    assert "missing input(s) ['c0', 'c1', 'c2', 'c3', 'c4'] and 15 more" in message
    assert f"and {MANY - 5} more" in message
    tensors = infer_signature({"a": np.zeros((2, 1)), "b": np.zeros((2, 1))})
    extra = {"a": np.zeros((1, 1)), "b": np.zeros((1, 1)), **{f"x{i}": 1 for i in range(MANY)}}
    assert f"and {MANY - 5} more" in _message(tensors.coerce, extra)
    single = infer_signature(np.zeros((2, 1)))
    assert f"and {MANY - 5} more" in _message(single.coerce, {f"x{i}": 1 for i in range(MANY)})
    assert "..." in _message(tensors.coerce, {"a": [[1]], "b": [[1]], LONG: [[1]]})
