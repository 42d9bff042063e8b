"""MLflow's scoring protocol (``POST /invocations``): JSON and CSV bodies in, ``{"predictions"}`` out.

This is also the container contract of SageMaker, and ``instances`` -> ``predictions`` is Vertex
AI's. Decoding yields plain containers (a DataFrame, a dict of columns, an array) that the model's
signature then validates and casts exactly as it does for every other transport. Decisions:

- Content types as MLflow 2: ``application/json`` or ``text/csv``, ``charset=utf-8`` the only
  parameter; anything else is a 415 that says what to send. A missing Content-Type reads as JSON
  (``curl -d`` users), which MLflow refuses.
- A JSON body is an object with exactly one of ``dataframe_split``, ``dataframe_records``,
  ``instances``, ``inputs``; ``params`` beside it takes one key, ``method``: ``predict`` (the
  default) or ``predict_proba`` (a classifier's probabilities, which MLflow users otherwise get
  only by logging with ``pyfunc_predict_fn``). Any other param is refused: Seaway models take
  none, and one silently ignored would answer a question that was not asked.
- Rows given as objects (``dataframe_records``, ``instances`` of objects) become a dict of columns,
  so both dataframe and named-tensor models take them; a row missing a key is an error, not NaN.
- CSV columns the signature declares as BYTES are read as text, so ``"007"`` stays ``"007"``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import orjson
import pandas as pd

from seaway.errors import InvalidInputError, UnsupportedMediaTypeError, brief, listed, quoted
from seaway.types import Datatype

ContentKind = Literal["json", "csv"]
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
#: What ``params.method`` may ask for.
METHODS = ("predict", "predict_proba")
_MEDIA: dict[str, ContentKind] = {"application/json": "json", "text/csv": "csv"}

#: MLflow's error codes (Databricks' protos) by HTTP status.
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    413: "BAD_REQUEST",
    415: "BAD_REQUEST",
    429: "REQUEST_LIMIT_EXCEEDED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


@dataclass(frozen=True)
class ScoringRequest:
    """A decoded ``/invocations`` body: ``data`` for the signature, and the format it came in."""

    data: Any
    format: str
    params: Mapping[str, Any] = field(default_factory=dict)
    #: ``params.method``: which of the model's methods answers (one of ``METHODS``).
    method: str = "predict"


def parse_content_type(header: str | None) -> ContentKind:
    """``application/json`` or ``text/csv`` (``;charset=utf-8`` allowed), else 415."""
    if header is None or not header.strip():
        return "json"
    media, *params = (part.strip() for part in header.split(";"))
    kind = _MEDIA.get(media.lower())
    if kind is None:
        raise UnsupportedMediaTypeError(
            f"Content-Type {quoted(media)} is not supported by /invocations; send application/json "
            "or text/csv"
        )
    for param in params:
        if not param:  # "application/json;" with a trailing semicolon
            continue
        key, _, value = param.partition("=")
        key, value = key.strip().lower(), value.strip().strip('"').lower()
        if key != "charset":
            hint = (
                " (MLflow 1.x's format=pandas-split is gone: wrap the body in "
                '{"dataframe_split": ...} instead)'
                if key == "format"
                else ""
            )
            raise UnsupportedMediaTypeError(
                f"Content-Type parameter {quoted(key)} is not supported; only charset=utf-8{hint}"
            )
        if value not in ("utf-8", "utf8"):
            raise UnsupportedMediaTypeError(f"charset {quoted(value)} is not supported; send utf-8")
    return kind


def decode_invocations(
    body: bytes, kind: ContentKind, column_types: Mapping[str, Datatype] | None = None
) -> ScoringRequest:
    """Decode a body; ``column_types`` (from the signature) guides CSV parsing."""
    if kind == "csv":
        return ScoringRequest(_read_csv(body, column_types or {}), "csv")
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(f"request body is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidInputError(
            f"request body must be a JSON object with one of {', '.join(FORMATS)}; "
            f"got {_json_type(doc)}"
        )
    given = [key for key in FORMATS if key in doc]
    unknown = sorted(set(doc) - set(FORMATS) - {"params"})
    if len(given) != 1 or unknown:
        problem = (
            f"unknown key(s) {listed(unknown)}"
            if unknown and len(given) == 1
            else f"it has {given or 'none'}"
        )
        raise InvalidInputError(
            f"request body must hold exactly one of {', '.join(FORMATS)}; {problem}"
        )
    params = doc.get("params")
    params = {} if params is None else params
    if not isinstance(params, dict):
        raise InvalidInputError('"params" must be a JSON object')
    method = _method(params)
    key = given[0]
    value = doc[key]
    decoder = _DECODERS[key]
    return ScoringRequest(decoder(value), key, params, method)


def _method(params: Mapping[str, Any]) -> str:
    """``params.method`` checked; any other param is refused."""
    unknown = sorted(set(params) - {"method"})
    if unknown:
        raise InvalidInputError(
            f"unknown param(s) {listed(unknown)}; /invocations takes only "
            f'"method" ({" or ".join(METHODS)})'
        )
    method = params.get("method", "predict")
    if method not in METHODS:
        raise InvalidInputError(
            f'params "method" must be {" or ".join(repr(m) for m in METHODS)}; got '
            f"{orjson.dumps(method).decode()[:40]}"
        )
    return str(method)


def encode_predictions(outputs: Mapping[str, np.ndarray[Any, Any]]) -> bytes:
    """``{"predictions": ...}``: a list for one output, an object of lists for several."""
    if len(outputs) == 1:
        payload: Any = _listed(next(iter(outputs.values())))
    else:
        payload = {name: _listed(value) for name, value in outputs.items()}
    return orjson.dumps(
        {"predictions": payload}, option=orjson.OPT_SERIALIZE_NUMPY, default=_json_default
    )


def encode_mlflow_error(message: str, status: int) -> bytes:
    """MLflow's error body: ``{"error_code": ..., "message": ...}``."""
    code = ERROR_CODES.get(status, "INTERNAL_ERROR")
    return orjson.dumps({"error_code": code, "message": brief(message)})


