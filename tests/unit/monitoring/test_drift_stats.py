"""Drift statistics against scipy on the same data, and their null laws against simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
from scipy.spatial.distance import jensenshannon

from seaway.monitoring import stats
from seaway.packaging.profile import NumericFeature, build_profile


def binned(reference: np.ndarray, window: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Both samples' counts on the reference's fine bins, and the bins' knots."""
    feature = build_profile(reference).feature("0")
    assert isinstance(feature, NumericFeature)
    assert feature.fine is not None
    assert feature.min is not None
    assert feature.max is not None
    edges = feature.fine.edges
    ref = np.bincount(np.searchsorted(edges, reference), minlength=len(edges) + 1)
    win = np.bincount(np.searchsorted(edges, window), minlength=len(edges) + 1)
    return ref, win, [feature.min, *edges, feature.max]


RNG = np.random.default_rng(0)
REFERENCE = RNG.normal(size=20_000)


@pytest.mark.parametrize(("shift", "spread"), [(0.0, 1.0), (0.1, 1.0), (0.5, 1.0), (0.0, 1.3)])
def test_ks_matches_scipy_within_the_binning(shift: float, spread: float) -> None:
    window = RNG.normal(shift, spread, size=50_000)
    ref, win, _ = binned(REFERENCE, window)
    exact = scipy.stats.ks_2samp(REFERENCE, window).statistic
    assert stats.ks(ref, win) <= exact + 1e-12  # binning only hides gaps
    assert stats.ks(ref, win) == pytest.approx(exact, abs=0.01)  # 1% of the rows per bin


@pytest.mark.parametrize(("shift", "spread"), [(0.1, 1.0), (0.5, 1.0), (0.0, 1.3)])
def test_wasserstein_matches_scipy_within_the_binning(shift: float, spread: float) -> None:
    window = RNG.normal(shift, spread, size=50_000)
    ref, win, knots = binned(REFERENCE, window)
    exact = scipy.stats.wasserstein_distance(REFERENCE, window)
    assert stats.wasserstein(ref, win, knots) == pytest.approx(exact, rel=0.15)


def test_wasserstein_of_identical_counts_is_zero_and_of_a_moved_bin_its_distance() -> None:
    assert stats.wasserstein([1, 1], [1, 1], [0.0, 1.0, 2.0]) == 0.0
    # all mass moved from the uniform bin [0, 1] to the uniform bin [1, 3]: means 0.5 and 2
    assert stats.wasserstein([1, 0], [0, 1], [0.0, 1.0, 3.0]) == pytest.approx(1.5)


def test_psi_by_hand() -> None:
    ref, win = [50, 30, 20], [40, 30, 30]
    expected = (0.4 - 0.5) * math.log(0.4 / 0.5) + (0.3 - 0.2) * math.log(0.3 / 0.2)
    assert stats.psi(ref, win) == pytest.approx(expected)
    assert stats.psi([1, 0], [1, 0]) == 0.0
    assert stats.psi([1, 1], [2, 0]) == pytest.approx(
        (1 - 0.5) * math.log(1 / 0.5) + (stats.PSI_FLOOR - 0.5) * math.log(stats.PSI_FLOOR / 0.5)
    )


@pytest.mark.parametrize(("ref", "win"), [([5, 3, 2], [2, 2, 6]), ([1, 0, 3], [0, 4, 4])])
def test_jensen_shannon_matches_scipy(ref: list[int], win: list[int]) -> None:
    assert stats.jensen_shannon(ref, win) == pytest.approx(jensenshannon(ref, win))


def test_chi_squared_matches_scipy_contingency() -> None:
    ref, win = np.array([500, 300, 150, 50]), np.array([90, 70, 30, 10])
    statistic, df = stats.chi_squared(ref, win)
    expected = scipy.stats.chi2_contingency(np.vstack((ref, win)), correction=False)
    assert statistic == pytest.approx(expected.statistic)
    assert df == expected.dof
    assert stats.chi_squared_p_value(statistic, df) == pytest.approx(expected.pvalue)


def test_chi_squared_pools_bins_expected_to_be_rare() -> None:
    ref, win = np.array([5000, 3000, 40, 30, 0]), np.array([500, 300, 3, 2, 0])
    statistic, df = stats.chi_squared(ref, win)  # about 4 and 3 rows expected in the window
    pooled = np.array([[5000, 3000, 70], [500, 300, 5]])
    expected = scipy.stats.chi2_contingency(pooled, correction=False)
    assert (statistic, df) == (pytest.approx(expected.statistic), 2)
    # still rare once pooled: the pool joins the smallest common bin
    statistic, df = stats.chi_squared(np.array([900, 100, 1]), np.array([90, 10, 0]))
    assert df == 1
    assert stats.chi_squared([5], [3]) == (0.0, 0)


