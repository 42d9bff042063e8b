"""MLflow's ``/invocations`` scoring format: content types, the four JSON formats, CSV, and the
``{"predictions": ...}`` and error bodies, as an MLflow (or SageMaker, Vertex AI) client sees them."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from seaway.errors import InvalidInputError, UnsupportedMediaTypeError
from seaway.protocol.mlflow_scoring import (
    FORMATS,
    decode_invocations,
    encode_mlflow_error,
    encode_predictions,
    parse_content_type,
)
from seaway.types import Datatype


def decode_json(doc: Any) -> Any:
    return decode_invocations(orjson.dumps(doc), "json")


# --- content types --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "kind"),
    [
        (None, "json"),
        ("", "json"),
        ("   ", "json"),
        ("application/json", "json"),
        ("Application/JSON", "json"),
        ("application/json; charset=utf-8", "json"),
        ("application/json;charset=UTF-8", "json"),
        ("application/json ; charset = utf8", "json"),
        ("text/csv", "csv"),
        ("TEXT/CSV", "csv"),
        ('text/csv; charset="utf-8"', "csv"),
        ("text/csv; charset=utf8", "csv"),
    ],
)
def test_accepted_content_types(header: str | None, kind: str) -> None:
    assert parse_content_type(header) == kind


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("text/plain", r"Content-Type 'text/plain' is not supported by /invocations; send application/json or text/csv"),
        ("application/x-www-form-urlencoded", r"Content-Type 'application/x-www-form-urlencoded' is not supported"),
        ("application/jsonlines", r"Content-Type 'application/jsonlines' is not supported"),
        ("text/csv; charset=latin-1", r"charset 'latin-1' is not supported; send utf-8"),
        ("application/json; charset=UTF-16", r"charset 'utf-16' is not supported; send utf-8"),
        ("application/json; foo=bar", r"Content-Type parameter 'foo' is not supported; only charset=utf-8$"),
        ("application/json; charset=utf-8; q=1", r"Content-Type parameter 'q' is not supported"),
    ],
)  # fmt: skip
def test_refused_content_types_are_415_with_what_to_send(header: str, message: str) -> None:
    with pytest.raises(UnsupportedMediaTypeError, match=message):
        parse_content_type(header)


@pytest.mark.parametrize(
    "header",
    [
        "application/json; format=pandas-split",
        "application/json; format=pandas-records",
        "text/csv; Format=pandas-split",
    ],
)
def test_mlflow_1_format_parameter_gets_a_migration_hint(header: str) -> None:
    with pytest.raises(
        UnsupportedMediaTypeError,
        match=r"Content-Type parameter 'format' is not supported; only charset=utf-8 "
        r"\(MLflow 1\.x's format=pandas-split is gone: wrap the body in \{\"dataframe_split\": \.\.\.\} instead\)",
    ) as caught:
        parse_content_type(header)
    assert isinstance(caught.value, InvalidInputError)  # a 415 is also bad input


# --- JSON formats ---------------------------------------------------------------------------------


def test_dataframe_split() -> None:
    request = decode_json(
        {"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2.5], [3, 0.1]]}}
    )
    assert request.format == "dataframe_split"
    assert dict(request.params) == {}
    frame = request.data
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["a", "b"]
    assert frame["a"].tolist() == [1, 3]
    assert frame["b"].tolist() == [2.5, 0.1]
    assert frame["a"].dtype == np.int64
    assert frame["b"].dtype == np.float64
    assert frame.index.tolist() == [0, 1]


def test_dataframe_split_with_index_and_without_columns() -> None:
    frame = decode_json(
        {"dataframe_split": {"columns": ["x"], "data": [["p"], ["q"]], "index": ["r1", "r2"]}}
    ).data
    assert frame.index.tolist() == ["r1", "r2"]
    assert frame["x"].tolist() == ["p", "q"]
    unnamed = decode_json({"dataframe_split": {"data": [[1, 2], [3, 4]]}}).data
    assert unnamed.columns.tolist() == [0, 1]
    assert unnamed.to_numpy().tolist() == [[1, 2], [3, 4]]


def test_dataframe_records_become_columns() -> None:
    request = decode_json({"dataframe_records": [{"a": 1, "b": 2.5}, {"b": 0.1, "a": 3}]})
    assert request.format == "dataframe_records"
    assert request.data == {"a": [1, 3], "b": [2.5, 0.1]}
    assert list(request.data) == ["a", "b"]  # column order follows the first row


def test_instances_of_rows() -> None:
    request = decode_json({"instances": [[1, 2.5], [3, 0.1]]})
    assert request.format == "instances"
    assert isinstance(request.data, np.ndarray)
    assert request.data.shape == (2, 2)
    assert request.data.tolist() == [[1.0, 2.5], [3.0, 0.1]]
    scalars = decode_json({"instances": [1, 2, 3]}).data
    assert scalars.shape == (3,)
    assert scalars.dtype.kind == "i"
    assert scalars.tolist() == [1, 2, 3]
    text = decode_json({"instances": ["a", "bc"]}).data
    assert text.tolist() == ["a", "bc"]


def test_instances_of_objects_are_named_tensors_by_column() -> None:
    request = decode_json({"instances": [{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": "y"}]})
    assert request.format == "instances"
    assert request.data == {"a": [[1, 2], [3, 4]], "b": ["x", "y"]}


def test_inputs_as_a_list_is_one_unnamed_tensor() -> None:
    request = decode_json({"inputs": [[1, 2.5], [3, 0.1]]})
    assert request.format == "inputs"
    assert isinstance(request.data, np.ndarray)
    assert request.data.tolist() == [[1.0, 2.5], [3.0, 0.1]]


def test_inputs_as_a_dict_is_named_tensors() -> None:
    request = decode_json({"inputs": {"a": [1, 3], "b": [[2.5], [0.1]], "c": ["x", "y"]}})
    assert request.format == "inputs"
    assert set(request.data) == {"a", "b", "c"}
    assert request.data["a"].tolist() == [1, 3]
    assert request.data["a"].dtype.kind == "i"
    assert request.data["b"].shape == (2, 1)
    assert request.data["b"].tolist() == [[2.5], [0.1]]
    assert request.data["c"].tolist() == ["x", "y"]


@pytest.mark.parametrize("params", [{}, None])
def test_empty_params_are_allowed(params: Any) -> None:
    request = decode_json({"inputs": [1, 2], "params": params})
    assert dict(request.params) == {}
    assert request.method == "predict"
    assert request.data.tolist() == [1, 2]


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_params_method_picks_what_answers(method: str) -> None:
    request = decode_json({"dataframe_records": [{"a": 1}], "params": {"method": method}})
    assert request.method == method
    assert request.data == {"a": [1]}


@pytest.mark.parametrize(
    ("doc", "problem"),
    [
        ({}, "it has none"),
        ({"data": [[1]]}, "it has none"),
        ({"dataframe_split": {"data": [[1]]}, "inputs": [1]}, r"it has \['dataframe_split', 'inputs'\]"),
        ({"instances": [1], "inputs": [1], "params": {}}, r"it has \['instances', 'inputs'\]"),
        ({"inputs": [1], "columns": ["a"]}, r"unknown key\(s\) \['columns'\]"),
    ],
)  # fmt: skip
def test_exactly_one_format_key(doc: dict[str, Any], problem: str) -> None:
    with pytest.raises(
        InvalidInputError,
        match=rf"request body must hold exactly one of dataframe_split, dataframe_records, "
        rf"instances, inputs; {problem}",
    ):
        decode_json(doc)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[[1, 2]]", r"request body must be a JSON object with one of dataframe_split, .*; got an array"),
        (b'"x"', r"request body must be a JSON object .*; got a string"),
        (b"3", r"request body must be a JSON object .*; got a number"),
        (b"null", r"request body must be a JSON object .*; got null"),
        (b"{'inputs': [1]}", r"request body is not valid JSON"),
        (b"", r"request body is not valid JSON"),
        (b'{"inputs": [NaN]}', r"request body is not valid JSON"),
    ],
)  # fmt: skip
def test_body_must_be_a_json_object(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_invocations(body, "json")


def test_params_other_than_method_are_refused() -> None:
    with pytest.raises(
        InvalidInputError,
        match=r"unknown param\(s\) \['max_tokens', 'temperature'\]; /invocations takes only "
        r'"method" \(predict or predict_proba\)',
    ):
        decode_json({"inputs": [1], "params": {"temperature": 0.5, "max_tokens": 3}})
    with pytest.raises(
        InvalidInputError, match=r"\"method\" must be 'predict' or 'predict_proba'; got \"proba\""
    ):
        decode_json({"inputs": [1], "params": {"method": "proba"}})
    with pytest.raises(InvalidInputError, match=r"got \[\"predict\"\]"):
        decode_json({"inputs": [1], "params": {"method": ["predict"]}})
    with pytest.raises(InvalidInputError, match=r'"params" must be a JSON object'):
        decode_json({"inputs": [1], "params": ["temperature"]})


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([[1, 2]], r'"dataframe_split" must be an object \{"columns": \[\.\.\.\], "data": \[\[\.\.\.\], \.\.\.\]\}'),
        ({"columns": ["a"]}, r'"dataframe_split" needs "data": a list of rows'),
        ({"columns": ["a"], "data": {"a": [1]}}, r'"dataframe_split" needs "data": a list of rows'),
        ({"columns": "a", "data": [[1]]}, r'"dataframe_split" "columns" must be a list of names'),
        ({"columns": ["a", 2], "data": [[1, 2]]}, r'"dataframe_split" "columns" must be a list of names'),
        ({"columns": ["a"], "data": [[1], 2]}, r'"dataframe_split" data row 1 must be a list'),
        ({"columns": ["a", "b"], "data": [[1, 2], [3]]}, r"\"dataframe_split\" data row 1 has 1 values for 2 columns \['a', 'b'\]"),
        ({"columns": ["a"], "data": [[1, 2]]}, r"\"dataframe_split\" data row 0 has 2 values for 1 columns \['a'\]"),
        ({"columns": ["a"], "data": [[1], [2]], "index": [0]}, r'"dataframe_split" "index" must list one label per row'),
        ({"columns": ["a"], "data": [[1]], "index": "r"}, r'"dataframe_split" "index" must list one label per row'),
    ],
)  # fmt: skip
def test_dataframe_split_errors(value: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_json({"dataframe_split": value})


@pytest.mark.parametrize("key", ["dataframe_records", "instances"])
@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"a": 1, "b": 2}, {"a": 3}], r"row 1 has different keys from row 0 \(missing \['b'\]\)$"),
        ([{"a": 1}, {"a": 3, "b": 4}], r"row 1 has different keys from row 0 \(extra \['b'\]\)$"),
        ([{"a": 1}, {"a": 2}, {"b": 3}], r"row 2 has different keys from row 0 \(missing \['a'\]\) \(extra \['b'\]\)"),
        ([{"a": 1}, [2]], r"row 1 must be an object like row 0"),
        ([{"a": 1}, None], r"row 1 must be an object like row 0"),
        ([], r"is empty; send at least one row"),
    ],
)  # fmt: skip
def test_rows_of_objects_must_share_their_keys(key: str, rows: list[Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=rf'"{key}" {message}'):
        decode_json({key: rows})


@pytest.mark.parametrize("first", [5, None, "ab", [1, 2], [[1]]])
def test_dataframe_records_row_0_must_be_an_object(first: Any) -> None:
    with pytest.raises(
        InvalidInputError, match=r'"dataframe_records" row 0 must be an object of column values'
    ):
        decode_json({"dataframe_records": [first, {"a": 1}]})


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"dataframe_records": {"a": [1]}}, r'"dataframe_records" must be a list of row objects'),
        ({"instances": {"a": [1]}}, r'"instances" must be a list of rows'),
        ({"instances": [[1, 2], [3]]}, r"instances\"? is not rectangular \(rows of unequal length\)"),
        ({"instances": [[1, 2], 3]}, r"instances\"? is not rectangular"),
        ({"inputs": [[1, 2], [3]]}, r'"inputs" is not rectangular \(rows of unequal length\)'),
        ({"inputs": {"a": [1, 2], "b": [[1], [2, 3]]}}, r"\"inputs\" 'b' is not rectangular \(rows of unequal length\)"),
        ({"inputs": {}}, r'"inputs" is empty; send at least one named input'),
        ({"inputs": "abc"}, r'"inputs" must be a \(nested\) list or an object of named lists'),
        ({"inputs": 3}, r'"inputs" must be a \(nested\) list or an object of named lists'),
    ],
)  # fmt: skip
def test_row_and_columnar_format_errors(doc: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_json(doc)


def test_every_format_key_is_known() -> None:
    assert FORMATS == ("dataframe_split", "dataframe_records", "instances", "inputs")


# --- CSV ------------------------------------------------------------------------------------------


def test_csv_reads_a_header_row_and_typed_columns() -> None:
    request = decode_invocations(b"a,b,c\n1,2.5,x\n3,0.1,y\n", "csv")
    assert request.format == "csv"
    assert dict(request.params) == {}
    frame = request.data
    assert isinstance(frame, pd.DataFrame)
    assert frame.columns.tolist() == ["a", "b", "c"]
    assert frame["a"].tolist() == [1, 3]
    assert frame["a"].dtype == np.int64
    assert frame["b"].tolist() == [2.5, 0.1]
    assert frame["c"].tolist() == ["x", "y"]


def test_csv_bytes_columns_keep_leading_zeros() -> None:
    body = b"zip,count\n007,1\n010,2\n"
    untyped = decode_invocations(body, "csv").data
    assert untyped["zip"].tolist() == [7, 10]  # what pandas alone would do
    frame = decode_invocations(
        body, "csv", {"zip": Datatype.BYTES, "count": Datatype.INT64, "absent": Datatype.BYTES}
    ).data
    assert frame["zip"].tolist() == ["007", "010"]
    assert frame["count"].tolist() == [1, 2]
    assert frame["count"].dtype == np.int64


def test_csv_is_read_as_utf8() -> None:
    frame = decode_invocations("name,city\nZoë,Zürich\n".encode(), "csv").data
    assert frame.to_dict("list") == {"name": ["Zoë"], "city": ["Zürich"]}
    with pytest.raises(
        InvalidInputError, match=r"CSV body cannot be parsed: 'utf-8' codec can't decode"
    ):
        decode_invocations("name\nZoë\n".encode("latin-1"), "csv")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"CSV body is empty; send a header row and at least one data row"),
        (b" \n\n", r"CSV body is empty"),
        (b"a,b\n", r"CSV body has a header row but no data rows"),
        (b"a,b\n1,2\n3,4,5\n", r"CSV body cannot be parsed: .*Expected 2 fields in line 3, saw 3"),
        # pandas alone would take the extra first field as the index and shift every column
        (
            b"a,b\n1,2,3\n4,5,6\n",
            r"CSV body cannot be parsed: .*Expected 2 fields in line 2, saw 3",
        ),
        (
            b"a,b\n0,2,3\n1,5,6\n",
            r"CSV body cannot be parsed: .*Expected 2 fields in line 2, saw 3",
        ),
        (b'a,b\n"1,2\n', r"CSV body cannot be parsed"),
    ],
)
def test_csv_errors(body: bytes, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        decode_invocations(body, "csv")


# --- predictions and errors -----------------------------------------------------------------------


def test_one_output_is_a_list() -> None:
    body = encode_predictions({"y": np.array([1, 0, 1])})
    assert body == b'{"predictions":[1,0,1]}'


def test_nan_and_infinities_are_null() -> None:
    out = {"y": np.array([0.5, np.nan, np.inf, -np.inf], dtype=np.float32)}
    assert orjson.loads(encode_predictions(out)) == {"predictions": [0.5, None, None, None]}
    proba = np.array([[np.nan, 0.25]]).T  # not contiguous
    assert orjson.loads(encode_predictions({"p": proba})) == {"predictions": [[None], [0.25]]}
    mixed = np.array([1.5, None, float("nan")], dtype=object)
    assert orjson.loads(encode_predictions({"m": mixed})) == {"predictions": [1.5, None, None]}


def test_several_outputs_are_an_object_in_order() -> None:
    body = encode_predictions(
        {
            "label": np.array(["cat", "dog"]),
            "proba": np.array([[0.9, 0.1], [0.2, 0.8]]),
            "flag": np.array([True, False]),
        }
    )
    doc = orjson.loads(body)
    assert doc == {
        "predictions": {
            "label": ["cat", "dog"],
            "proba": [[0.9, 0.1], [0.2, 0.8]],
            "flag": [True, False],
        }
    }
    assert list(doc["predictions"]) == ["label", "proba", "flag"]


def test_prediction_values_of_every_kind() -> None:
    outputs: dict[str, Any] = {
        "u64": np.array([2**64 - 1], dtype=np.uint64),
        "f16": np.array([0.5], dtype=np.float16),
        "bytes": np.array([b"ok", b"\xff"], dtype=object),
        "scalar": np.float32(2.5),
        "matrix": np.arange(6, dtype=np.int8).reshape(2, 3).T,
    }
    assert orjson.loads(encode_predictions(outputs)) == {
        "predictions": {
            "u64": [2**64 - 1],
            "f16": [0.5],
            "bytes": ["ok", "\ufffd"],
            "scalar": 2.5,
            "matrix": [[0, 3], [1, 4], [2, 5]],
        }
    }


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "BAD_REQUEST"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "RESOURCE_DOES_NOT_EXIST"),
        (413, "BAD_REQUEST"),
        (415, "BAD_REQUEST"),
        (429, "REQUEST_LIMIT_EXCEEDED"),
        (503, "TEMPORARILY_UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (500, "INTERNAL_ERROR"),
        (418, "INTERNAL_ERROR"),
    ],
)
def test_error_body(status: int, code: str) -> None:
    message = 'input "x" is wrong\nsend ünïcode'
    body = encode_mlflow_error(message, status)
    assert orjson.loads(body) == {"error_code": code, "message": message}
