"""Reference profile format 2: the fine histogram and the multivariate block; format 1 still loads."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from seaway.packaging.profile import (
    FINE_BINS,
    NumericFeature,
    ReferenceProfile,
    build_profile,
    category_counts,
)
from seaway.packaging.profile_multivariate import EXPLAINED_VARIANCE


def numeric(data: object, name: str = "0") -> NumericFeature:
    feature = build_profile(data).feature(name)
    assert isinstance(feature, NumericFeature)
    return feature


def correlated(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=rows)
    return pd.DataFrame(
        {
            "a": a,
            "b": 0.9 * a + np.sqrt(1 - 0.81) * rng.normal(size=rows),
            "c": rng.normal(size=rows),
            "d": rng.exponential(size=rows),
        }
    )


def test_fine_histogram_has_percentile_edges_with_exact_counts() -> None:
    values = np.random.default_rng(1).normal(size=10_000).round(2)  # ties on the edges
    f = numeric(values)
    assert f.fine is not None
    assert len(f.fine.counts) <= FINE_BINS
    assert len(f.fine.counts) > 90  # a few percentiles coincide after rounding
    bins = np.searchsorted(f.fine.edges, values)
    assert tuple(np.bincount(bins, minlength=len(f.fine.counts))) == f.fine.counts
    assert min(f.fine.counts) > 0
    assert f.bins is f.fine


def test_decile_edges_are_fine_edges() -> None:
    for seed, rows in [(0, 37), (1, 1000), (2, 12_345)]:
        values = np.random.default_rng(seed).integers(0, rows // 3 + 2, size=rows)
        f = numeric(values)
        assert f.fine is not None
        assert set(f.histogram.edges) <= set(f.fine.edges)


def test_fine_histogram_of_a_range_and_of_few_values() -> None:
    f = numeric(np.arange(1000))
    assert f.fine is not None
    assert f.fine.edges == tuple(float(k) for k in range(9, 999, 10))
    assert f.fine.counts == (10,) * 100
    binary = numeric(np.array([0] * 7 + [1] * 3))
    assert binary.fine == binary.histogram


def test_multivariate_block_matches_scikit_learn_pca() -> None:
    pytest.importorskip("sklearn")
    from sklearn.decomposition import PCA

    frame = correlated(5000)
    block = build_profile(frame).multivariate
    assert block is not None
    assert block.features == ("a", "b", "c", "d")
    assert block.n == 5000
    z = ((frame - frame.mean()) / frame.std(ddof=0)).to_numpy()
    assert block.mean == pytest.approx(tuple(frame.mean()))
    pca = PCA(n_components=EXPLAINED_VARIANCE, svd_solver="full").fit(z)
    w = block.component_matrix()
    assert w.shape == pca.components_.shape
    assert np.abs(w @ pca.components_.T) == pytest.approx(np.eye(len(w)), abs=1e-8)  # up to sign
    assert block.explained == pytest.approx(pca.explained_variance_ratio_.sum())
    assert block.explained >= EXPLAINED_VARIANCE
    errors = np.linalg.norm(z - pca.inverse_transform(pca.transform(z)), axis=1)  # NannyML's
    assert block.error_mean == pytest.approx(errors.mean(), rel=1e-9)
    assert block.error_std == pytest.approx(errors.std(), rel=1e-9)
    assert block.squared_error_mean == pytest.approx((errors**2).mean(), rel=1e-9)


def test_multivariate_leaves_out_constants_and_text_and_imputes_missing() -> None:
    frame = correlated(500)
    frame["const"] = 3.0
    frame["text"] = "x"
    frame.loc[::7, "c"] = np.nan
    frame.loc[3, "d"] = np.inf
    block = build_profile(frame).multivariate
    assert block is not None
    assert block.features == ("a", "b", "c", "d")
    z = block.standardise([frame[n].to_numpy(float) for n in block.features])
    assert np.isfinite(z).all()
    assert z.shape == (4, 500)  # feature-major
    assert (z[2, ::7] == 0).all()
    assert z[3, 3] == 0


def test_no_multivariate_block_without_two_varying_numeric_features() -> None:
    assert build_profile({"a": [1.0, 2.0, 3.0], "b": [5, 5, 5]}).multivariate is None
    assert build_profile({"a": [1.0, 2.0], "s": ["x", "y"]}).multivariate is None


def test_one_component_fewer_than_features_even_when_two_are_independent() -> None:
    rng = np.random.default_rng(3)
    block = build_profile(rng.normal(size=(2000, 2))).multivariate
    assert block is not None
    assert len(block.components) == 1  # two would reconstruct every row exactly


def test_multivariate_ignores_row_order() -> None:
    frame = correlated(3000, seed=5)
    shuffled = frame.sample(frac=1.0, random_state=2)
    assert json.dumps(build_profile(frame).model_dump(mode="json")) == json.dumps(
        build_profile(shuffled).model_dump(mode="json")
    )


def test_version_1_profiles_still_load() -> None:
    data = build_profile(correlated(200)).model_dump(mode="json")
    data["format_version"] = 1
    del data["multivariate"]
    for feature in data["features"].values():
        del feature["fine"]
    profile = ReferenceProfile.model_validate(data)
    feature = profile.feature("a")
    assert isinstance(feature, NumericFeature)
    assert feature.fine is None
    assert feature.bins is feature.histogram
    assert profile.multivariate is None


def test_a_tampered_block_or_fine_histogram_is_refused() -> None:
    data = build_profile(correlated(200)).model_dump(mode="json")
    bad = json.loads(json.dumps(data))
    bad["multivariate"]["std"] = bad["multivariate"]["std"][:-1]
    with pytest.raises(ValidationError, match="multivariate"):
        ReferenceProfile.model_validate(bad)
    bad = json.loads(json.dumps(data))
    bad["features"]["a"]["fine"]["counts"][0] += 1
    with pytest.raises(ValidationError, match="histogram"):
        ReferenceProfile.model_validate(bad)


def test_category_counts_label_live_values_as_the_profile_does() -> None:
    values = pd.Series([1, "1", b"a", None, 2.5, "a"], dtype=object)
    assert category_counts(values) == ({"1": 2, "a": 2, "2.5": 1}, 1)
    assert category_counts(np.array([True, False, True])) == ({"True": 2, "False": 1}, 0)
    profile = build_profile({"c": values})
    assert dict(profile.features["c"].top) == category_counts(values)[0]  # type: ignore[union-attr]
