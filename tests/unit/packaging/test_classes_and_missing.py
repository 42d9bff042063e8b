"""What log_model learns beyond types: class labels (and the column names they make), and which
inputs take missing values; and the one check every entry point applies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

import seaway
from seaway.errors import InvalidInputError
from seaway.packaging.classes import proba_columns
from seaway.packaging.signature import TensorSpec, coerce_array, infer_signature
from seaway.runtime.model import load_package
from seaway.types import Datatype

X = np.random.default_rng(2).normal(size=(60, 3))


@pytest.mark.parametrize(
    ("classes", "names"),
    [
        (["high", "low"], ["predict_proba_high", "predict_proba_low"]),
        ([1, 2, 3], ["predict_proba_1", "predict_proba_2", "predict_proba_3"]),
        ([False, True], ["predict_proba_False", "predict_proba_True"]),
        # not plain column names, or not distinct as text: by position, all of them
        (["a b", "c"], ["predict_proba_0", "predict_proba_1"]),
        ([-1, 1], ["predict_proba_0", "predict_proba_1"]),
        ([0.5, 1.5], ["predict_proba_0", "predict_proba_1"]),
        ([1, "1"], ["predict_proba_0", "predict_proba_1"]),
        (None, ["predict_proba_0", "predict_proba_1"]),
        (["a", "b", "c"], ["predict_proba_0", "predict_proba_1"]),  # width differs
    ],
)
def test_probability_columns_are_named_by_class_when_safe(
    classes: list[object] | None, names: list[str]
) -> None:
    assert proba_columns(classes, 2 if len(names) == 2 else 3) == names


def test_integer_classes_are_recorded_and_regressors_have_none(tmp_path: Path) -> None:
    y = np.array([3, 5, 7] * 20)
    package = seaway.save_model(LogisticRegression().fit(X, y), tmp_path / "c", sample_input=X[:5])
    assert package.manifest.signature.classes == (3, 5, 7)
    package = seaway.save_model(
        LinearRegression().fit(X, X[:, 0]), tmp_path / "r", sample_input=X[:5]
    )
    assert package.manifest.signature.classes is None


def test_a_model_that_takes_nan_keeps_taking_it(tmp_path: Path) -> None:
    """HistGradientBoosting handles NaN natively: the probe at log time finds it out, though the
    sample had none; LinearRegression does not, and NaN is refused before it reaches it."""
    hgb = HistGradientBoostingRegressor(max_iter=5).fit(X, X[:, 0])
    seaway.save_model(hgb, tmp_path / "hgb", sample_input=X[:5])
    model = load_package(tmp_path / "hgb")
    assert model.signature.inputs[0].allows_missing is True
    holes = X[:3].copy()
    holes[1, 2] = np.nan
    assert model.predict(holes).shape == (3,)

    seaway.save_model(LinearRegression().fit(X, X[:, 0]), tmp_path / "lin", sample_input=X[:5])
    model = load_package(tmp_path / "lin")
    assert model.signature.inputs[0].allows_missing is False
    with pytest.raises(InvalidInputError) as info:
        model.predict(holes)
    assert str(info.value).startswith("input 'input' has a missing value (row 1):")
    assert "\n" not in str(info.value)


def test_a_sample_with_missing_values_allows_them() -> None:
    frame = pd.DataFrame({"x": [1.0, np.nan, 3.0], "tag": ["a", None, "b"]})
    sig = infer_signature(frame)
    assert [spec.allows_missing for spec in sig.inputs] == [True, True]
    assert sig.coerce(frame)["tag"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize(
    ("spec", "values", "message"),
    [
        (
            TensorSpec(name="n", datatype=Datatype.INT64, shape=(-1,)),
            [1, None],
            "INT64 cannot hold one",
        ),
        (
            TensorSpec(name="n", datatype=Datatype.INT64, shape=(-1,)),
            [1.0, np.nan],
            "INT64 cannot hold one",
        ),
        (
            TensorSpec(name="b", datatype=Datatype.BOOL, shape=(-1,)),
            [True, None],
            "BOOL cannot hold one",
        ),
        (TensorSpec(name="t", datatype=Datatype.BYTES, shape=(-1,)), ["a", None], "does not take"),
        (
            TensorSpec(name="f", datatype=Datatype.FP64, shape=(-1,), allows_missing=False),
            [1.0, np.nan],
            "does not take",
        ),
    ],
)
def test_missing_values_are_refused_with_the_input_and_row(
    spec: TensorSpec, values: list[object], message: str
) -> None:
    array = np.array(values, dtype=object if None in values else None)
    with pytest.raises(
        InvalidInputError, match=rf"input '{spec.name}' has a missing value \(row 1\)"
    ):
        coerce_array(array, spec)
    with pytest.raises(InvalidInputError, match=message):
        coerce_array(array, spec)


def test_old_float_specs_still_take_nan() -> None:
    spec = TensorSpec(name="f", datatype=Datatype.FP64, shape=(-1,))  # nothing recorded
    assert np.isnan(coerce_array(np.array([1.0, np.nan]), spec)[1])