def test_rate_test_is_scipy_binomial_test_of_the_conditional_split() -> None:
    # 3 events in 1000 reference rows, 9 in 2000 window rows: given 12 events, each is in the
    # window with probability 2/3
    one_sided = stats.rate_p_value(3, 1000, 9, 2000, two_sided=False)
    assert one_sided == pytest.approx(scipy.stats.binomtest(9, 12, 2 / 3, "greater").pvalue)
    assert stats.rate_p_value(3, 1000, 0, 2000, two_sided=False) == 1.0
    assert stats.rate_p_value(0, 1000, 0, 0, two_sided=True) == 1.0
    # a single unseen event in a window 20 times smaller than the reference is no surprise
    assert stats.rate_p_value(1, 20_000, 1, 1000, two_sided=False) > 0.05


def test_thresholds_and_p_values_agree() -> None:
    for n, m in [(20_000, 1000), (20_000, 10**6)]:
        threshold = stats.ks_threshold(0.01, n, m)
        assert stats.ks_p_value(threshold, n, m) == pytest.approx(0.01)
        limit = stats.divergence_threshold(0.01, 9, n, m)
        assert stats.divergence_p_value(limit, 9, n, m) == pytest.approx(0.01)
    assert stats.chi_squared_p_value(stats.chi_squared_threshold(0.01, 3), 3) == pytest.approx(0.01)
    # a million window rows do not make the threshold vanish: the reference's size bounds it
    assert stats.ks_threshold(0.05, 20_000, 10**6) > stats.ks_threshold(0.05, 10**6, 10**6) * 5


def null_draws(p: np.ndarray, n: int, m: int, trials: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    return rng.multinomial(n, p, size=trials), rng.multinomial(m, p, size=trials)


@pytest.mark.parametrize(("n", "m"), [(20_000, 1000), (20_000, 200_000)])
def test_null_quantiles_of_psi_and_jensen_shannon_match_multinomial_samples(n: int, m: int) -> None:
    p = np.array([0.1] * 10)
    refs, wins = null_draws(p, n, m, 4000, seed=1)
    psis = np.array([stats.psi(r, w) for r, w in zip(refs, wins, strict=True)])
    js = np.array([stats.jensen_shannon(r, w) for r, w in zip(refs, wins, strict=True)])
    assert np.quantile(psis, 0.95) == pytest.approx(
        stats.divergence_threshold(0.05, 9, n, m), rel=0.1
    )
    js_limit = math.sqrt(stats.divergence_threshold(0.05, 9, n, m) / 8)
    assert np.quantile(js, 0.95) == pytest.approx(js_limit, rel=0.05)


def test_ks_threshold_bounds_the_binned_null() -> None:
    p = np.full(100, 0.01)
    refs, wins = null_draws(p, 20_000, 5000, 4000, seed=2)
    ks = np.array([stats.ks(r, w) for r, w in zip(refs, wins, strict=True)])
    limit = stats.ks_threshold(0.05, 20_000, 5000)
    assert 0.02 < np.mean(ks > limit) <= 0.05  # Kolmogorov's law is a bound, and a close one


def test_simulated_wasserstein_null_matches_multinomial_samples() -> None:
    feature = build_profile(REFERENCE).feature("0")
    assert isinstance(feature, NumericFeature)
    assert feature.fine is not None
    assert feature.min is not None
    assert feature.max is not None
    knots = [feature.min, *feature.fine.edges, feature.max]
    counts = np.asarray(feature.fine.counts)
    null = stats.wasserstein_null(counts, knots, np.random.default_rng(3), 20_000)
    assert np.all(np.diff(null) >= 0)
    n, m = 20_000, 3000
    refs, wins = null_draws(counts / counts.sum(), n, m, 3000, seed=4)
    sampled = np.array([stats.wasserstein(r, w, knots) for r, w in zip(refs, wins, strict=True)])
    root = math.sqrt(stats.scale(n, m))
    assert np.quantile(sampled, 0.95) == pytest.approx(np.quantile(null, 0.95) * root, rel=0.05)
