"""Pool-adjacent-violators and the per-class calibration equal scikit-learn's isotonic regression."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression, isotonic_regression

from seaway.errors import PackagingError
from seaway.packaging.calibration import (
    Calibration,
    fit_calibration,
    isotonic_fit,
    pool_adjacent_violators,
)


def test_pav_equals_sklearn_on_random_sequences() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 200))
        y = rng.normal(size=n)
        w = rng.random(n) + 0.05
        assert np.allclose(pool_adjacent_violators(y, w), isotonic_regression(y, sample_weight=w))
        assert np.allclose(pool_adjacent_violators(y), isotonic_regression(y))


def test_isotonic_fit_predicts_as_sklearn_with_ties_weights_and_clipping() -> None:
    rng = np.random.default_rng(1)
    for case in range(200):
        n = int(rng.integers(1, 300))
        x = rng.random(n)
        if case % 3 == 0:
            x = np.round(x, 1)  # ties in x are pooled first
        y = (rng.random(n) < x).astype(float) if case % 2 else rng.random(n)
        w = rng.random(n) + 0.1 if case % 5 == 0 else None
        ours = isotonic_fit(x, y, w)
        theirs = IsotonicRegression(out_of_bounds="clip", y_min=0, y_max=1).fit(
            x, y, sample_weight=w
        )
        grid = np.concatenate([rng.random(50) * 1.4 - 0.2, x])
        assert np.allclose(ours(grid), theirs.predict(grid), atol=1e-12)


def test_isotonic_fit_keeps_only_the_bends() -> None:
    fitted = isotonic_fit(np.linspace(0, 1, 1000), np.r_[np.zeros(500), np.ones(500)])
    assert len(fitted.x) == 4


def test_binary_calibration_maps_the_positive_class() -> None:
    rng = np.random.default_rng(2)
    p = rng.random(5000)
    truth = (rng.random(5000) < p**2).astype(int)  # overconfident model: real rate is p squared
    proba = np.column_stack([1 - p, p])
    calibration = fit_calibration(proba, truth, [0, 1])
    assert set(calibration.maps) == {"1"} and calibration.binary
    calibrated = calibration.apply(np.array([[0.5, 0.5], [0.1, 0.9]]))
    assert calibrated[:, 1] == pytest.approx([0.25, 0.81], abs=0.06)
    assert np.allclose(calibrated.sum(axis=1), 1.0)
    again = Calibration.model_validate_json(calibration.model_dump_json())
    assert np.array_equal(again.apply(proba), calibration.apply(proba))


def test_multiclass_calibration_renormalises_rows() -> None:
    rng = np.random.default_rng(3)
    raw = rng.random((3000, 3))
    proba = raw / raw.sum(axis=1, keepdims=True)
    truth = np.array([rng.choice(3, p=row) for row in proba])
    calibration = fit_calibration(proba, truth, ["a", "b", "c"])
    assert set(calibration.maps) == {"0", "1", "2"}
    out = calibration.apply(proba)
    assert np.allclose(out.sum(axis=1), 1.0)
    assert np.abs(out - proba).mean() < 0.05  # already calibrated: little changes


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(PackagingError, match="one label per row"):
        fit_calibration(np.full((3, 2), 0.5), [0, 1], [0, 1])
    with pytest.raises(PackagingError, match="one probability column per class"):
        fit_calibration(np.full((3, 3), 0.3), [0, 1, 2], [0, 1])
    calibration = fit_calibration(np.full((2, 2), 0.5), [0, 1], [0, 1])
    with pytest.raises(PackagingError, match="for 2 classes"):
        calibration.apply(np.full((2, 3), 0.3))
    with pytest.raises(PackagingError, match="no rows"):
        isotonic_fit([np.nan], [1.0])
