"""Scoring one chunk: check every row against the signature, predict the good ones, reject the rest.

A row is rejected, with a reason naming the column and the value, when a value cannot become the
signature's datatype (text in a number column, a fraction in an integer one), when it is missing
where the model takes no missing value (the rule every online entry point applies:
``packaging/missing.py``), or when the model itself fails on it. Checks are vectorised per column; only when
the model raises on rows that passed them is the chunk bisected to find the culprits, so a few bad
rows cost a few extra calls, never a call per row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seaway.errors import InvalidInputError
from seaway.packaging.classes import proba_columns
from seaway.packaging.flavors.onnx import PROBA_OUTPUTS
from seaway.packaging.missing import missing_allowed
from seaway.packaging.signature import (
    DEFAULT_OUTPUT_NAME,
    PROBA_OUTPUT_NAME,
    Signature,
    TensorSpec,
    split_outputs,
)
from seaway.types import Datatype

_TRUE = {"true", "1", "t", "yes", "y"}
_FALSE = {"false", "0", "f", "no", "n"}


@dataclass(frozen=True)
class Scorer:
    """What every chunk of a job shares: the model and how its columns map to inputs."""

    model: Any  # seaway.runtime.Model (anything with predict/predict_proba and a signature)
    model_name: str
    model_version: int
    keep: tuple[str, ...] = ()
    proba: bool = False
    #: for a model taking one 2-D array: the file's columns that form it, in order
    features: tuple[str, ...] = ()
    #: where committed chunks are logged (seaway/batch/predlog.py: BatchLog); None: not logged
    log: Any = None

    @property
    def signature(self) -> Signature | None:
        return self.model.signature  # type: ignore[no-any-return]

    def input_columns(self) -> list[str]:
        signature = self.signature
        if self.features:
            return list(self.features)
        if signature is None:
            raise InvalidInputError(
                "this model has no signature, so the columns it takes are unknown; pass "
                "--features col1,col2,..."
            )
        return signature.input_names


@dataclass(frozen=True)
class ScoredChunk:
    output: Any  # pyarrow.Table
    rejects: Any | None  # pyarrow.Table, or None when every row passed
    rows_in: int
    rows_out: int
    rows_rejected: int
    #: each output row's position in the chunk (the prediction log samples from them)
    rows: np.ndarray[Any, Any] | None = None


def score(scorer: Scorer, table: Any, *, file_url: str, first_row: int) -> ScoredChunk:
    """Score one chunk (a pyarrow Table) whose first row is row ``first_row`` of ``file_url``."""
    import pyarrow as pa

    # a block per column: numeric columns without nulls stay views of the Arrow buffers
    frame = table.select(scorer.input_columns()).to_pandas(split_blocks=True)
    ok, reasons = _check_rows(frame, scorer)
    good = np.flatnonzero(ok)
    # no row left: the model is not called (signatures refuse inputs without rows)
    inputs = model_inputs(frame, scorer, good) if len(good) else None
    outputs, failed = _predict(scorer, inputs, good)
    for position, reason in failed.items():
        ok[position] = False
        reasons[position] = reason
    good = np.flatnonzero(ok)

    kept = table.select(list(scorer.keep)).take(pa.array(good))
    columns = {name: kept.column(name) for name in scorer.keep}
    columns.update({name: pa.array(values) for name, values in outputs.items()})
    columns["model_name"] = pa.repeat(scorer.model_name, len(good))
    columns["model_version"] = pa.array(np.full(len(good), scorer.model_version, dtype=np.int64))
    output = pa.table(columns)
    rejected = np.flatnonzero(~ok)
    rejects = None
    if len(rejected):
        rejects = table.take(pa.array(rejected))
        rejects = rejects.append_column("_file", pa.repeat(file_url, len(rejected)))
        rejects = rejects.append_column("_row", pa.array(rejected + first_row, type=pa.int64()))
        rejects = rejects.append_column("_reason", pa.array(reasons[rejected].tolist()))
    return ScoredChunk(output, rejects, table.num_rows, len(good), len(rejected), good)


# -- row checks ---------------------------------------------------------------------------------


def _check_rows(frame: pd.DataFrame, scorer: Scorer) -> tuple[np.ndarray[Any, Any], Any]:
    ok = np.ones(len(frame), dtype=bool)
    reasons = np.full(len(frame), None, dtype=object)
    for name, datatype, missing_ok in _column_types(scorer):
        bad = _bad_values(frame[name], datatype, missing_ok)
        if bad is None:
            continue
        new = bad & ok
        if new.any():
            values = frame[name].to_numpy()[new]
            reasons[new] = [_reason(name, value, datatype) for value in values]
            ok &= ~bad
    return ok, reasons


def _column_types(scorer: Scorer) -> list[tuple[str, Datatype, bool]]:
    """Each checked column, its datatype, and whether a missing value may reach the model
    there: the signature's rule (``missing_allowed``), so batch rejects the rows that every
    online entry point refuses."""
    signature = scorer.signature
    if scorer.features:
        if signature is None:
            return [(name, Datatype.FP64, True) for name in scorer.features]
        spec = signature.inputs[0]
        return [(name, spec.datatype, missing_allowed(spec)) for name in scorer.features]
    assert signature is not None
    return [
        (spec.name, spec.datatype, missing_allowed(spec))
        for spec in signature.inputs
        if _checkable(spec)
    ]


def _checkable(spec: TensorSpec) -> bool:
    # categorical columns map unknown values to missing by design; other specs are checked
    return spec.categories is None


def _bad_values(
    column: pd.Series, datatype: Datatype, missing_ok: bool | None = None
) -> np.ndarray[Any, Any] | None:
    """Rows whose value cannot become ``datatype``, or is missing where the model takes no
    missing value (``missing_ok``; None: NaN in floats only). None when there is no such row."""
    kind = datatype.numpy_dtype.kind
    missing = column.isna().to_numpy()
    if missing_ok is None:
        missing_ok = kind == "f"
    if datatype is Datatype.BYTES:
        return missing if missing.any() and not missing_ok else None
    if kind == "b":
        if column.dtype == bool:
            return None
        text = column.astype("string").str.strip().str.lower()
        known = text.isin(_TRUE | _FALSE).fillna(False).to_numpy(dtype=bool)
        return ~known
    numbers = (
        column
        if pd.api.types.is_numeric_dtype(column.dtype)
        else pd.to_numeric(column.astype("string").str.strip(), errors="coerce")
    )
    values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    unparsed = np.isnan(values) & ~missing
    if kind == "f":
        bad = unparsed if missing_ok else unparsed | missing
        return bad if bad.any() else None
    info = np.iinfo(datatype.numpy_dtype)
    with np.errstate(invalid="ignore"):
        fractional = ~np.isnan(values) & (np.floor(values) != values)
        out_of_range = (values < info.min) | (values > info.max)
    bad = np.isnan(values) | fractional | out_of_range
    return bad if bad.any() else None


def _reason(name: str, value: Any, datatype: Datatype) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return f"column {name!r}: missing value ({datatype.value} expected)"
    text = repr(value) if not isinstance(value, str) else repr(value[:60])
    return f"column {name!r}: {text} is not {datatype.value}"


# -- model inputs and predictions -----------------------------------------------------------------


def model_inputs(frame: pd.DataFrame, scorer: Scorer, rows: np.ndarray[Any, Any]) -> Any:
    """The checked rows as the model's native input (types converted, as the signature says)."""
    signature = scorer.signature
    subset = frame if len(rows) == len(frame) else frame.iloc[rows]  # rows: sorted, unique
    converted = {}
    for name, datatype, _ in _column_types(scorer):
        converted[name] = _convert(subset[name], datatype)
    if scorer.features:
        matrix = np.column_stack([converted[n] for n in scorer.features]) if len(rows) else None
        if matrix is None:
            matrix = np.empty((0, len(scorer.features)))
        return signature.coerce(matrix) if signature is not None else matrix
    assert signature is not None
    columns = {spec.name: converted.get(spec.name, subset[spec.name]) for spec in signature.inputs}
    if signature.input_format == "dataframe":
        return _frame(signature, columns, subset.index)
    return signature.coerce({k: np.asarray(v) for k, v in columns.items()})


