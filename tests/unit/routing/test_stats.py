"""Per-version counters: what each observation adds, quantiles from the histogram against numpy,
merging servers, per-step windows, JSON round trips, and prediction divergence."""

from __future__ import annotations

import itertools
import json
import math
from bisect import bisect_left
from typing import Any

import numpy as np
import pytest

from seaway.errors import InvalidInputError
from seaway.routing.stats import (
    LATENCY_BOUNDS_MS,
    MAX_LABELS,
    OTHER_LABEL,
    ArmStats,
    DeploymentStats,
    ShadowStats,
    divergence,
)


def observed(latencies_ms: Any, *, errors: int = 0) -> ArmStats:
    arm = ArmStats()
    for ms in latencies_ms:
        arm.observe(float(ms) / 1000, True)
    for _ in range(errors):
        arm.observe(0.001, False)
    return arm


def bucket_width(ms: float) -> float:
    i = bisect_left(LATENCY_BOUNDS_MS, ms)
    low = 0.0 if i == 0 else LATENCY_BOUNDS_MS[i - 1]
    return LATENCY_BOUNDS_MS[min(i, len(LATENCY_BOUNDS_MS) - 1)] - low


def plain(value: Any) -> bool:
    """Only what JSON holds: dicts with text keys, lists, text, numbers."""
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(plain(v) for v in value)
    return value is None or type(value) in (int, float, str)


# -- latency -------------------------------------------------------------------------------------


def test_bounds_are_log_spaced_from_50_microseconds_past_two_minutes() -> None:
    bounds = LATENCY_BOUNDS_MS
    assert bounds[0] == 0.05
    assert bounds[-2] < 120_000 <= bounds[-1]
    ratios = [b / a for a, b in itertools.pairwise(bounds)]
    assert max(ratios) / min(ratios) < 1.01
    assert all(r > 1 for r in ratios)


def test_requests_errors_and_latency_of_answers() -> None:
    arm = observed([1.0, 2.0, 3.0], errors=1)
    assert (arm.requests, arm.errors) == (4, 1)
    assert sum(arm.latency) == 3  # a failure's latency is not counted
    assert arm.error_rate == 0.25


def test_latencies_out_of_range_land_in_the_end_buckets() -> None:
    arm = observed([0.0, -1.0, 10**9])
    assert arm.latency[0] == 2
    assert arm.latency[-1] == 1
    assert arm.quantile_ms(1.0) == LATENCY_BOUNDS_MS[-1]


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.0])
@pytest.mark.parametrize("q", [0.01, 0.5, 0.9, 0.99, 0.999])
def test_quantile_is_numpys_percentile_to_a_bucket(sigma: float, q: float) -> None:
    rng = np.random.default_rng(int(sigma * 10))
    latencies = rng.lognormal(mean=math.log(5.0), sigma=sigma, size=20_000)
    estimate = observed(latencies).quantile_ms(q)
    truth = float(np.percentile(latencies, q * 100))
    assert estimate is not None
    assert abs(estimate - truth) <= max(bucket_width(truth), bucket_width(estimate))


def test_quantile_interpolates_within_its_bucket() -> None:
    # a bucket's bound would be off by half a bucket on average; interpolation does far better
    rng = np.random.default_rng(1)
    latencies = rng.lognormal(mean=math.log(5.0), sigma=1.0, size=20_000)
    arm = observed(latencies)
    errors = []
    for q in np.linspace(0.05, 0.95, 19):
        truth = float(np.percentile(latencies, q * 100))
        estimate = arm.quantile_ms(float(q))
        assert estimate is not None
        errors.append(abs(estimate - truth) / truth)
    assert float(np.mean(errors)) < 0.01


def test_quantile_of_merged_histograms_is_that_of_all_the_data() -> None:
    rng = np.random.default_rng(5)
    fast, slow = rng.lognormal(0.5, 0.2, 5000), rng.lognormal(3.0, 0.2, 500)
    merged = observed(fast).merge(observed(slow))
    truth = float(np.percentile(np.concatenate([fast, slow]), 99))
    estimate = merged.quantile_ms(0.99)
    assert estimate is not None
    assert abs(estimate - truth) <= bucket_width(truth)


