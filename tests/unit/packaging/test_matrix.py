"""One 2-D input for a dataframe model whose columns have mixed datatypes: each column is cast to
its own where no value changes, and refused by name where one would."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InvalidInputError
from seaway.packaging.matrix import matrix_columns
from seaway.packaging.signature import infer_signature

SAMPLE = pd.DataFrame(
    {
        "amount": [66.4, 310.0],
        "hour": np.array([19, 3], dtype=np.int64),
        "small": np.array([1, 2], dtype=np.int8),
        "count": np.array([5, 6], dtype=np.uint32),
        "flag": [True, False],
    }
)
SIGNATURE = infer_signature(SAMPLE)


def test_whole_floats_become_each_columns_own_datatype() -> None:
    matrix = np.array([[66.4, 19.0, -3.0, 7.0, 1.0], [310.0, 3.0, 127.0, 0.0, 0.0]])
    columns = matrix_columns(matrix, SIGNATURE.inputs)
    assert {name: c.dtype for name, c in columns.items()} == dict(SAMPLE.dtypes)
    assert columns["hour"].tolist() == [19, 3] and columns["flag"].tolist() == [True, False]
    # the local entry point takes the same rows the same way
    frame = SIGNATURE.coerce(matrix)
    assert dict(frame.dtypes) == dict(SAMPLE.dtypes)
    assert frame["small"].tolist() == [-3, 127]


def test_an_integer_matrix_fills_float_columns_and_narrower_ones_where_values_fit() -> None:
    matrix = np.array([[66, 19, 1, 2, 1]], dtype=np.int64)
    assert matrix_columns(matrix, SIGNATURE.inputs)["amount"].dtype == np.float64
    assert matrix_columns(matrix, SIGNATURE.inputs)["small"].dtype == np.int8
    matrix[0, 2] = 300  # INT8 would wrap it around to 44
    with pytest.raises(InvalidInputError, match="'small'.*row 0 holds 300"):
        matrix_columns(matrix, SIGNATURE.inputs)


@pytest.mark.parametrize(
    ("column", "value", "named"),
    [
        (1, 19.5, "'hour'"),
        (1, float("nan"), "'hour'"),
        (1, float("inf"), "'hour'"),
        (1, 2.0**63, "'hour'"),  # one past INT64's top: it would wrap around
        (2, 128.0, "'small'"),  # INT8
        (3, -1.0, "'count'"),  # UINT32
        (4, 2.0, "'flag'"),  # BOOL takes 0 or 1
    ],
)
def test_a_value_that_would_change_is_refused_by_column(
    column: int, value: float, named: str
) -> None:
    matrix = np.array([[66.4, 19.0, 1.0, 2.0, 1.0], [1.0, 2.0, 3.0, 4.0, 0.0]])
    matrix[1, column] = value
    with pytest.raises(InvalidInputError) as caught:
        matrix_columns(matrix, SIGNATURE.inputs)
    message = str(caught.value)
    assert f"column {named} (column {column} of the 2-D input)" in message
    assert "row 1" in message and "one 1-D tensor per column" in message
    with pytest.raises(InvalidInputError, match=named):
        SIGNATURE.coerce(matrix)


def test_a_string_column_cannot_come_from_numbers() -> None:
    signature = infer_signature(pd.DataFrame({"amount": [1.0], "country": ["JP"]}))
    with pytest.raises(InvalidInputError, match="'country'.*BYTES"):
        matrix_columns(np.array([[1.0, 2.0]]), signature.inputs)
    text = matrix_columns(np.array([["1.5", "JP"]], dtype=object), signature.inputs)
    assert text["amount"].tolist() == [1.5] and text["country"].tolist() == ["JP"]
