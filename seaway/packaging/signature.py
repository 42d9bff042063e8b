"""Input/output signatures: inferred from a sample, checked and coerced on every predict.

A signature has one of three input formats, decided by the sample the model was logged with:

- ``tensor``: one unnamed array (numpy, lists); its spec is named ``input``.
- ``tensors``: a dict of named arrays.
- ``dataframe``: named columns (a pandas DataFrame); each column is a 1-D tensor spec.

Coercion accepts any reasonable container (DataFrame, dict of lists, records, 2-D arrays) and
returns the native form the flavor was trained on, raising ``InvalidInputError`` that names the
input and what is wrong. Casts are allowed within a kind or upwards (int -> float, FP64 -> FP32),
never lossy across kinds (float -> int).

Every entry point (``Model.predict``, the server's REST, gRPC and ``/invocations``, ``seaway
predict``, batch) goes through :func:`coerce_array`, so they accept and refuse the same rows:

- No rows is refused ("send at least one row"): a model is never called on nothing.
- A missing value (NaN, ``None``) is refused unless the input's spec allows it
  (:func:`missing_allowed`). ``log_model`` records ``allows_missing`` per input: true when the
  sample had a missing value there, or when the live model predicted on one without raising
  (``seaway.packaging.missing``); integers and booleans cannot hold one. Packages written
  before this was recorded keep the old rule: NaN passes in float inputs, nothing else.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from seaway.errors import InvalidInputError, SignatureError, listed, quoted
from seaway.packaging.missing import missing_allowed, refuse_missing, sample_has_missing
from seaway.types import Datatype

InputFormat = Literal["tensor", "tensors", "dataframe"]
DEFAULT_INPUT_NAME = "input"
DEFAULT_OUTPUT_NAME = "predict"
#: A classifier's second output: what ``predict_proba`` gives (a second model call).
PROBA_OUTPUT_NAME = "predict_proba"
EXAMPLE_ROWS = 5
#: What every entry point answers for an input without rows.
NO_ROWS = "the input has no rows; send at least one row"


class TensorSpec(BaseModel):
    """One named tensor: datatype and shape, ``-1`` for a variable dimension."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    datatype: Datatype
    shape: tuple[int, ...]
    #: For pandas categorical columns: the categories in order, so the model is handed the same
    #: categorical dtype it was trained on (XGBoost and LightGBM need it) whatever the input was.
    categories: tuple[Any, ...] | None = Field(default=None, exclude_if=lambda value: value is None)
    #: For BYTES: the model takes raw ``bytes`` (images, audio), not text. Servers decode BYTES
    #: inputs to ``str`` unless this is set.
    binary: bool = Field(default=False, exclude_if=lambda value: not value)
    #: Whether a missing value (NaN, None) may reach the model here; None: not recorded (a
    #: package from before it was), see :func:`missing_allowed`.
    allows_missing: bool | None = Field(default=None, exclude_if=lambda value: value is None)

    def describe(self) -> str:
        return f"{self.name}: {self.datatype.value}{list(self.shape)}"


