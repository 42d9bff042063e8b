"""The reference profile: statistics per feature kind, edge cases, input forms and JSON round trip."""

from __future__ import annotations

import json
import math
import sys
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from seaway.errors import InvalidInputError, PackagingError
from seaway.packaging.profile import (
    CategoricalFeature,
    NumericFeature,
    ReferenceProfile,
    build_profile,
    category_label,
    numeric_values,
)


def numeric(data: Any, name: str = "0", **kwargs: Any) -> NumericFeature:
    feature = build_profile(data, **kwargs).feature(name)
    assert isinstance(feature, NumericFeature)
    return feature


def categorical(data: Any, name: str = "0", **kwargs: Any) -> CategoricalFeature:
    feature = build_profile(data, **kwargs).feature(name)
    assert isinstance(feature, CategoricalFeature)
    return feature


def roundtrip(profile: ReferenceProfile) -> ReferenceProfile:
    return ReferenceProfile.model_validate(json.loads(json.dumps(profile.model_dump(mode="json"))))


# numeric features


def test_numeric_statistics_of_a_range() -> None:
    f = numeric(np.arange(100))
    assert (f.kind, f.dtype, f.count, f.missing, f.infinite) == ("numeric", "int64", 100, 0, 0)
    assert (f.mean, f.min, f.max) == (49.5, 0.0, 99.0)
    assert f.std == pytest.approx(math.sqrt((100**2 - 1) / 12))  # population std of 0..n-1
    # numpy's linear interpolation: position q * (n - 1)
    expected = {
        0.01: 0.99,
        0.05: 4.95,
        0.25: 24.75,
        0.5: 49.5,
        0.75: 74.25,
        0.95: 94.05,
        0.99: 98.01,
    }
    for level, value in expected.items():
        assert f.quantile(level) == pytest.approx(value)
    assert np.allclose(
        f.quantiles, np.quantile(np.arange(100), f.quantile_levels), rtol=0, atol=1e-12
    )


def test_percentiles_are_exact_where_they_fall_on_a_value() -> None:
    f = numeric(np.arange(101.0))
    assert f.quantile_levels == tuple(k / 100 for k in range(101))
    assert f.quantiles == tuple(float(k) for k in range(101))
    assert f.quantile(0.07) == 7.0


def test_histogram_edges_are_deciles_with_open_outer_bins() -> None:
    f = numeric(np.arange(100))
    assert f.histogram.edges == (9.0, 19.0, 29.0, 39.0, 49.0, 59.0, 69.0, 79.0, 89.0)
    assert f.histogram.counts == (10,) * 10
    small = numeric(np.arange(10))
    assert small.histogram.edges == tuple(float(k) for k in range(9))
    assert small.histogram.counts == (1,) * 10


def test_low_cardinality_histogram_is_deduplicated_and_has_no_empty_bin() -> None:
    binary = numeric(np.array([0] * 7 + [1] * 3))
    assert binary.histogram.edges == (0.0,)
    assert binary.histogram.counts == (7, 3)
    three = numeric(np.array([1, 1, 1, 1, 1, 2, 2, 2, 3, 3]))
    assert three.histogram.edges == (1.0, 2.0)
    assert three.histogram.counts == (5, 3, 2)
    constant = numeric(np.full(50, 4.2))
    assert constant.histogram.edges == ()
    assert constant.histogram.counts == (50,)
    assert (constant.min, constant.max, constant.std) == (4.2, 4.2, 0.0)
    assert set(constant.quantiles) == {4.2}


def test_live_values_binned_with_searchsorted_reproduce_the_reference_counts() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.normal(size=997), [-np.inf, np.inf, np.inf]])
    values = np.round(values, 1)  # ties on the edges
    f = numeric(values)
    bins = np.searchsorted(f.histogram.edges, values)  # the documented rule for live data
    assert tuple(np.bincount(bins, minlength=len(f.histogram.counts))) == f.histogram.counts
    assert min(f.histogram.counts) > 0


