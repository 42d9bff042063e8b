"""Missing values (NaN, None): which inputs may hold them, the check, and how logging learns it.

One rule for every entry point (``Model.predict``, REST, gRPC, ``/invocations``, ``seaway
predict``, batch), applied by ``signature.coerce_array``: a missing value reaches the model only
where the input's spec allows it, because a model that cannot take one fails on it with its own
message (scikit-learn's is several lines long), or worse, silently predicts from a ``"None"``.

``log_model`` records ``allows_missing`` on each input spec: true when the sample held a missing
value there; otherwise the live model is asked (:func:`probe_missing`): one row of the sample with
that input missing is predicted, and the input allows missing values exactly when that works
(XGBoost, LightGBM, HistGradientBoosting, pipelines with an imputer do; a LogisticRegression does
not). Asking the model, not a list of flavors, is what keeps models that take NaN working.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seaway.errors import InvalidInputError
from seaway.types import Datatype

if TYPE_CHECKING:
    from seaway.packaging.signature import Signature, TensorSpec


def missing_allowed(spec: TensorSpec) -> bool:
    """Whether NaN/None may reach the model in this input (batch rejects the rows otherwise).

    Categorical columns always (values outside the categories become missing by design); integer
    and boolean inputs never (they cannot hold one); otherwise what ``log_model`` recorded, and
    for packages that recorded nothing, the rule they were served with: NaN in floats only.
    """
    if spec.categories is not None:
        return True
    kind = spec.datatype.numpy_dtype.kind
    if kind != "f" and spec.datatype is not Datatype.BYTES:
        return False
    if spec.allows_missing is None:
        return kind == "f"
    return spec.allows_missing


def missing_mask(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
    """Where ``array`` holds NaN or None; None when it cannot hold either (ints, bools)."""
    if array.dtype.kind == "f":
        mask: np.ndarray[Any, Any] = np.isnan(array)
        return mask
    if array.dtype.kind == "O":
        return np.asarray(pd.isna(array), dtype=bool)
    return None


def refuse_missing(array: np.ndarray[Any, Any], spec: TensorSpec) -> None:
    """Raise ``InvalidInputError`` naming the input and the first row with a missing value."""
    if array.size == 0:
        return
    if array.dtype.kind == "f" and not np.isnan(np.min(array)):  # the common case: no NaN
        return
    mask = missing_mask(array)
    if mask is None or not mask.any():
        return
    row = int(np.argwhere(mask)[0][0])
    if spec.datatype.numpy_dtype.kind in "biu":
        why = f"{spec.datatype.value} cannot hold one"
    else:
        why = (
            "the model does not take missing values there; fill it in (or, if the model takes "
            "them, log it with a sample_input that has one there)"
        )
    raise InvalidInputError(f"input {spec.name!r} has a missing value (row {row}): {why}")


def sample_has_missing(array: np.ndarray[Any, Any]) -> bool | None:
    """True when a sample holds a missing value (the model takes them); None: not known yet."""
    mask = missing_mask(array)
    return True if mask is not None and mask.any() else None


def probe_missing(signature: Signature, predictor: Any, native: Any) -> Signature:
    """``signature`` with ``allows_missing`` decided for every input the sample left open.

    ``native`` is the sample as ``signature.coerce`` made it. Integer and boolean inputs cannot
    hold a missing value (False); float and text inputs are tried on the live model, one row
    each.
    """
    inputs = []
    for spec in signature.inputs:
        if spec.allows_missing is None and spec.categories is None:
            holds = spec.datatype.numpy_dtype.kind == "f" or spec.datatype is Datatype.BYTES
            allowed = holds and _takes_missing(predictor, native, signature, spec)
            spec = spec.model_copy(update={"allows_missing": allowed})
        inputs.append(spec)
    return signature.model_copy(update={"inputs": tuple(inputs)})


def _takes_missing(predictor: Any, native: Any, signature: Signature, spec: TensorSpec) -> bool:
    try:
        row = _one_row_missing(native, signature, spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            predictor.predict(row)
    except Exception:  # the model refuses missing values here (or the probe does not fit it)
        return False
    return True


def _one_row_missing(native: Any, signature: Signature, spec: TensorSpec) -> Any:
    if signature.input_format == "dataframe":
        row = native.iloc[:1].copy()
        if spec.datatype is Datatype.BYTES:
            row[spec.name] = np.array([None], dtype=object)
        else:
            row[spec.name] = np.array([np.nan], dtype=row[spec.name].dtype)
        return row
    if signature.input_format == "tensors":
        rows = {name: np.asarray(value)[:1].copy() for name, value in native.items()}
        rows[spec.name] = _blank(rows[spec.name])
        return rows
    return _blank(np.asarray(native)[:1].copy())


def _blank(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """The same array with every value missing (one row: the whole row, the strictest probe)."""
    if array.dtype.kind == "f":
        array[...] = np.nan
        return array
    blank = np.empty(array.shape, dtype=object)
    blank[...] = None
    return blank
