"""Drift: shifts are found, unchanged data raises no alarm at any window size, results read well."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InvalidInputError
from seaway.monitoring.drift import DriftResult, drift, drift_of_frame
from seaway.monitoring.summary import merge_all, summarize
from seaway.packaging.profile import ReferenceProfile, build_profile

CITIES = ["Oslo", "Lima", "Pune", "Kyiv"]


def rows(
    rng: np.random.Generator,
    n: int,
    *,
    shift: float = 0.0,
    spread: float = 1.0,
    rho: float = 0.8,
    new_city: float = 0.0,
) -> pd.DataFrame:
    """Six features: a and b standard normals with correlation ``rho`` (shifted and spread in a),
    a skewed c, an integer k, a categorical city and a boolean vip."""
    a = rng.normal(size=n)
    b = rho * a + np.sqrt(1 - rho**2) * rng.normal(size=n)
    city = rng.choice(4, size=n, p=[0.4, 0.3, 0.2, 0.1])
    city[rng.random(n) < new_city] = 4
    return pd.DataFrame(
        {
            "a": shift + spread * a,
            "b": b,
            "c": rng.exponential(size=n),
            "k": rng.integers(0, 8, size=n),
            "city": pd.Categorical.from_codes(city, [*CITIES, "Quito"]),
            "vip": rng.random(n) < 0.3,
        }
    )


def window(profile: ReferenceProfile, rng: np.random.Generator, n: int, **shape: Any) -> Any:
    """A window's summary, summarized in parts of at most 250k rows and merged."""
    parts = [min(250_000, n - start) for start in range(0, n, 250_000)]
    return merge_all(summarize(rows(rng, size, **shape), profile) for size in parts)


@pytest.fixture(scope="module")
def reference() -> ReferenceProfile:
    return build_profile(rows(np.random.default_rng(100), 20_000))


def test_a_mean_shift_of_a_tenth_of_a_std_in_a_large_window_is_found(
    reference: ReferenceProfile,
) -> None:
    result = drift(reference, window(reference, np.random.default_rng(1), 100_000, shift=0.1))
    assert result.drifted
    assert result.drifted_features == ("a",)
    row = result.feature("a")
    assert row.test == "ks"
    assert row.statistic is not None
    assert row.threshold is not None
    assert row.statistic > row.threshold
    assert row.effects["mean_shift"] == pytest.approx(0.1, abs=0.03)  # the reference's mean: 0.017
    assert row.statistics["wasserstein_std"] == pytest.approx(0.1, abs=0.03)
    # the same shift in a small window is within chance: the threshold grows as the window shrinks
    small = drift(reference, window(reference, np.random.default_rng(1), 1000, shift=0.1))
    assert small.feature("a").threshold > 3 * row.threshold  # type: ignore[operator]


def test_a_new_category_is_found(reference: ReferenceProfile) -> None:
    result = drift(reference, window(reference, np.random.default_rng(2), 20_000, new_city=0.01))
    assert result.drifted_features == ("city",)
    row = result.feature("city")
    check = {c.name: c for c in row.checks}["new categories"]
    assert check.drifted
    assert row.effects["new_categories"] == ["Quito"]
    assert row.effects["new_share"] == pytest.approx(0.01, abs=0.003)
    # a single unseen value in a small window is not an alarm
    one = rows(np.random.default_rng(3), 1000)
    one.loc[0, "city"] = "Quito"  # one of the frame's categories, unused so far
    assert not drift_of_frame(reference, one).feature("city").drifted


def test_a_changed_variance_is_found(reference: ReferenceProfile) -> None:
    result = drift(reference, window(reference, np.random.default_rng(4), 100_000, spread=1.15))
    assert "a" in result.drifted_features
    assert result.feature("a").effects["std_ratio"] == pytest.approx(1.15, abs=0.02)
    assert abs(result.feature("a").effects["mean_shift"]) < 0.02


def test_a_changed_correlation_with_unchanged_marginals_is_found_only_jointly(
    reference: ReferenceProfile,
) -> None:
    result = drift(reference, window(reference, np.random.default_rng(5), 100_000, rho=0.0))
    assert result.drifted_features == ()
    mv = result.multivariate
    assert mv is not None
    assert mv.drifted
    assert mv.error is not None
    assert mv.upper is not None
    assert mv.error > mv.upper
    assert mv.squared_error is not None
    assert mv.reference_squared_error is not None
    assert mv.squared_error > mv.reference_squared_error
    assert result.drifted


def test_missing_values_and_values_out_of_range_are_checked(reference: ReferenceProfile) -> None:
    data = rows(np.random.default_rng(6), 10_000)
    data.loc[:999, "c"] = np.nan  # 10% missing where the reference had none
    data.loc[:99, "k"] = 9  # 1% beyond the reference's maximum of 7
    result = drift_of_frame(reference, data)
    checks = {(row.feature, c.name): c for row in result.features for c in row.checks}
    assert checks[("c", "missing")].drifted
    assert checks[("c", "missing")].rate == pytest.approx(0.1)
    assert checks[("k", "out of range")].drifted
    assert result.feature("k").effects["out_of_range"] == pytest.approx(0.01)
    assert not checks[("a", "missing")].drifted
    one = rows(np.random.default_rng(7), 1000)
    one.loc[0, "c"] = np.nan  # one missing value is not an alarm
    assert not drift_of_frame(reference, one).feature("c").checks[0].drifted


def false_alarm(reference_rng: np.random.Generator, size: int) -> bool:
    profile = build_profile(rows(reference_rng, 20_000))
    return drift(profile, window(profile, reference_rng, size)).drifted