def _frame(signature: Signature, columns: dict[str, Any], index: pd.Index) -> pd.DataFrame:
    """What ``signature.coerce`` makes of the columns, built once: the columns are checked and
    cast as arrays, and only the frame's own block is a copy. (``coerce`` of a DataFrame builds
    a frame, then another from its columns: two copies of the chunk for a cheap model's every
    call.)"""
    checked: dict[str, Any] = dict(signature.coerce_columns(columns))
    for spec in signature.inputs:
        if spec.categories is not None:  # as coerce does: unknown values become missing
            categories = list(spec.categories)
            values = np.asarray(checked[spec.name], dtype=object)
            known = pd.Series(values).isin(categories).to_numpy()
            values[~known] = None  # said before pandas would warn (and, later, raise)
            checked[spec.name] = pd.Categorical(values, categories=categories)
    return pd.DataFrame(checked, index=index)


def _convert(column: pd.Series, datatype: Datatype) -> Any:
    if datatype is Datatype.BYTES:
        text = column.astype(str).to_numpy(dtype=object)
        missing = column.isna().to_numpy()
        if missing.any():  # the model takes missing values here (else the rows were rejected)
            text[missing] = None
        return text
    kind = datatype.numpy_dtype.kind
    if kind == "b":
        if column.dtype == bool:
            return column.to_numpy()
        return column.astype("string").str.strip().str.lower().isin(_TRUE).to_numpy(dtype=bool)
    if not pd.api.types.is_numeric_dtype(column.dtype):
        column = pd.to_numeric(column.astype("string").str.strip(), errors="coerce")
    values = column.to_numpy(dtype=np.float64, na_value=np.nan) if kind == "f" else column
    return np.asarray(values).astype(datatype.numpy_dtype, copy=False)


