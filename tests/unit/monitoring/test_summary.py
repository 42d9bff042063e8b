"""Window summaries: counts on the profile's bins, merging, JSON, new labels, times."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from seaway.errors import InvalidInputError
from seaway.monitoring.summary import (
    MAX_NEW_LABELS,
    CategoricalSummary,
    NumericSummary,
    WindowSummary,
    merge_all,
    profile_digest,
    summarize,
)
from seaway.packaging.profile import CategoricalFeature, NumericFeature, build_profile


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    data = pd.DataFrame(
        {
            "a": a,
            "b": 0.8 * a + 0.6 * rng.normal(size=rows),
            "k": rng.integers(0, 6, size=rows),
            "when": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 10**6, rows), "s"),
            "city": rng.choice(["Oslo", "Lima", "Pune"], size=rows),
            "vip": rng.random(rows) < 0.2,
        }
    )
    data.loc[rng.random(rows) < 0.05, "a"] = np.nan
    data.loc[rng.random(rows) < 0.05, "city"] = None
    return data


REFERENCE = frame(3000)
PROFILE = build_profile(REFERENCE)


def test_the_reference_summarizes_to_its_own_profile_counts() -> None:
    summary = summarize(REFERENCE, PROFILE)
    assert summary.n_rows == 3000
    assert summary.profile == profile_digest(PROFILE)
    for name, part in summary.numeric.items():
        feature = PROFILE.features[name]
        assert isinstance(feature, NumericFeature)
        assert part.counts == feature.bins.counts
        assert (part.count, part.missing) == (feature.count, feature.missing)
        assert part.mean == pytest.approx(feature.mean)
        assert part.std == pytest.approx(feature.std)
        assert (part.min, part.max, part.below, part.above) == (feature.min, feature.max, 0, 0)
    for name, cpart in summary.categorical.items():
        feature = PROFILE.features[name]
        assert isinstance(feature, CategoricalFeature)
        assert dict(cpart.counts) == dict(feature.top)
        assert (cpart.missing, cpart.new, cpart.other) == (feature.missing, {}, 0)
    assert set(summary.numeric) == {"a", "b", "k", "when"}
    assert set(summary.categorical) == {"city", "vip"}


def test_multivariate_statistics_give_the_reference_error() -> None:
    block = PROFILE.multivariate
    assert block is not None
    mv = summarize(REFERENCE, PROFILE).multivariate
    assert mv is not None
    assert mv.rows == 3000
    assert np.asarray(mv.total) == pytest.approx(np.zeros(len(block.features)), abs=1e-9)
    assert mv.error / mv.rows == pytest.approx(block.error_mean)
    squared = block.mean_squared_error(mv.rows, mv.outer_matrix())
    assert squared == pytest.approx(block.squared_error_mean)


def test_merging_equals_summarizing_the_concatenation() -> None:
    window = frame(5000, seed=9)
    parts = [window.iloc[:1], window.iloc[1:1700], window.iloc[1700:1700], window.iloc[1700:]]
    merged = merge_all(summarize(part, PROFILE) for part in parts)
    whole = summarize(window, PROFILE)
    assert merged.n_rows == whole.n_rows
    for name, part in whole.numeric.items():
        other = merged.numeric[name]
        assert (other.counts, other.missing, other.infinite) == (part.counts, part.missing, 0)
        assert (other.min, other.max, other.below, other.above) == (
            part.min,
            part.max,
            part.below,
            part.above,
        )
        assert other.mean == pytest.approx(part.mean, rel=1e-12, abs=1e-12)
        assert other.m2 == pytest.approx(part.m2, rel=1e-9)
    assert merged.categorical == whole.categorical
    assert merged.multivariate is not None
    assert whole.multivariate is not None
    assert merged.multivariate.rows == whole.multivariate.rows
    assert merged.multivariate.error == pytest.approx(whole.multivariate.error)
    assert merged.multivariate.outer_matrix() == pytest.approx(whole.multivariate.outer_matrix())
    assert merged.multivariate.total == pytest.approx(whole.multivariate.total, abs=1e-9)


def test_json_round_trip() -> None:
    window = frame(500, seed=2)
    window.loc[0, "b"] = np.inf
    summary = summarize(window, PROFILE, times=pd.Series(window["when"]))
    back = WindowSummary.from_json(summary.to_json())
    assert back == summary
    assert back.start is not None
    assert back.start.tzinfo is not None
    assert back.numeric["b"].infinite == 1
    empty = summarize(window.iloc[:0], PROFILE)
    assert WindowSummary.from_json(empty.to_json()) == empty


@pytest.mark.parametrize("text", ["{", "[]", '{"format": 99}', '{"format": 1}'])
def test_bad_json_is_a_clear_error(text: str) -> None:
    with pytest.raises(InvalidInputError, match="not a window summary"):
        WindowSummary.from_json(text)


def test_new_labels_are_kept_and_capped_when_the_reference_listed_every_category() -> None:
    labels = ["Oslo"] * 5 + [f"new{i:03d}" for i in range(MAX_NEW_LABELS + 10)] + ["new000"]
    window = pd.DataFrame({"city": labels, "vip": [True] * len(labels)})
    part = summarize(window, PROFILE).categorical["city"]
    assert part.counts == {"Oslo": 5}
    assert len(part.new) == MAX_NEW_LABELS
    assert part.new["new000"] == 2
    assert part.other == 10
    assert part.count == len(labels)
    merged = part.merge(part)
    assert (merged.new["new000"], merged.other, merged.count) == (4, 20, 2 * len(labels))


def test_labels_outside_a_capped_reference_go_to_other() -> None:
    values = [f"c{i}" for i in range(30) for _ in range(i + 1)]
    profile = build_profile({"c": values}, max_categories=5)
    part = summarize(pd.DataFrame({"c": ["c29", "c0", "zzz"]}), profile).categorical["c"]
    assert (dict(part.counts), dict(part.new), part.other) == ({"c29": 1}, {}, 2)


def test_values_outside_the_reference_range_are_counted() -> None:
    window = pd.DataFrame({"k": [-1, 0, 5, 6, 7, np.nan]})
    part = summarize(window, PROFILE).numeric["k"]
    assert (part.below, part.above, part.missing, part.count) == (1, 2, 1, 5)


def test_features_the_frame_lacks_are_left_out_and_extra_columns_ignored() -> None:
    summary = summarize(REFERENCE[["a", "city"]].assign(extra=1), PROFILE)
    assert summary.features == ("a", "city")
    assert summary.multivariate is None  # b, k and when are missing


def test_unnamed_columns_match_features_by_position_name() -> None:
    data = np.random.default_rng(0).normal(size=(100, 3))
    profile = build_profile(data)
    summary = summarize(pd.DataFrame(data), profile)  # integer column labels 0, 1, 2
    assert summary.features == ("0", "1", "2")


def test_times_and_explicit_bounds() -> None:
    times = pd.to_datetime(["2024-05-02T10:00Z", "2024-05-01T09:00Z", None])
    summary = summarize(REFERENCE.iloc[:3], PROFILE, times=times)
    assert summary.start == datetime(2024, 5, 1, 9, tzinfo=UTC)
    assert summary.end == datetime(2024, 5, 2, 10, tzinfo=UTC)
    later = summarize(REFERENCE.iloc[:3], PROFILE, start=datetime(2024, 6, 1), end=None)
    assert later.start == datetime(2024, 6, 1, tzinfo=UTC)
    merged = summary.merge(later)
    assert (merged.start, merged.end) == (summary.start, summary.end)


def test_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="strip an 'input.' prefix"):
        summarize(pd.DataFrame({"input.a": [1.0]}), PROFILE)
    with pytest.raises(InvalidInputError, match="pandas DataFrame"):
        summarize(np.zeros((2, 2)), PROFILE)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="duplicated column"):
        summarize(pd.DataFrame([[1.0, 2.0]], columns=["a", "a"]), PROFILE)
    with pytest.raises(InvalidInputError, match="no window summaries"):
        merge_all([])
    other = build_profile({"a": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match="different reference profiles"):
        summarize(REFERENCE, PROFILE).merge(summarize(REFERENCE, other))


def test_numeric_merge_of_empty_parts() -> None:
    empty = NumericSummary(counts=(0, 0))
    full = NumericSummary(counts=(1, 2), mean=2.0, m2=2.0, min=1.0, max=3.0)
    assert empty.merge(full) == full
    assert full.merge(empty) == full
    assert empty.std is None
    with pytest.raises(InvalidInputError, match="different bins"):
        full.merge(NumericSummary(counts=(1,)))
    assert CategoricalSummary(counts={}).count == 0


def test_the_digest_is_remembered_per_profile_object_only_while_it_lives() -> None:
    import gc

    from seaway.monitoring import summary as module

    profile = build_profile({"a": [1.0, 2.0, 3.0]})
    digest = profile_digest(profile)
    assert profile_digest(profile) == digest
    assert profile_digest(build_profile({"a": [1.0, 2.0, 3.0]})) == digest  # by content
    assert id(profile) in module._DIGESTS
    key = id(profile)
    del profile
    gc.collect()
    assert key not in module._DIGESTS