class Signature(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    input_format: InputFormat
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...] = ()
    #: A classifier's class labels, in the order of its ``predict_proba`` columns (recorded from
    #: the model's ``classes_`` at log time; None for other models and older packages).
    classes: tuple[Any, ...] | None = Field(default=None, exclude_if=lambda value: value is None)

    @property
    def input_names(self) -> list[str]:
        return [spec.name for spec in self.inputs]

    def coerce(self, data: Any) -> Any:
        """Validate ``data`` against the inputs and return it in the model's native form."""
        if self.input_format == "dataframe":
            return self._coerce_dataframe(data)
        if self.input_format == "tensor":
            spec = self.inputs[0]
            if isinstance(data, Mapping):
                data = _single_entry(data, spec.name)
            return coerce_array(_to_array(data, spec.name), spec)
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"this model takes named inputs {listed(self.input_names)}; pass a dict of arrays, "
                f"not {type(data).__name__}"
            )
        _check_names(data.keys(), self.input_names)
        return {
            spec.name: coerce_array(_to_array(data[spec.name], spec.name), spec)
            for spec in self.inputs
        }

    def coerce_columns(self, data: Mapping[str, Any]) -> dict[str, np.ndarray[Any, Any]]:
        """A dataframe signature's columns, checked and cast, as plain arrays in signature order.

        What ``coerce`` does short of building the DataFrame: servers validate each request this
        way and build one DataFrame per batch, in the replica. Extra columns are dropped.
        """
        _check_names(data.keys(), self.input_names, extra_ok=True)
        columns = {
            spec.name: coerce_array(_to_column(data[spec.name], spec.name), spec)
            for spec in self.inputs
        }
        lengths = {len(column) for column in columns.values()}
        if lengths == {0}:
            raise InvalidInputError(NO_ROWS)
        if len(lengths) > 1:
            shown = {name: len(column) for name, column in columns.items()}
            raise InvalidInputError(f"input columns have different lengths: {shown}")
        return columns

    def _coerce_dataframe(self, data: Any) -> pd.DataFrame:
        names = self.input_names
        if isinstance(data, pd.DataFrame):
            frame = data
        elif isinstance(data, Mapping):
            try:
                frame = pd.DataFrame(
                    {key: _to_column(value, str(key)) for key, value in data.items()}
                )
            except ValueError as exc:
                raise InvalidInputError(f"input columns have different lengths: {exc}") from exc
        elif isinstance(data, Sequence) and data and all(isinstance(row, Mapping) for row in data):
            frame = pd.DataFrame.from_records(list(data))
        elif isinstance(data, list | tuple) and not data:
            raise InvalidInputError(NO_ROWS)
        else:
            array = _to_array(data, "input")
            if array.ndim == 1 and len(names) == array.shape[0]:
                array = array.reshape(1, -1)
            if array.ndim != 2 or array.shape[1] != len(names):
                raise InvalidInputError(
                    f"this model takes {len(names)} named columns {listed(names)}; got an array of shape "
                    f"{list(array.shape)}. Pass a DataFrame, a dict of columns or rows of "
                    f"{len(names)} values"
                )
            # one datatype for every column: each is cast to its own where no value changes
            from seaway.packaging.matrix import matrix_columns  # it builds on this module

            frame = pd.DataFrame(matrix_columns(array, self.inputs))
        frame = frame.rename(columns=str)
        _check_names(frame.columns, names, extra_ok=True)
        if len(frame.index) == 0:
            raise InvalidInputError(NO_ROWS)
        columns = {spec.name: _coerce_column(frame[spec.name], spec) for spec in self.inputs}
        return pd.DataFrame(columns, index=frame.index)


def infer_signature(sample_input: Any, sample_output: Any = None) -> Signature:
    """Describe ``sample_input`` (and ``sample_output`` when given) as a signature."""
    input_format, inputs = _describe(sample_input, DEFAULT_INPUT_NAME, "sample_input")
    outputs: tuple[TensorSpec, ...] = ()
    if sample_output is not None:
        outputs = infer_outputs(sample_output)
    return Signature(input_format=input_format, inputs=inputs, outputs=outputs)


def infer_outputs(output: Any, name: str = DEFAULT_OUTPUT_NAME) -> tuple[TensorSpec, ...]:
    """Describe what a model's predict returned, named as :func:`split_outputs` names it."""
    return tuple(
        _array_spec(_as_array(value, "model output"), key, "model output", output=True)
        for key, value in split_outputs(output, name).items()
    )


def split_outputs(output: Any, name: str = DEFAULT_OUTPUT_NAME) -> dict[str, Any]:
    """Name each tensor a predict returned: ``name`` for one array, ``name-0``, ``name-1``... for
    a tuple, the keys of a dict, the columns of a DataFrame. Servers and signatures agree on it."""
    if type(output) is np.ndarray:  # the common case, first
        return {name: output}
    output = to_numpy(output)
    if isinstance(output, tuple):
        return {
            key: value
            for i, part in enumerate(output)
            for key, value in split_outputs(part, f"{name}-{i}").items()
        }
    if isinstance(output, Mapping):
        return {str(key): np.asarray(to_numpy(value)) for key, value in output.items()}
    if isinstance(output, pd.DataFrame):
        return {str(col): output[col].to_numpy() for col in output.columns}
    if isinstance(output, pd.Series):
        return {name: output.to_numpy()}
    return {name: np.asarray(output)}


def to_numpy(value: Any) -> Any:
    """Tensors of other frameworks (torch) expose ``numpy()``; everything else passes through."""
    if type(value) is np.ndarray:  # the common case, without two failed attribute lookups
        return value
    if hasattr(value, "detach") and hasattr(value, "numpy"):
        return value.detach().cpu().numpy()
    return value


def _describe(
    data: Any, default_name: str, what: str
) -> tuple[InputFormat, tuple[TensorSpec, ...]]:
    data = to_numpy(data)
    if isinstance(data, pd.DataFrame):
        if data.empty:
            raise SignatureError(f"{what} is an empty DataFrame; pass at least one row")
        specs = tuple(_column_spec(data[col], str(col), what) for col in data.columns)
        return "dataframe", specs
    if isinstance(data, Mapping):
        if not data:
            raise SignatureError(f"{what} is an empty dict; pass at least one named array")
        return "tensors", tuple(
            _array_spec(_as_array(v, what), str(k), what) for k, v in data.items()
        )
    return "tensor", (_array_spec(_as_array(data, what), default_name, what),)