def test_missing_and_infinite_values() -> None:
    values = np.array([1.0, np.nan, 2.0, np.inf, -np.inf, np.inf, 3.0, np.nan])
    f = numeric(values)
    assert (f.count, f.missing, f.infinite) == (6, 2, 3)
    assert (f.mean, f.min, f.max) == (2.0, 1.0, 3.0)  # over the finite values
    assert f.histogram.edges == (1.0, 2.0)
    assert f.histogram.counts == (2, 1, 3)  # -inf in the first bin, +inf twice in the last
    assert f.missing_rate == 0.25


@pytest.mark.parametrize(
    "values",
    [
        np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0]),
        pd.Series([1, 2, 3, None, 5, 6], dtype="Int64"),
        pd.Series([1, 2, 3, None, 5, 6], dtype="Float32"),
        pd.Series([1, 2, 3, None, 5, 6], dtype=object),
        pd.Series([Decimal(1), Decimal(2), Decimal(3), None, Decimal(5), Decimal(6)]),
    ],
)
def test_histogram_counts_sum_to_the_non_missing_count(values: Any) -> None:
    f = numeric(values)
    assert (f.count, f.missing, f.mean) == (5, 1, 3.4)
    assert sum(f.histogram.counts) == f.count


def test_all_missing_or_infinite_numeric_columns() -> None:
    empty = numeric(np.full(4, np.nan))
    assert (empty.count, empty.missing, empty.mean, empty.quantiles) == (0, 4, None, ())
    assert empty.histogram.counts == (0,)
    assert math.isnan(empty.quantile(0.5))
    infinite = numeric(np.array([np.inf, -np.inf, np.nan]))
    assert (infinite.count, infinite.infinite, infinite.min) == (2, 2, None)
    assert infinite.histogram.counts == (2,)
    nullable = numeric(pd.Series([None, None], dtype="Int64"))
    assert (nullable.count, nullable.missing, nullable.dtype) == (0, 2, "Int64")


def test_datetimes_and_timedeltas_are_numeric_seconds() -> None:
    naive = pd.to_datetime(pd.Series(["1970-01-02", None, "1970-01-03"]))
    f = numeric(naive)
    assert (f.min, f.max, f.missing) == (86400.0, 172800.0, 1)
    assert f.dtype.startswith("datetime64")
    aware = pd.Series(pd.to_datetime(["2020-01-01T01:00"]).tz_localize("Europe/Oslo"))
    assert numeric(aware).min == 1577836800.0  # midnight UTC
    assert numeric(pd.Series(pd.to_timedelta(["1min", "2h"]))).max == 7200.0


def test_quantile_level_must_be_a_probability() -> None:
    with pytest.raises(InvalidInputError, match="between 0 and 1"):
        numeric(np.arange(3)).quantile(1.5)


# categorical and boolean features


def test_categorical_counts_most_frequent_first_ties_by_label() -> None:
    f = categorical(pd.Series(["b", "a", None, "c", "a", "b", "d"]))
    assert (f.kind, f.dtype, f.count, f.missing, f.distinct) == ("categorical", "str", 6, 1, 4)
    assert list(f.top.items()) == [("a", 2), ("b", 2), ("c", 1), ("d", 1)]
    assert f.other == 0


def test_categories_beyond_the_cap_fold_into_other() -> None:
    values = [f"c{i:02d}" for i in range(60) for _ in range(i + 1)]  # c59 is the most frequent
    f = categorical(np.array(values))
    assert f.distinct == 60
    assert len(f.top) == 50
    assert next(iter(f.top.items())) == ("c59", 60)
    assert f.other == sum(range(1, 11))  # c00..c09 are the ten least frequent
    assert sum(f.top.values()) + f.other == f.count == len(values)
    capped = categorical(np.array(values), max_categories=2)
    assert capped.top == {"c59": 60, "c58": 59}
    assert capped.other == len(values) - 119


def test_category_dtype_ignores_unused_categories_and_labels_values_as_strings() -> None:
    values = pd.Series(pd.Categorical([1, 2, 2, None], categories=[1, 2, 3]))
    f = categorical(values)
    assert (f.dtype, f.count, f.missing, f.distinct, f.top) == (
        "category",
        3,
        1,
        2,
        {"2": 2, "1": 1},
    )