def test_quantile_without_data_or_out_of_range() -> None:
    assert ArmStats().quantile_ms(0.99) is None
    assert observed([], errors=3).quantile_ms(0.5) is None
    with pytest.raises(InvalidInputError, match="from 0 to 1"):
        observed([1.0]).quantile_ms(99)


# -- outputs, outcomes, feedback -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "labels"),
    [
        (np.array([1, 0, 1]), {"1": 2, "0": 1}),
        (np.array([1, 0, 1], dtype=np.uint8), {"1": 2, "0": 1}),
        (np.array(["cat", "dog", "cat"]), {"cat": 2, "dog": 1}),
        (np.array([b"cat", b"dog"]), {"cat": 1, "dog": 1}),
        (np.array(["cat", 3], dtype=object), {"cat": 1, "3": 1}),
        (np.array([True, False, True]), {"True": 2, "False": 1}),
        (np.array([[1, 9], [2, 9]]), {"1": 1, "2": 1}),
    ],
)
def test_labels_are_counted_from_the_first_output(values: Any, labels: dict[str, int]) -> None:
    arm = ArmStats()
    arm.observe_outputs(values)
    assert arm.labels == labels
    assert arm.score_n == 0


def test_one_row_at_a_time_counts_as_a_batch_does() -> None:
    rows = np.array([3, 1, 3, 2])
    batch, single = ArmStats(), ArmStats()
    batch.observe_outputs(rows)
    for row in rows:
        single.observe_outputs(np.array([row]))
    assert batch.labels == single.labels
    scores = np.array([0.5, np.nan, 1.5, np.inf, 2.0])
    batch, single = ArmStats(), ArmStats()
    batch.observe_outputs(scores)
    for score in scores:
        single.observe_outputs(np.array([[score, 1 - score]]))
    assert (batch.score_n, batch.score_sum, batch.score_sumsq) == (3, 4.0, 6.5)
    assert (single.score_n, single.score_sum, single.score_sumsq) == (3, 4.0, 6.5)


@pytest.mark.parametrize(
    "rows",
    [
        np.array(["cat", "dog", "cat"], dtype=object),  # sklearn's classes from a pandas column
        np.array([b"cat", 3, 2.0], dtype=object),
        np.array(["cat", "dog", "cat"]),
        np.array([b"cat", b"dog"]),
        np.array([True, False, True]),
        np.array([7, 1, 7], dtype=np.uint8),
        np.array([0.25, np.nan, 2.0], dtype=np.float32),
    ],
)
def test_one_row_answers_of_any_kind_count_as_their_batch_does(rows: Any) -> None:
    batch, single, nested = ArmStats(), ArmStats(), ArmStats()
    batch.observe_outputs(rows)
    for row in rows:
        single.observe_outputs(np.array([row], dtype=rows.dtype))
        nested.observe_outputs(np.array([[row]], dtype=rows.dtype))
    assert single == batch and nested == batch
    assert sum(batch.labels.values()) + batch.score_n == len(rows) - int(rows.dtype.kind == "f")


def test_scores_give_mean_and_spread() -> None:
    arm = ArmStats()
    values = np.random.default_rng(0).normal(10, 2, 5000)
    arm.observe_outputs(values.astype(np.float32))
    assert arm.score_mean == pytest.approx(float(values.mean()), rel=1e-5)
    assert arm.score_std == pytest.approx(float(values.std()), rel=1e-4)


def test_empty_outputs_and_other_dtypes_add_nothing() -> None:
    arm = ArmStats()
    arm.observe_outputs(np.array([]))
    arm.observe_outputs(np.array([1 + 2j]))
    assert arm == ArmStats()


def test_label_count_is_bounded() -> None:
    arm = ArmStats()
    arm.observe_outputs(np.arange(MAX_LABELS + 50))
    arm.observe_outputs(np.array([0, 10_000]))
    assert len(arm.labels) == MAX_LABELS + 1
    assert arm.labels[OTHER_LABEL] == 51
    assert arm.labels["0"] == 2
    assert sum(arm.labels.values()) == MAX_LABELS + 52


def test_outcomes() -> None:
    arm = ArmStats()
    for value in (1, 0, 1.0, True, np.float64(0.5)):
        arm.observe_outcome(value)  # type: ignore[arg-type]
    assert (arm.outcome_n, arm.outcome_sum, arm.outcome_sumsq) == (5, 3.5, 3.25)
    assert arm.outcome_mean == 0.7
    for bad in (math.nan, math.inf, "lots", None):
        with pytest.raises(InvalidInputError, match="outcome must be a finite number"):
            arm.observe_outcome(bad)  # type: ignore[arg-type]
    assert arm.outcome_n == 5