def test_no_false_alarms_from_the_reference_distribution_at_any_window_size() -> None:
    """Each trial draws a fresh reference and a fresh window from one distribution. Thresholds
    that ignored the reference's own noise would alarm in nearly every trial of a million rows;
    ones that ignored the window's size, at a thousand."""
    alarms = {}
    plan = [(1000, 40), (10_000, 40), (100_000, 20), (1_000_000, 6)]
    for size, trials in plan:
        alarms[size] = sum(
            false_alarm(np.random.default_rng([size, i]), size) for i in range(trials)
        )
    assert sum(alarms.values()) <= 0.05 * sum(trials for _, trials in plan), alarms
    assert max(alarms.values()) <= 3, alarms  # no window size stands out


@pytest.mark.parametrize(
    ("numeric_test", "categorical_test"), [("wasserstein", "jensenshannon"), ("psi", "psi")]
)
def test_the_other_tests_find_shifts_and_keep_quiet_on_unchanged_data(
    reference: ReferenceProfile, numeric_test: Any, categorical_test: Any
) -> None:
    options = {"numeric_test": numeric_test, "categorical_test": categorical_test}
    rng = np.random.default_rng(8)
    same = drift(reference, window(reference, rng, 50_000), **options)
    assert not same.drifted
    assert {row.test for row in same.features} == {numeric_test, categorical_test}
    shifted = rows(rng, 50_000, shift=0.2)
    shifted["city"] = pd.Categorical(rng.choice(CITIES, size=50_000, p=[0.3, 0.3, 0.3, 0.1]))
    result = drift_of_frame(reference, shifted, **options)
    assert result.drifted_features == ("a", "city")
    for name in ("a", "city"):
        row = result.feature(name)
        assert row.p_value is not None
        assert row.p_value < 1e-4  # the simulated null's smallest is one in its draws


def test_the_simulated_wasserstein_null_is_seeded(reference: ReferenceProfile) -> None:
    summary = window(reference, np.random.default_rng(9), 5000)
    first = drift(reference, summary, numeric_test="wasserstein", seed=1)
    assert first == drift(reference, summary, numeric_test="wasserstein", seed=1)
    other = drift(reference, summary, numeric_test="wasserstein", seed=2)
    assert first.feature("a").threshold != other.feature("a").threshold
    generated = [
        drift(reference, summary, numeric_test="wasserstein", seed=np.random.default_rng(3))
        for _ in range(2)
    ]
    assert generated[0] == generated[1]


def test_thresholds_override_the_calibrated_ones(reference: ReferenceProfile) -> None:
    summary = window(reference, np.random.default_rng(10), 100_000, shift=0.1)
    assert not drift(reference, summary, thresholds={"a": 0.5}).drifted
    loose = drift(reference, window(reference, np.random.default_rng(11), 1000))
    strict = drift(reference, window(reference, np.random.default_rng(11), 1000),
                   thresholds={"b": 1e-9})  # fmt: skip
    assert not loose.drifted
    assert strict.drifted_features == ("b",)
    assert strict.feature("b").threshold == 1e-9


def test_alpha_trades_false_alarms_for_sensitivity(reference: ReferenceProfile) -> None:
    summary = window(reference, np.random.default_rng(12), 10_000)
    strict = drift(reference, summary, alpha=0.001).feature("a").threshold
    assert strict > drift(reference, summary, alpha=0.2).feature("a").threshold  # type: ignore[operator]


def test_result_as_json(reference: ReferenceProfile) -> None:
    data = rows(np.random.default_rng(13), 2000)
    data["c"] = np.nan
    result = drift_of_frame(reference, data.drop(columns=["vip"]))
    assert isinstance(result, DriftResult)
    assert result.skipped == ("vip",)
    dumped = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert [row["feature"] for row in dumped["features"]] == ["a", "b", "c", "k", "city"]
    c = dumped["features"][2]
    assert (c["statistic"], c["threshold"], c["drifted"]) == (None, None, True)  # all missing
    assert c["checks"][0]["name"] == "missing"
    assert dumped["multivariate"]["rows"] == 2000
    assert dumped["drifted_features"] == ["c"]
    with pytest.raises(InvalidInputError, match="no feature 'zz'"):
        result.feature("zz")


def test_format_1_profiles_drift_on_their_deciles() -> None:
    data = build_profile(rows(np.random.default_rng(14), 20_000)).model_dump(mode="json")
    data["format_version"] = 1
    del data["multivariate"]
    for feature in data["features"].values():
        feature.pop("fine", None)
    old = ReferenceProfile.model_validate(data)
    rng = np.random.default_rng(15)
    assert not drift_of_frame(old, rows(rng, 100_000)).drifted
    result = drift_of_frame(old, rows(rng, 100_000, shift=0.1))
    assert result.drifted_features == ("a",)
    assert result.multivariate is None


def test_bad_arguments(reference: ReferenceProfile) -> None:
    summary = window(reference, np.random.default_rng(16), 100)
    with pytest.raises(InvalidInputError, match="alpha"):
        drift(reference, summary, alpha=1.5)
    with pytest.raises(InvalidInputError, match="numeric_test"):
        drift(reference, summary, numeric_test="t")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="categorical_test"):
        drift(reference, summary, categorical_test="t")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"unknown features \['zz'\]"):
        drift(reference, summary, thresholds={"zz": 1.0})
    other = build_profile(rows(np.random.default_rng(17), 500))
    with pytest.raises(InvalidInputError, match="another reference profile"):
        drift(other, summary)