def _predict(
    scorer: Scorer, inputs: Any, rows: np.ndarray[Any, Any]
) -> tuple[dict[str, np.ndarray[Any, Any]], dict[int, str]]:
    """Predictions for ``rows``; rows the model fails on are left out and reported."""
    take = _taker(inputs, len(rows))
    # the inputs are in the model's native form already (model_inputs): a seaway Model takes
    # them without checking them again; other models (tests, wrappers) through predict
    model = scorer.model
    predict = getattr(model, "predict_native", model.predict)
    predict_proba = getattr(model, "predict_proba_native", getattr(model, "predict_proba", None))
    classes = scorer.signature.classes if scorer.signature is not None else None
    predict_name, proba_name = output_names(scorer)

    def run(selection: np.ndarray[Any, Any]) -> dict[str, np.ndarray[Any, Any]]:
        part = take(selection)
        result = _columns(split_outputs(predict(part), predict_name), classes, proba_name)
        if scorer.proba:
            assert predict_proba is not None
            result.update(_columns({proba_name: predict_proba(part)}, classes, proba_name))
        return result

    failed: dict[int, str] = {}
    positions = np.arange(len(rows))
    pieces = _isolate(run, positions, rows, failed)
    if not pieces:
        return _columns_for_empty(scorer, run, len(rows)), failed
    outputs = {name: np.concatenate([piece[name] for piece in pieces]) for name in pieces[0]}
    return outputs, failed


def _isolate(
    run: Callable[[np.ndarray[Any, Any]], dict[str, np.ndarray[Any, Any]]],
    positions: np.ndarray[Any, Any],
    rows: np.ndarray[Any, Any],
    failed: dict[int, str],
) -> list[dict[str, np.ndarray[Any, Any]]]:
    """Bisect until the rows the model fails on are alone; keep the others' outputs in order."""
    if len(positions) == 0:
        return []
    try:
        return [run(positions)]
    except Exception as exc:
        if len(positions) == 1:
            first_line = (str(exc).strip().splitlines() or [""])[0][:300]
            failed[int(rows[positions[0]])] = (
                f"the model failed on this row: {type(exc).__name__}: {first_line}"
            )
            return []
    middle = len(positions) // 2
    return _isolate(run, positions[:middle], rows, failed) + _isolate(
        run, positions[middle:], rows, failed
    )