def test_huge_values_never_make_a_sum_that_json_cannot_carry() -> None:
    """A sum of squares that overflows to inf is stored as null, and the revision's counters can
    no longer be read (results and gates fail): a value too big to square is not added."""
    arm, shadow = ArmStats(), ShadowStats()
    for bad in (1e308, -1e200, 2.0**400):
        with pytest.raises(InvalidInputError, match="outcome must be a finite number of at most"):
            arm.observe_outcome(bad)
        with pytest.raises(InvalidInputError, match="at most"):
            arm.observe_label(1.0, bad)  # a regressor's true value
        arm.observe_outputs(np.array([bad]))  # one score: not counted
    arm.observe_outputs(np.array([1e300, 2.0, -1e300]))  # a batch: only 2.0 counted
    with pytest.raises(InvalidInputError, match="error of a prediction must be at most"):
        arm.observe_label(1e300, 2.0)  # the model's own huge prediction (the feedback route
        # counts a refused label as unmatched)
    shadow.compare(np.array([1e300, 1.0]), np.array([-1e300, 3.0]))
    assert (arm.outcome_n, arm.residual_n, arm.score_n, arm.score_sum) == (0, 0, 1, 2.0)
    assert (shadow.abs_diff_n, shadow.abs_diff_sum) == (1, 2.0)
    arm.observe_outcome(1e100)
    arm.observe_outcome(-1e100)
    doc = json.loads(json.dumps(arm.to_json(), allow_nan=False))
    assert ArmStats.from_json(doc) == arm
    assert ShadowStats.from_json(json.loads(json.dumps(shadow.to_json()))) == shadow


def test_classifier_feedback_counts_right_answers() -> None:
    arm = ArmStats()
    arm.observe_label(1, 1)
    arm.observe_label(1, "1")
    arm.observe_label(1, 1.0)  # a JSON number
    arm.observe_label("cat", "dog")
    arm.observe_label(np.int64(0), 0)
    assert (arm.labelled, arm.correct) == (5, 4)
    assert arm.accuracy == 0.8
    assert arm.residual_n == 0 and arm.mae is None


def test_regressor_feedback_counts_errors() -> None:
    arm = ArmStats()
    arm.observe_label(2.5, 2)
    arm.observe_label(np.float32(1.0), "3")
    assert arm.residual_n == 2
    assert arm.mae == pytest.approx(1.25)
    assert arm.rmse == pytest.approx(math.sqrt((0.25 + 4) / 2))
    assert arm.labelled == 0 and arm.accuracy is None
    with pytest.raises(InvalidInputError, match="not a number; the model predicts numbers"):
        arm.observe_label(1.0, "cat")
    with pytest.raises(InvalidInputError, match="finite"):
        arm.observe_label(1.0, math.nan)


def test_an_empty_arm_has_no_rates() -> None:
    arm = ArmStats()
    assert arm.error_rate is None
    assert arm.accuracy is None
    assert arm.mae is None and arm.rmse is None
    assert arm.score_mean is None and arm.score_std is None
    assert arm.outcome_mean is None


# -- merging, windows, JSON ----------------------------------------------------------------------


def busy_arm(seed: int) -> ArmStats:
    rng = np.random.default_rng(seed)
    arm = observed(rng.lognormal(1, 0.5, 300), errors=int(rng.integers(0, 10)))
    arm.observe_outputs(rng.integers(0, 3, 50))
    arm.observe_outputs(rng.normal(0, 1, 20))
    for value in rng.integers(0, 2, 30):
        arm.observe_outcome(float(value))
    arm.observe_label(1, 1)
    arm.observe_label(0, 1)
    arm.observe_label(1.5, 1.0)
    return arm


def test_merge_is_the_sum_of_two_servers() -> None:
    a, b = busy_arm(1), busy_arm(2)
    both = a.merge(b)
    assert both.requests == a.requests + b.requests
    assert both.latency == [x + y for x, y in zip(a.latency, b.latency, strict=True)]
    assert both.labels == {k: a.labels.get(k, 0) + b.labels.get(k, 0) for k in a.labels | b.labels}
    assert both.outcome_sum == a.outcome_sum + b.outcome_sum
    assert both.correct == 2
    merged_other_way = b.merge(a)
    assert merged_other_way.requests == both.requests
    assert merged_other_way.score_sum == pytest.approx(both.score_sum)
    assert a == busy_arm(1)  # inputs unchanged