# -- formats ------------------------------------------------------------------------------------


def _dataframe_split(value: Any) -> pd.DataFrame:
    if not isinstance(value, dict):
        raise InvalidInputError(
            '"dataframe_split" must be an object {"columns": [...], "data": [[...], ...]}'
        )
    columns, data = value.get("columns"), value.get("data")
    if not isinstance(data, list):
        raise InvalidInputError('"dataframe_split" needs "data": a list of rows')
    if columns is not None and (
        not isinstance(columns, list) or not all(isinstance(c, str) for c in columns)
    ):
        raise InvalidInputError('"dataframe_split" "columns" must be a list of names')
    width = len(columns) if columns is not None else None
    for index, row in enumerate(data):
        if not isinstance(row, list):
            raise InvalidInputError(f'"dataframe_split" data row {index} must be a list')
        if width is not None and len(row) != width:
            raise InvalidInputError(
                f'"dataframe_split" data row {index} has {len(row)} values for '
                f"{width} columns {listed(columns or [])}"
            )
    labels = value.get("index")
    if labels is not None and (not isinstance(labels, list) or len(labels) != len(data)):
        raise InvalidInputError('"dataframe_split" "index" must list one label per row')
    return pd.DataFrame(data, columns=columns, index=labels)


def _records(value: Any, what: str) -> dict[str, list[Any]]:
    """Rows of objects -> columns, refusing rows that lack a key the first row has."""
    if not value:
        raise InvalidInputError(f'"{what}" is empty; send at least one row')
    first = value[0]
    if not isinstance(first, dict):
        raise InvalidInputError(f'"{what}" row 0 must be an object of column values')
    columns: dict[str, list[Any]] = {key: [] for key in first}
    for index, row in enumerate(value):
        if not isinstance(row, dict):
            raise InvalidInputError(f'"{what}" row {index} must be an object like row 0')
        if row.keys() != columns.keys():
            missing = sorted(columns.keys() - row.keys())
            extra = sorted(row.keys() - columns.keys())
            raise InvalidInputError(
                f'"{what}" row {index} has different keys from row 0'
                + (f" (missing {listed(missing)})" if missing else "")
                + (f" (extra {listed(extra)})" if extra else "")
            )
        for key, item in row.items():
            columns[key].append(item)
    return columns


def _dataframe_records(value: Any) -> dict[str, list[Any]]:
    if not isinstance(value, list):
        raise InvalidInputError('"dataframe_records" must be a list of row objects')
    return _records(value, "dataframe_records")


def _instances(value: Any) -> Any:
    if not isinstance(value, list):
        raise InvalidInputError('"instances" must be a list of rows')
    if value and isinstance(value[0], dict):
        return _records(value, "instances")
    if not value:
        raise InvalidInputError('"instances" is empty; send at least one row')
    return _array(value, "instances")


def _inputs(value: Any) -> Any:
    if isinstance(value, dict):
        if not value:
            raise InvalidInputError('"inputs" is empty; send at least one named input')
        return {str(key): _array(item, f'"inputs" {quoted(key)}') for key, item in value.items()}
    if isinstance(value, list):
        return _array(value, '"inputs"')
    raise InvalidInputError('"inputs" must be a (nested) list or an object of named lists')


_DECODERS = {
    "dataframe_split": _dataframe_split,
    "dataframe_records": _dataframe_records,
    "instances": _instances,
    "inputs": _inputs,
}


def _array(value: Any, what: str) -> np.ndarray[Any, Any]:
    try:
        array = np.asarray(value)
    except ValueError:
        raise InvalidInputError(f"{what} is not rectangular (rows of unequal length)") from None
    if array.dtype == object and any(isinstance(item, list | dict) for item in array.ravel()):
        raise InvalidInputError(f"{what} is not rectangular (rows of unequal length)")
    return array


def _read_csv(body: bytes, column_types: Mapping[str, Datatype]) -> pd.DataFrame:
    if not body.strip():
        raise InvalidInputError("CSV body is empty; send a header row and at least one data row")
    text_columns = {name: str for name, dt in column_types.items() if dt is Datatype.BYTES}
    try:
        # a first row longer than the header would silently become the index: make it an error
        pd.read_csv(io.BytesIO(body), header=None, nrows=2, dtype=str, encoding="utf-8")
        frame = pd.read_csv(io.BytesIO(body), dtype=text_columns or None, encoding="utf-8")
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"CSV body cannot be parsed: {exc}") from None
    if frame.empty:
        raise InvalidInputError("CSV body has a header row but no data rows")
    return frame


# -- encoding -----------------------------------------------------------------------------------


def _listed(value: Any) -> Any:
    """orjson writes numeric arrays natively (NaN and infinities as null); others via tolist."""
    return np.asarray(value)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("utf-8", errors="replace")
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    return "a number" if isinstance(value, int | float) else type(value).__name__