def _column_spec(column: pd.Series, name: str, what: str) -> TensorSpec:
    dtype = column.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        categories = dtype.categories
        return TensorSpec(
            name=name,
            datatype=_datatype(categories.dtype, f"{what} column {name!r} categories"),
            shape=(-1,),
            categories=tuple(_category(value) for value in categories),
        )
    datatype = _datatype(dtype, f"{what} column {name!r}")
    values = column.to_numpy()
    return TensorSpec(
        name=name,
        datatype=datatype,
        shape=(-1,),
        binary=_holds_bytes(values),
        allows_missing=sample_has_missing(values),
    )


def _coerce_column(column: pd.Series, spec: TensorSpec) -> Any:
    values = coerce_array(column.to_numpy(), spec)
    if spec.categories is None:
        return values
    # values outside the training categories become missing, as pandas and the GBDTs treat them
    return pd.Categorical(values, categories=list(spec.categories))


def _as_array(value: Any, what: str) -> np.ndarray[Any, Any]:
    value = to_numpy(value)
    if isinstance(value, pd.Series):
        return value.to_numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise SignatureError(f"{what} cannot be read as an array: {exc}") from exc


def _array_spec(
    array: np.ndarray[Any, Any], name: str, what: str, *, output: bool = False
) -> TensorSpec:
    if array.ndim == 0:
        raise SignatureError(
            f"{what} {name!r} is a scalar; pass a batch (an array whose first dimension is rows)"
        )
    return TensorSpec(
        name=name,
        datatype=_datatype(array.dtype, f"{what} {name!r}"),
        shape=(-1, *array.shape[1:]),
        binary=_holds_bytes(array),
        allows_missing=None if output else sample_has_missing(array),
    )


def _holds_bytes(array: np.ndarray[Any, Any]) -> bool:
    """Whether a sample's BYTES values are raw bytes rather than text (the first value decides)."""
    if array.dtype.kind == "S":
        return True
    if array.dtype != object or array.size == 0:
        return False
    first = next((v for v in array.ravel() if v is not None), None)
    return isinstance(first, bytes | bytearray)


def _datatype(dtype: Any, what: str) -> Datatype:
    try:
        return Datatype.from_numpy(dtype)
    except TypeError as exc:
        raise SignatureError(
            f"{what} has dtype {dtype}, which no signature datatype can hold"
        ) from exc


def _single_entry(data: Mapping[str, Any], name: str) -> Any:
    if len(data) == 1:
        return next(iter(data.values()))
    raise InvalidInputError(
        f"this model takes one input tensor ({quoted(name)}); got {len(data)} named inputs "
        f"{listed(sorted(map(str, data)))}"
    )


def _check_names(given: Any, expected: list[str], *, extra_ok: bool = False) -> None:
    given_set = {str(name) for name in given}
    missing = [name for name in expected if name not in given_set]
    if missing:
        raise InvalidInputError(
            f"missing input(s) {listed(missing)}; this model takes {listed(expected)}, got "
            f"{listed(sorted(given_set))}"
        )
    extra = sorted(given_set - set(expected))
    if extra and not extra_ok:
        raise InvalidInputError(
            f"unknown input(s) {listed(extra)}; this model takes {listed(expected)}"
        )


def _to_array(value: Any, name: str) -> np.ndarray[Any, Any]:
    value = to_numpy(value)
    if isinstance(value, pd.DataFrame | pd.Series):
        return value.to_numpy()
    try:
        return np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise InvalidInputError(f"input {quoted(name)} is not a rectangular array: {exc}") from exc


def _to_column(value: Any, name: str) -> np.ndarray[Any, Any]:
    array = _to_array(value, name)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise InvalidInputError(
            f"column {quoted(name)} must be one-dimensional, got shape {list(array.shape)}"
        )
    return array


def coerce_array(array: np.ndarray[Any, Any], spec: TensorSpec) -> np.ndarray[Any, Any]:
    """One array checked against its spec's shape, rows and missing values, cast to its datatype."""
    if array.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=False)
    ):
        expected = [d if d >= 0 else -1 for d in spec.shape]
        raise InvalidInputError(
            f"input {spec.name!r} has shape {list(array.shape)} but the model expects {expected} "
            f"(-1 = any size)"
        )
    if array.ndim and array.shape[0] == 0:
        raise InvalidInputError(NO_ROWS)
    kind = spec.datatype.numpy_dtype.kind
    holds_missing = kind == "f" or spec.datatype is Datatype.BYTES
    if not holds_missing and array.dtype.kind in "fO":  # before a cast could hide it (None->False)
        refuse_missing(array, spec)
    converted = cast_to(array, spec.datatype, spec.name)
    if holds_missing and not missing_allowed(spec):
        refuse_missing(converted, spec)
    return converted