def test_minus_gives_the_window_since_a_snapshot() -> None:
    snapshot, later = busy_arm(1), busy_arm(2)
    total = snapshot.merge(later)
    window = total.minus(snapshot)
    assert window.requests == later.requests
    assert window.latency == later.latency
    assert window.labels == later.labels
    assert window.score_sum == pytest.approx(later.score_sum)
    assert window.quantile_ms(0.99) == later.quantile_ms(0.99)
    assert total.minus(total) == ArmStats()  # sums with no count are zero, not rounding residue


def test_a_window_never_goes_below_zero() -> None:
    window = busy_arm(1).minus(busy_arm(1).merge(busy_arm(2)))
    assert window.requests == 0
    assert min(window.latency) == 0
    assert window.labels == {}
    assert window.error_rate is None
    assert window.score_sum == 0.0


@pytest.mark.parametrize("stats", [ArmStats(), busy_arm(3)])
def test_arm_json_round_trip(stats: ArmStats) -> None:
    doc = json.loads(json.dumps(stats.to_json()))
    assert plain(doc)
    assert ArmStats.from_json(doc) == stats
    assert len(doc["latency"]) == sum(1 for c in stats.latency if c)  # sparse


def test_from_json_takes_a_full_histogram_and_defaults_what_is_missing() -> None:
    counts = [0] * (len(LATENCY_BOUNDS_MS) + 1)
    counts[3] = 7
    arm = ArmStats.from_json({"requests": 7, "latency": counts, "future_field": 1})
    assert arm.latency == counts
    assert arm.errors == 0 and arm.labels == {}


@pytest.mark.parametrize(
    "doc",
    [
        [1, 2],
        {"requests": "many"},
        {"latency": {"9999": 1}},
        {"latency": {"-1": 1}},
        {"labels": ["a"]},
    ],
)
def test_invalid_stats_json_is_refused(doc: Any) -> None:
    with pytest.raises(InvalidInputError, match="ArmStats"):
        ArmStats.from_json(doc)


# -- shadow --------------------------------------------------------------------------------------


def test_shadow_compares_labels_row_by_row() -> None:
    shadow = ShadowStats(copies=3)
    shadow.compare(np.array([1, 0, 1]), np.array([1, 1, 1]))
    shadow.compare(np.array(["a"]), np.array(["a"]))
    shadow.compare(np.array([1]), np.array([1.0]))  # a label and a whole float agree
    assert (shadow.compared, shadow.agreed) == (5, 4)
    assert shadow.agreement == 0.8
    assert shadow.mean_abs_diff is None


def test_shadow_compares_scores_by_absolute_difference() -> None:
    shadow = ShadowStats()
    shadow.compare(np.array([[0.2, 0.8], [0.5, 0.5]]), np.array([[0.3, 0.7], [0.1, 0.9]]))
    shadow.compare(np.array([1.0]), np.array([np.nan]))
    assert shadow.abs_diff_n == 2
    assert shadow.mean_abs_diff == pytest.approx(0.25)
    assert shadow.agreement is None


def test_a_shadow_answer_of_another_shape_is_an_error() -> None:
    shadow = ShadowStats()
    shadow.compare(np.array([1, 2]), np.array([1]))
    assert shadow.errors == 1
    assert shadow.compared == 0


def test_shadow_latency_errors_merge_minus_json() -> None:
    a = ShadowStats(copies=2, dropped=1)
    a.observe(0.004, True)
    a.observe(0.5, False)
    a.compare(np.array([1.0]), np.array([1.5]))
    b = ShadowStats(copies=1)
    b.observe(0.002, True)
    both = a.merge(b)
    assert (both.copies, both.dropped, both.errors, sum(both.latency)) == (3, 1, 1, 2)
    assert both.minus(a) == b
    assert both.minus(both) == ShadowStats()
    doc = json.loads(json.dumps(both.to_json()))
    assert plain(doc)
    assert ShadowStats.from_json(doc) == both
    assert both.quantile_ms(0.5) is not None