@pytest.mark.parametrize(
    ("values", "dtype"),
    [
        (np.array([True, False, True]), "bool"),
        (pd.Series([True, None, False, True], dtype="boolean"), "boolean"),
        (pd.Series([True, None, False, True], dtype=object), "object"),
    ],
)
def test_booleans(values: Any, dtype: str) -> None:
    f = categorical(values)
    assert (f.kind, f.dtype, f.distinct, f.top) == ("boolean", dtype, 2, {"True": 2, "False": 1})
    assert f.missing == len(values) - 3


def test_mixed_object_column_is_counted_by_label() -> None:
    f = categorical(pd.Series([1, "1", "a", None, 2.5, b"a"], dtype=object))
    assert f.kind == "categorical"
    assert f.top == {"1": 2, "a": 2, "2.5": 1}
    assert (f.count, f.missing, f.distinct) == (5, 1, 3)


def test_bytes_are_decoded() -> None:
    assert categorical(np.array([b"a", b"b", b"a"])).top == {"a": 2, "b": 1}
    assert categorical({"0": [b"a", "a"]}).top == {"a": 2}


def test_all_missing_text_column() -> None:
    f = categorical(pd.Series([None, None], dtype=object))
    assert (f.count, f.missing, f.distinct, f.top, f.other) == (0, 2, 0, {}, 0)
    assert f.missing_rate == 1.0


def test_live_conversion_helpers_match_the_profile() -> None:
    assert [category_label(v) for v in (np.str_("x"), b"x", np.bool_(True), np.int64(3))] == [
        "x",
        "x",
        "True",
        "3",
    ]
    live = numeric_values(pd.Series(["1.5", "oops", None], dtype=object))
    assert live[0] == 1.5
    assert np.isnan(live[1:]).all()  # unparseable live values count as missing
    assert numeric_values(pd.to_datetime(["1970-01-01T00:00:10"]))[0] == 10.0


# input forms


def test_dataframe_with_every_kind() -> None:
    frame = pd.DataFrame(
        {
            "age": [31, 45, None],
            "city": ["Oslo", "Lima", "Oslo"],
            "vip": [True, False, True],
            "plan": pd.Categorical(["a", "b", "a"]),
            "n": pd.array([1, None, 3], dtype="Int64"),
        }
    )
    profile = build_profile(frame)
    assert profile.n_rows == 3
    assert list(profile.features) == ["age", "city", "vip", "plan", "n"]
    assert [f.kind for f in profile.features.values()] == [
        "numeric",
        "categorical",
        "boolean",
        "categorical",
        "numeric",
    ]
    assert frame["age"].isna().sum() == 1  # the input is left untouched


def test_arrays_series_and_dicts_get_names() -> None:
    assert list(build_profile(np.zeros((4, 3))).features) == ["0", "1", "2"]
    named = build_profile(np.zeros((4, 2)), feature_names=["x", "y"])
    assert list(named.features) == ["x", "y"]
    assert list(build_profile(np.arange(4)).features) == ["0"]
    assert list(build_profile([1, 2, 3]).features) == ["0"]
    assert list(build_profile(pd.Series([1, 2], name="height")).features) == ["height"]
    assert list(build_profile(pd.Series([1, 2])).features) == ["0"]
    mixed = build_profile({"a": [1.0, 2.0], "b": np.array(["x", "y"]), 3: pd.Series([1, 2])})
    assert list(mixed.features) == ["a", "b", "3"]
    assert mixed.n_rows == 2


def test_two_dimensional_object_array_is_profiled_per_column() -> None:
    profile = build_profile(np.array([[1, "a"], [2, "b"], [3, "a"]], dtype=object))
    assert profile.feature("0").kind == "numeric"
    assert profile.feature("1").kind == "categorical"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (pd.DataFrame({"a": []}), "reference_data is empty"),
        (np.zeros((0, 3)), "reference_data is empty"),
        ({"a": []}, "reference_data is empty"),
        (pd.DataFrame(index=range(3)), "no features"),
        ({}, "no features"),
        (5, "is a scalar"),
        (np.float64(1.0), "is a scalar"),
        ("abc", "is a scalar"),
        (np.zeros((2, 2, 2)), r"shape \[2, 2, 2\]"),
        ({1, 2}, "type set cannot be profiled"),
        (object(), "type object cannot be profiled"),
        ([[1, 2], [3]], "cannot be read as an array"),
        ({"a": [1, 2], "b": [1]}, "different lengths"),
        ({"a": np.zeros((2, 2))}, "feature 'a' has shape"),
        ({"a": 1}, "is a scalar"),
        (np.array([1 + 2j]), "feature '0' is complex"),
        (pd.DataFrame([[1, 2]], columns=["a", "a"]), r"duplicated feature names \['a'\]"),
    ],
)
def test_bad_input_is_a_packaging_error(data: Any, message: str) -> None:
    with pytest.raises(PackagingError, match=message):
        build_profile(data)


