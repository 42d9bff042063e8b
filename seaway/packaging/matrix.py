"""A dataframe model's columns taken from one 2-D array (``[rows, columns]``, in signature order).

A 2-D array has one datatype, but a model's columns often have several (FP64 amounts beside
INT64 counts). Each column is cast to its own datatype where no value changes:

- the cases :func:`~seaway.packaging.signature.cast_to` allows everywhere (the same kind, integers
  to floats, text to numbers that parse);
- floats (or wider integers) to an integer column when every value is a whole number within the
  column's range (``19.0`` -> ``19``; ``19.5``, NaN, infinity or ``300`` for INT8 are refused);
- numbers to a BOOL column when every value is 0 or 1.

Anything else is refused with an ``InvalidInputError`` naming the column, the value and its row,
and saying how to send the columns instead (one 1-D tensor each). A string column cannot come
from a numeric array: numbers are not text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seaway.errors import InvalidInputError, quoted
from seaway.packaging.signature import TensorSpec, cast_to
from seaway.types import Datatype

Array = np.ndarray[Any, Any]


def matrix_columns(matrix: Array, specs: Sequence[TensorSpec]) -> dict[str, Array]:
    """``{column name: 1-D array}`` of ``matrix``'s columns, each cast to its spec's datatype."""
    if matrix.ndim != 2 or matrix.shape[1] != len(specs):
        raise InvalidInputError(
            f"a 2-D input for this model has {len(specs)} columns; got shape {list(matrix.shape)}"
        )
    return {spec.name: column_of(matrix, index, spec) for index, spec in enumerate(specs)}


def column_of(matrix: Array, index: int, spec: TensorSpec) -> Array:
    column = matrix[:, index]
    target = spec.datatype
    kind = column.dtype.kind
    if target is Datatype.BYTES:
        if kind in "biufc":
            first = column[0] if column.size else None
            raise _refused(spec, index, first, 0, "text, and a numeric 2-D input holds none")
        return cast_to(column, target, spec.name)
    wanted = target.numpy_dtype
    if kind in "fiu" and wanted.kind in "iu" and not np.can_cast(column.dtype, wanted, "safe"):
        return _whole_numbers(column, index, spec)  # floats, or integers that may not fit
    if kind in "biuf" and wanted.kind == "b":
        bad = np.flatnonzero((column != 0) & (column != 1))
        if bad.size:
            row = int(bad[0])
            raise _refused(spec, index, column[row], row, "BOOL values, 0 or 1")
        return column.astype(wanted)
    return cast_to(column, target, spec.name)


def _whole_numbers(column: Array, index: int, spec: TensorSpec) -> Array:
    wanted = spec.datatype.numpy_dtype
    limits = np.iinfo(wanted)
    with np.errstate(invalid="ignore"):
        good = np.isfinite(column) & (np.trunc(column) == column)
        # the bounds as floats are exact powers of two: the top is excluded (2**63 is not int64)
        good &= (column >= float(limits.min)) & (column < float(int(limits.max) + 1))
    bad = np.flatnonzero(~good)
    if bad.size:
        row = int(bad[0])
        raise _refused(spec, index, column[row], row, "whole numbers in its range")
    return column.astype(wanted)


def _refused(spec: TensorSpec, index: int, value: Any, row: int, what: str) -> InvalidInputError:
    shown = value.item() if isinstance(value, np.generic) else value
    return InvalidInputError(
        f"column {quoted(spec.name)} (column {index} of the 2-D input) is "
        f"{spec.datatype.value} and takes {what}; row {row} holds {quoted(shown)}. A 2-D input "
        "has one datatype, cast to each column's own only where no value changes: send one 1-D "
        "tensor per column to give each its own datatype"
    )