def cast_to(array: np.ndarray[Any, Any], datatype: Datatype, name: str) -> np.ndarray[Any, Any]:
    """Cast without losing information; refuse float->int, str->number and the like."""
    target = datatype.numpy_dtype
    if datatype is Datatype.BYTES:
        return array if array.dtype == object else array.astype(object)
    if array.dtype == target:
        return array
    if array.dtype.kind in "OUS":
        try:
            converted = array.astype(target)
        except (ValueError, TypeError, OverflowError) as exc:
            raise InvalidInputError(
                f"input {name!r} holds values that are not {datatype.value}: {exc}"
            ) from exc
        return converted
    if np.can_cast(array.dtype, target, casting="same_kind") or (
        array.dtype.kind in "biu" and target.kind in "iuf"
    ):
        if (
            target.kind in "iu"
            and array.dtype.kind in "iu"
            and not np.can_cast(array.dtype, target)
        ):
            _check_int_range(array, datatype, name)  # a narrowing cast would wrap silently
        return array.astype(target)
    got = Datatype.from_numpy(array.dtype).value
    raise InvalidInputError(
        f"input {name!r} has {got} values but the model expects {datatype.value}; "
        f"casting would lose information"
    )


def _check_int_range(array: np.ndarray[Any, Any], datatype: Datatype, name: str) -> None:
    """Refuse integers the target type cannot hold (300 as INT8 would become 44)."""
    if not array.size:
        return
    info = np.iinfo(datatype.numpy_dtype)
    low, high = int(array.min()), int(array.max())
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise InvalidInputError(
            f"input {name!r} holds {bad}, outside {datatype.value}'s range [{info.min}, {info.max}]"
        )


def example_to_json(sample: Any, signature: Signature) -> dict[str, Any]:
    """The first rows of ``sample`` as JSON, in the signature's input format."""
    native = signature.coerce(sample)
    if isinstance(native, pd.DataFrame):
        head = native.head(EXAMPLE_ROWS)
        return {
            "columns": list(head.columns),
            "data": [[_json_scalar(v) for v in row] for row in head.itertuples(index=False)],
        }
    if isinstance(native, dict):
        return {"inputs": {k: _json_array(v[:EXAMPLE_ROWS]) for k, v in native.items()}}
    return {"inputs": _json_array(native[:EXAMPLE_ROWS])}


def example_from_json(data: Mapping[str, Any], signature: Signature) -> Any:
    """Rebuild a saved input example in the model's native form."""
    if "columns" in data:
        frame = pd.DataFrame(data["data"], columns=data["columns"])
        for spec in signature.inputs:
            if spec.binary and spec.name in frame:
                frame[spec.name] = [_from_b64(v) for v in frame[spec.name]]
        return signature.coerce(frame)
    inputs = data["inputs"]
    # JSON loses dtypes (2**64-1 would read back as a float): rebuild each with its spec's dtype
    if signature.input_format == "tensor":
        return signature.coerce(_typed(inputs, signature.inputs[0]))
    if isinstance(inputs, Mapping):
        specs = {spec.name: spec for spec in signature.inputs}
        inputs = {k: _typed(v, specs[k]) if k in specs else v for k, v in inputs.items()}
    return signature.coerce(inputs)


def _typed(value: Any, spec: TensorSpec) -> Any:
    if spec.datatype is Datatype.BYTES:
        if not spec.binary:
            return value
        decoded = _from_b64(value)
        array = np.empty(len(decoded), dtype=object)  # keeps bytes whole, whatever their lengths
        array[:] = decoded
        return np.array(array.tolist(), dtype=object)
    try:
        return np.asarray(value, dtype=spec.datatype.numpy_dtype)
    except (ValueError, TypeError, OverflowError):
        return value  # let coerce name the problem


def _from_b64(value: Any) -> Any:
    """Undo ``_json_scalar`` for raw bytes, through nested lists."""
    if isinstance(value, list):
        return [_from_b64(item) for item in value]
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    return value


def _json_array(array: np.ndarray[Any, Any]) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        return [_json_array(x) if isinstance(x, np.ndarray) else _json_scalar(x) for x in array]
    return array.tolist()


def _category(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return _json_scalar(value)


def _json_scalar(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):  # raw bytes (images, audio): base64, not lossy text
        return {"b64": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
