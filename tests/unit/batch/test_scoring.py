"""Row checks and scoring of one chunk, without processes or files."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from seaway.batch.scoring import Scorer, score
from seaway.packaging.signature import Signature, TensorSpec
from seaway.types import Datatype


class FakeModel:
    """Sums the numeric inputs; fails on any row whose 'n' is 13; probabilities from the sum."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.calls = 0

    def predict(self, inputs: Any) -> Any:
        self.calls += 1
        frame = self.signature.coerce(inputs)
        if (frame["n"] == 13).any():
            raise ValueError("unlucky\nsecond line of the message")
        return (frame["x"] + frame["n"]).to_numpy()

    def predict_proba(self, inputs: Any) -> Any:
        p = 1 / (1 + np.exp(-self.predict(inputs)))
        return np.column_stack([1 - p, p])


SIGNATURE = Signature(
    input_format="dataframe",
    inputs=(
        TensorSpec(name="x", datatype=Datatype.FP64, shape=(-1,)),
        TensorSpec(name="n", datatype=Datatype.INT32, shape=(-1,)),
        TensorSpec(name="flag", datatype=Datatype.BOOL, shape=(-1,)),
        TensorSpec(name="tag", datatype=Datatype.BYTES, shape=(-1,)),
    ),
)


def _scorer(**options: Any) -> Scorer:
    return Scorer(FakeModel(SIGNATURE), "m", 3, keep=("id",), **options)


def test_text_columns_are_checked_row_by_row_with_reasons() -> None:
    table = pa.table(
        {
            "id": ["a", "b", "c", "d", "e", "f", "g", "h"],
            "x": ["1.5", "oops", "2", None, "4", "5", "6", " 7 "],
            "n": ["1", "2", "3.5", "4", "99999999999", "6", None, "8"],
            "flag": ["true", "false", "1", "0", "yes", "maybe", "TRUE", "n"],
            "tag": ["p", "q", "r", "s", "t", "u", "v", None],
        }
    )
    result = score(_scorer(), table, file_url="file:///in.csv", first_row=100)
    rejects = result.rejects.to_pandas()
    assert rejects["_row"].tolist() == [101, 102, 104, 105, 106, 107]
    assert rejects["_reason"].tolist() == [
        "column 'x': 'oops' is not FP64",
        "column 'n': '3.5' is not INT32",
        "column 'n': '99999999999' is not INT32",
        "column 'flag': 'maybe' is not BOOL",
        "column 'n': missing value (INT32 expected)",
        "column 'tag': missing value (BYTES expected)",
    ]
    assert set(rejects["_file"]) == {"file:///in.csv"}
    output = result.output.to_pandas()
    # a missing float goes to the model (NaN): here it just propagates
    assert output["id"].tolist() == ["a", "d"]
    np.testing.assert_allclose(output["predict"].to_numpy(), [2.5, np.nan])
    assert output.columns.tolist() == ["id", "predict", "model_name", "model_version"]
    assert set(output["model_version"]) == {3}
    assert (result.rows_in, result.rows_out, result.rows_rejected) == (8, 2, 6)


def test_typed_columns_pass_and_model_failures_are_bisected() -> None:
    n = np.arange(64, dtype=np.int32)
    table = pa.table(
        {"id": n.astype(str), "x": np.zeros(64), "n": n, "flag": n % 2 == 0, "tag": ["t"] * 64}
    )
    scorer = _scorer(proba=True)
    result = score(scorer, table, file_url="f", first_row=0)
    assert result.rows_rejected == 1
    assert result.rejects.to_pandas()["_reason"].tolist() == [
        "the model failed on this row: ValueError: unlucky"  # first line only
    ]
    output = result.output.to_pandas()
    assert output["predict"].tolist() == [float(i) for i in range(64) if i != 13]
    assert {"predict_proba_0", "predict_proba_1"} <= set(output.columns)
    # one failing row among 64 costs about 2 * log2(64) calls, not 64
    assert scorer.model.calls <= 2 * 2 * 7 + 2


def test_a_chunk_with_no_good_row() -> None:
    table = pa.table({"id": ["a"], "x": ["bad"], "n": ["1"], "flag": ["true"], "tag": ["t"]})
    result = score(_scorer(), table, file_url="f", first_row=0)
    assert (result.rows_out, result.rows_rejected) == (0, 1)
    assert result.output.num_rows == 0


@pytest.mark.parametrize(
    ("values", "datatype", "bad"),
    [
        ([1, 2, None], Datatype.INT64, [False, False, True]),
        ([1.0, 2.5, np.nan], Datatype.INT64, [False, True, True]),
        ([1.0, np.nan], Datatype.FP32, [False, False]),
        ([-1, 300], Datatype.UINT8, [True, True]),
    ],
)
def test_numeric_columns(values: list[Any], datatype: Datatype, bad: list[bool]) -> None:
    from seaway.batch.scoring import _bad_values

    found = _bad_values(pd.Series(values), datatype)
    assert (found.tolist() if found is not None else [False] * len(values)) == bad


class NativeModel:
    """A seaway Model's two doors: ``predict`` checks its inputs (again), ``predict_native`` takes
    what the signature made of them. Records what it was handed."""

    def __init__(self, signature: Signature) -> None:
        self.signature = signature
        self.seen: list[pd.DataFrame] = []

    def predict(self, inputs: Any) -> Any:
        raise AssertionError("a chunk's inputs, coerced already, were checked a second time")

    def predict_native(self, native: Any) -> Any:
        self.seen.append(native)
        return native["x"].to_numpy()


def test_a_chunk_is_coerced_once_as_the_signature_would() -> None:
    """The frame handed to the model is what ``Signature.coerce`` makes of the chunk (categories
    included: an unknown value becomes missing), built once, and not checked again."""
    signature = Signature(
        input_format="dataframe",
        inputs=(
            TensorSpec(name="x", datatype=Datatype.FP64, shape=(-1,)),
            TensorSpec(name="color", datatype=Datatype.BYTES, shape=(-1,), categories=("a", "b")),
        ),
    )
    model = NativeModel(signature)
    table = pa.table({"x": [1.0, 2.0, 3.0], "color": ["b", "z", "a"]})
    result = score(Scorer(model, "m", 1), table, file_url="f", first_row=0)
    assert result.output.column("predict").to_pylist() == [1.0, 2.0, 3.0]
    [frame] = model.seen
    expected = signature.coerce(table.to_pandas())
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["color"].isna().tolist() == [False, True, False]