def _columns_for_empty(
    scorer: Scorer, run: Callable[[np.ndarray[Any, Any]], dict[str, np.ndarray[Any, Any]]], n: int
) -> dict[str, np.ndarray[Any, Any]]:
    """No row to predict: empty columns named and typed as the signature's outputs."""
    signature = scorer.signature
    result: dict[str, np.ndarray[Any, Any]] = {}
    proba_name = output_names(scorer)[1]
    if signature is not None:
        outputs = signature.outputs
        if _is_onnx(scorer):  # predict gives the graph's first output; predict_proba another
            outputs = tuple(
                spec for i, spec in enumerate(outputs) if i == 0 or spec.name == proba_name
            )
        for spec in outputs:
            if spec.name == proba_name and not scorer.proba:
                continue
            width = spec.shape[1] if len(spec.shape) == 2 else None
            dtype = spec.datatype.numpy_dtype
            if width is None or width < 0:
                result[spec.name] = np.empty(0, dtype=dtype)
            else:
                for column in _split_names(spec.name, width, signature.classes, proba_name):
                    result[column] = np.empty(0, dtype=dtype)
    return result


def output_names(scorer: Scorer) -> tuple[str, str]:
    """What the output columns are named after: ``predict`` and ``predict_proba`` (scikit-learn
    style models), or an ONNX graph's own output names (``label``, ``probabilities`` as skl2onnx
    writes them), the names its signature and the servers use too."""
    signature = scorer.signature
    if not _is_onnx(scorer) or signature is None or not signature.outputs:
        return DEFAULT_OUTPUT_NAME, PROBA_OUTPUT_NAME
    later = [spec.name for spec in signature.outputs[1:] if spec.name in PROBA_OUTPUTS]
    return signature.outputs[0].name, later[0] if later else PROBA_OUTPUT_NAME


def _is_onnx(scorer: Scorer) -> bool:
    return getattr(scorer.model, "flavor", None) == "onnx"


def _columns(
    outputs: dict[str, Any],
    classes: Sequence[Any] | None = None,
    proba_name: str = PROBA_OUTPUT_NAME,
) -> dict[str, np.ndarray[Any, Any]]:
    """One column per output; a 2-D output [rows, k] becomes ``name_0`` ... ``name_{k-1}``,
    except a classifier's probabilities: ``<proba_name>_<class>`` (``packaging/classes.py``)."""
    columns: dict[str, np.ndarray[Any, Any]] = {}
    for name, value in outputs.items():
        array = np.asarray(value)
        if array.ndim == 2:
            for i, column in enumerate(_split_names(name, array.shape[1], classes, proba_name)):
                columns[column] = array[:, i]
        else:
            columns[name] = array
    return columns


def _split_names(
    name: str, width: int, classes: Sequence[Any] | None, proba_name: str = PROBA_OUTPUT_NAME
) -> list[str]:
    if name == proba_name:
        return proba_columns(classes, width, name)
    return [f"{name}_{i}" for i in range(width)]


def _taker(inputs: Any, rows: int) -> Callable[[np.ndarray[Any, Any]], Any]:
    """Rows of ``inputs`` (which has ``rows``) by position (sorted, unique); all of them without
    a copy."""

    def pick(selection: np.ndarray[Any, Any]) -> Any:
        if isinstance(inputs, pd.DataFrame):
            return inputs.iloc[selection]
        if isinstance(inputs, dict):
            return {k: np.asarray(v)[selection] for k, v in inputs.items()}
        return np.asarray(inputs)[selection]

    return lambda selection: inputs if len(selection) == rows else pick(selection)


def needed_columns(scorer: Scorer) -> Sequence[str]:
    """What a reader must load: the model's columns and the passthrough ones, each once."""
    return list(dict.fromkeys([*scorer.input_columns(), *scorer.keep]))