# -- a deployment --------------------------------------------------------------------------------


def deployment(seed: int, *, shadow: bool = True) -> DeploymentStats:
    stats = DeploymentStats({"3": busy_arm(seed), "4": busy_arm(seed + 100)})
    if shadow:
        stats.shadow = ShadowStats(copies=seed, dropped=1)
    return stats


def test_deployment_stats_sum_over_servers_and_subtract_a_step_snapshot() -> None:
    one, two = deployment(1), deployment(2)
    total = one.merge(two)
    assert total.arms["3"] == one.arms["3"].merge(two.arms["3"])
    assert total.shadow is not None and total.shadow.copies == 3
    window = total.minus(one)
    for version in ("3", "4"):
        assert window.arms[version].requests == two.arms[version].requests
        assert window.arms[version].latency == two.arms[version].latency
        assert window.arms[version].labels == two.arms[version].labels
        assert window.arms[version].score_sum == pytest.approx(two.arms[version].score_sum)
    assert window.shadow is not None and window.shadow.copies == 2


def test_arms_and_shadow_missing_on_one_side() -> None:
    only_stable = DeploymentStats({"3": busy_arm(1)})
    with_candidate = DeploymentStats({"3": busy_arm(1), "4": busy_arm(2)}, ShadowStats(copies=4))
    merged = only_stable.merge(with_candidate)
    assert set(merged.arms) == {"3", "4"}
    assert merged.shadow == ShadowStats(copies=4)
    assert merged.arms["4"] is not with_candidate.arms["4"]  # a copy, not shared
    window = with_candidate.minus(only_stable)  # the candidate began after the snapshot
    assert window.arms["4"] == with_candidate.arms["4"]
    assert window.arms["3"].requests == 0
    assert window.shadow == ShadowStats(copies=4)
    assert only_stable.minus(with_candidate).shadow is None


@pytest.mark.parametrize("stats", [DeploymentStats(), deployment(1), deployment(2, shadow=False)])
def test_deployment_json_round_trip(stats: DeploymentStats) -> None:
    doc = json.loads(json.dumps(stats.to_json()))
    assert plain(doc)
    assert DeploymentStats.from_json(doc) == stats


def test_invalid_deployment_json_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="deployment stats"):
        DeploymentStats.from_json({"arms": [1]})
    with pytest.raises(InvalidInputError, match="ShadowStats"):
        DeploymentStats.from_json({"arms": {}, "shadow": "none"})


# -- divergence ----------------------------------------------------------------------------------


def labelled(**counts: int) -> ArmStats:
    return ArmStats(labels=dict(counts))


def test_label_divergence_is_total_variation_distance() -> None:
    assert divergence(labelled(a=50, b=50), labelled(a=5, b=5)) == pytest.approx(0.0)
    assert divergence(labelled(a=10), labelled(b=3)) == pytest.approx(1.0)
    # stable 80/20, candidate 60/40: half of |0.2| + |0.2|
    assert divergence(labelled(a=80, b=20), labelled(a=60, b=40)) == pytest.approx(0.2)
    assert divergence(labelled(a=1), labelled(a=1, c=1)) == pytest.approx(0.5)


def scored(values: Any) -> ArmStats:
    arm = ArmStats()
    arm.observe_outputs(np.asarray(values, dtype=np.float64))
    return arm


def test_score_divergence_is_the_mean_shift_in_stable_standard_deviations() -> None:
    rng = np.random.default_rng(9)
    stable = rng.normal(0, 2, 10_000)
    assert divergence(scored(stable), scored(stable + 1)) == pytest.approx(0.5, rel=0.02)
    assert divergence(scored(stable), scored(stable - 4)) == pytest.approx(2.0, rel=0.02)
    assert divergence(scored(stable), scored(stable)) == pytest.approx(0.0)


def test_score_divergence_against_constant_scores_is_the_plain_difference() -> None:
    assert divergence(scored([3.0, 3.0]), scored([3.5, 3.5])) == pytest.approx(0.5)


def test_no_divergence_without_comparable_predictions() -> None:
    assert divergence(ArmStats(), scored([1.0])) is None
    assert divergence(scored([1.0]), ArmStats()) is None
    assert divergence(labelled(a=1), ArmStats()) is None
    assert divergence(labelled(a=1), scored([1.0])) is None