def test_bad_options() -> None:
    with pytest.raises(PackagingError, match="feature_names has 1 names but reference_data has 2"):
        build_profile(np.zeros((3, 2)), feature_names=["x"])
    with pytest.raises(PackagingError, match="max_categories must be at least 1"):
        build_profile(np.zeros(3), max_categories=0)


# the profile object


def test_feature_lookup_names_the_known_features() -> None:
    profile = build_profile({"age": [1, 2], "city": ["a", "b"]})
    assert profile.feature("age").kind == "numeric"
    with pytest.raises(InvalidInputError, match="no feature 'agee'; its features are: age, city"):
        profile.feature("agee")


def test_json_round_trip_keeps_every_kind() -> None:
    profile = build_profile(
        pd.DataFrame(
            {
                "x": [0.5, np.nan, np.inf, 2.0],
                "s": ["a", None, "b", "a"],
                "b": [True, False, True, True],
                "empty": [np.nan] * 4,
            }
        )
    )
    back = roundtrip(profile)
    assert back == profile
    assert isinstance(back.feature("x"), NumericFeature)
    assert isinstance(back.feature("b"), CategoricalFeature)
    assert back.feature("b").kind == "boolean"


def test_json_shape() -> None:
    dumped = build_profile({"n": [1, 2], "c": ["a", "a"]}).model_dump(mode="json")
    assert dumped["format_version"] == 2
    assert dumped["n_rows"] == 2
    assert dumped["features"]["c"] == {
        "kind": "categorical",
        "dtype": "str",
        "count": 2,
        "missing": 0,
        "distinct": 1,
        "top": {"a": 2},
        "other": 0,
    }
    assert dumped["features"]["n"]["histogram"] == {"edges": [1.0], "counts": [1, 1]}
    assert dumped["features"]["n"]["fine"] == {"edges": [1.0], "counts": [1, 1]}
    assert dumped["multivariate"] is None  # one numeric feature


def test_profile_is_frozen_and_validated() -> None:
    profile = build_profile(np.arange(10))
    with pytest.raises(ValidationError):
        profile.n_rows = 3
    tampered = profile.model_dump(mode="json")
    tampered["features"]["0"]["histogram"]["counts"][0] += 1
    with pytest.raises(ValidationError, match="histogram"):
        ReferenceProfile.model_validate(tampered)


def test_profiles_are_deterministic_and_ignore_row_order() -> None:
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=1000),
            "k": rng.integers(0, 5, size=1000),
            "c": rng.choice(["p", "q", "r", "s"], size=1000),
        }
    )
    shuffled = frame.sample(frac=1.0, random_state=1)
    first = build_profile(frame).model_dump(mode="json")
    assert json.dumps(first) == json.dumps(build_profile(frame).model_dump(mode="json"))
    assert first == build_profile(shuffled).model_dump(mode="json")


def _function_calls(data: Any) -> tuple[ReferenceProfile, int]:
    """The profile of ``data`` and how many Python and C functions building it called."""
    calls = 0

    def count(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    previous = sys.getprofile()
    sys.setprofile(count)
    try:
        profile = build_profile(data)
    finally:
        sys.setprofile(previous)
    return profile, calls


@pytest.mark.slow
def test_a_million_rows_by_twenty_features_is_fast() -> None:
    """Fast means vectorised: the work done in Python does not grow with the rows (a per-value
    loop takes minutes, and makes millions of calls). Counted, not timed."""
    data = np.random.default_rng(0).normal(size=(1_000_000, 20))
    build_profile(data[:10])  # imports and first-call set-up are not the profile's work
    _, small = _function_calls(data[:1000])
    profile, large = _function_calls(data)
    assert profile.n_rows == 1_000_000
    assert large - small < 1000, (small, large)  # a loop over values would add 20 million
