"""The A/B test: a known effect is found, and peeking after every batch keeps its level."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seaway.errors import InvalidInputError
from seaway.routing.abtest import ABResult, compare, default_tau2
from seaway.routing.stats import ArmStats

ALPHA = 0.05


def arm(values: np.ndarray) -> ArmStats:
    values = np.asarray(values, dtype=float)
    return counters(len(values), float(values.sum()), float((values**2).sum()))


def counters(n: int, total: float, total_sq: float) -> ArmStats:
    return ArmStats(outcome_n=n, outcome_sum=total, outcome_sumsq=total_sq)


def ab(control: ArmStats, treatment: ArmStats, *, min_samples: int = 100) -> ABResult:
    return compare(
        control,
        treatment,
        alpha=ALPHA,
        min_samples=min_samples,
        control_version="3",
        treatment_version="4",
    )


def test_a_known_conversion_lift_is_found_in_nearly_every_run_and_never_backwards() -> None:
    rng = np.random.default_rng(11)
    runs, n = 200, 6000
    control = (rng.random((runs, n)) < 0.10).sum(axis=1)
    treatment = (rng.random((runs, n)) < 0.13).sum(axis=1)
    results = [
        ab(counters(n, float(c), float(c)), counters(n, float(t), float(t)))
        for c, t in zip(control, treatment, strict=True)
    ]
    found = [r for r in results if r.significant]
    assert len(found) >= 0.9 * runs
    assert all(r.difference is not None and r.difference > 0 for r in found)
    assert all(r.message.startswith("version 4 is better") for r in found)


def test_a_known_conversion_lift_is_significant_in_the_right_direction() -> None:
    rng = np.random.default_rng(1)
    control = (rng.random(6000) < 0.10).astype(float)
    treatment = (rng.random(6000) < 0.13).astype(float)
    result = ab(arm(control), arm(treatment))
    assert result.enough_data and result.significant
    assert result.p_value is not None and result.p_value <= ALPHA
    assert (
        result.difference is not None and result.ci_low is not None and result.ci_high is not None
    )
    assert 0 < result.ci_low < 0.03 < result.ci_high
    assert result.difference == pytest.approx(treatment.mean() - control.mean())
    assert result.message.startswith("version 4 is better: +")
    assert "points (95% CI +" in result.message
    assert result.control.version == "3" and result.treatment.version == "4"
    assert result.treatment.n == 6000 and result.treatment.mean == pytest.approx(treatment.mean())
    t = result.treatment
    assert t.ci_low is not None and t.ci_high is not None and t.ci_low < 0.13 < t.ci_high


def test_a_worse_treatment_names_the_control_as_better() -> None:
    rng = np.random.default_rng(13)
    result = ab(arm(rng.random(6000) < 0.13), arm(rng.random(6000) < 0.10))
    assert result.significant
    assert result.difference is not None and result.difference < 0
    assert result.ci_high is not None and result.ci_high < 0
    assert result.message.startswith("version 3 is better: version 4 is -")


def test_a_continuous_outcome_effect_is_found_and_not_called_points() -> None:
    rng = np.random.default_rng(14)
    result = ab(arm(rng.normal(10.0, 3.0, 4000)), arm(rng.normal(10.5, 3.0, 4000)))
    assert result.significant
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low < 0.5 < result.ci_high
    assert result.message.startswith("version 4 is better: +0.")
    assert "points" not in result.message


def test_too_few_outcomes_give_no_verdict_and_say_how_many() -> None:
    rng = np.random.default_rng(15)
    result = ab(arm(rng.random(500) < 0.1), arm(np.ones(37)))
    assert not result.enough_data and not result.significant
    assert result.p_value is None and result.difference is None and result.ci_low is None
    assert result.message == "not enough data yet: 37 of 100 outcomes for version 4"
    both = ab(arm(np.ones(12)), arm(np.ones(37)))
    assert both.message == (
        "not enough data yet: 37 of 100 outcomes for version 4, 12 of 100 outcomes for version 3"
    )
    empty = ab(ArmStats(), ArmStats())
    assert empty.control.n == 0 and empty.control.mean is None and empty.control.ci_low is None


def test_equal_arms_are_no_significant_difference() -> None:
    rng = np.random.default_rng(16)
    result = ab(arm(rng.random(3000) < 0.1), arm(rng.random(3000) < 0.1))
    assert result.enough_data and not result.significant
    assert result.message == "no significant difference yet"
    assert result.ci_low is not None and result.ci_high is not None
    assert result.ci_low < 0 < result.ci_high
    assert result.p_value is not None and ALPHA < result.p_value <= 1.0


def test_constant_outcomes_do_not_divide_by_zero() -> None:
    same = ab(arm(np.zeros(200)), arm(np.zeros(200)))
    assert same.enough_data and not same.significant and same.p_value == 1.0
    apart = ab(arm(np.zeros(200)), arm(np.ones(200)))
    assert apart.significant and apart.p_value == 0.0
    assert apart.ci_low == apart.ci_high == 1.0


def test_bad_parameters_are_refused_naming_them() -> None:
    with pytest.raises(InvalidInputError, match="alpha"):
        compare(ArmStats(), ArmStats(), alpha=0.7, min_samples=100)
    with pytest.raises(InvalidInputError, match="min_samples"):
        compare(ArmStats(), ArmStats(), alpha=0.05, min_samples=0)
    with pytest.raises(InvalidInputError, match="tau2"):
        compare(ArmStats(), ArmStats(), alpha=0.05, min_samples=10, tau2=-1.0)


def test_default_tau2_is_a_tenth_of_the_pooled_standard_deviation_squared() -> None:
    rng = np.random.default_rng(17)
    a, b = rng.normal(0, 2.0, 1000), rng.normal(5, 2.0, 3000)
    pooled = (999 * a.var(ddof=1) + 2999 * b.var(ddof=1)) / 3998
    assert default_tau2(arm(a), arm(b)) == pytest.approx(0.01 * pooled)
    assert default_tau2(ArmStats(), arm(np.ones(1))) is None


# ---- peeking: sequences of cumulative counters looked at after every batch --------------------


def looks(values: np.ndarray, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(runs, n_outcomes) values -> cumulative n, sum and sum of squares after each batch."""
    runs, total = values.shape
    shaped = values.reshape(runs, total // batch, batch)
    sums = np.cumsum(shaped.sum(axis=2), axis=1)
    sumsqs = np.cumsum((shaped**2).sum(axis=2), axis=1)
    n = np.arange(1, total // batch + 1) * batch
    return n, sums, sumsqs


def ever_significant(
    control: np.ndarray, treatment: np.ndarray, batch: int, *, shift: float = 0.0
) -> np.ndarray:
    """Per run: was ``difference == shift`` ever rejected (compare() called at every look)."""
    n, cs, css = looks(control, batch)
    _, ts, tss = looks(treatment, batch)
    runs, steps = cs.shape
    hit = np.zeros(runs, dtype=bool)
    for r in range(runs):
        for k in range(steps):
            result = ab(
                counters(int(n[k]), float(cs[r, k]), float(css[r, k])),
                counters(int(n[k]), float(ts[r, k]), float(tss[r, k])),
            )
            if not result.enough_data:
                continue
            if shift == 0.0:
                rejected = result.significant
            else:
                assert result.ci_low is not None and result.ci_high is not None
                rejected = not result.ci_low <= shift <= result.ci_high
            if rejected:
                hit[r] = True
                break
    return hit


def naive_ever_significant(control: np.ndarray, treatment: np.ndarray, batch: int) -> np.ndarray:
    """The fixed-horizon z-test read after every batch, as someone peeking would."""
    n, cs, css = looks(control, batch)
    _, ts, tss = looks(treatment, batch)
    var_c = (css - cs**2 / n) / (n - 1)
    var_t = (tss - ts**2 / n) / (n - 1)
    z = (ts - cs) / n / np.sqrt((var_c + var_t) / n + 1e-300)
    return np.asarray((np.abs(z) > 1.959964)[:, 2:].any(axis=1))  # from n >= min_samples


def within_level(hits: np.ndarray) -> float:
    """alpha plus three binomial standard errors over these runs."""
    return ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / len(hits))


def test_a_a_conversions_peeked_after_every_batch_stay_within_alpha() -> None:
    rng = np.random.default_rng(1201)
    runs, batch, total = 300, 50, 3000
    control = (rng.random((runs, total)) < 0.1).astype(float)
    treatment = (rng.random((runs, total)) < 0.1).astype(float)
    hits = ever_significant(control, treatment, batch)
    assert hits.mean() <= within_level(hits)
    # the same peeking with a fixed-horizon test is what the sequential test protects from
    assert naive_ever_significant(control, treatment, batch).mean() > 2 * ALPHA


def test_a_a_skewed_continuous_outcomes_peeked_stay_within_alpha() -> None:
    rng = np.random.default_rng(1202)
    runs, batch, total = 200, 50, 2000
    control = rng.lognormal(0.0, 1.0, (runs, total))
    treatment = rng.lognormal(0.0, 1.0, (runs, total))
    hits = ever_significant(control, treatment, batch)
    assert hits.mean() <= within_level(hits)


def test_the_interval_covers_a_true_effect_at_every_look() -> None:
    rng = np.random.default_rng(1203)
    runs, batch, total = 200, 50, 2000
    control = rng.normal(1.0, 1.0, (runs, total))
    treatment = rng.normal(1.2, 1.0, (runs, total))
    hits = ever_significant(control, treatment, batch, shift=0.2)
    assert hits.mean() <= within_level(hits)
