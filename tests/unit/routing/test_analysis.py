"""Rollout gates: one result per gate set, values and limits recorded, honest on low traffic."""

from __future__ import annotations

import random

import numpy as np
import pytest

from seaway.routing.analysis import GateResult, evaluate
from seaway.routing.spec import Gates
from seaway.routing.stats import ArmStats
from seaway.types import GateVerdict


def served(
    requests: int,
    *,
    errors: int = 0,
    latency_ms: float = 10.0,
    labels: tuple[str, ...] = ("ok",),
    seed: int = 0,
) -> ArmStats:
    """An arm that answered ``requests`` requests, the first ``errors`` of them failing."""
    rng = random.Random(seed)
    arm = ArmStats()
    for i in range(requests):
        ok = i >= errors
        arm.observe(latency_ms * rng.uniform(0.9, 1.1) / 1000.0, ok)
        if ok:
            arm.observe_outputs(np.array([labels[i % len(labels)]]))
    return arm


def by_name(results: list[GateResult]) -> dict[str, GateResult]:
    return {result.name: result for result in results}


def test_only_the_gates_that_are_set_are_evaluated_in_order() -> None:
    gates = Gates(max_p99_ms=50, max_error_rate_increase=0.01, min_samples=10)
    results = evaluate(gates, served(50), served(50))
    assert [r.name for r in results] == ["max_error_rate_increase", "max_p99_ms"]
    assert all(r.verdict is GateVerdict.PASS for r in results)
    assert evaluate(Gates(), served(50), served(50)) == []


def test_below_min_samples_every_gate_is_insufficient_and_says_how_many() -> None:
    gates = Gates(max_error_rate_increase=0.01, max_p99_ratio=1.5, min_samples=100)
    # a candidate failing every request still has too few of them to judge
    results = evaluate(gates, served(1000), served(68, errors=68))
    assert [r.verdict for r in results] == [GateVerdict.INSUFFICIENT] * 2
    assert all(r.value is None for r in results)
    assert [r.threshold for r in results] == [0.01, 1.5]
    assert results[0].message == (
        "insufficient data: 68 of 100 requests on the candidate (gates.min_samples)"
    )
    stable_short = evaluate(gates, served(5), served(500))
    assert "5 of 100 requests on the stable version" in stable_short[0].message


def test_error_rate_increase_passes_and_fails_with_the_figures() -> None:
    gates = Gates(max_error_rate_increase=0.01, min_samples=100)
    ok = by_name(evaluate(gates, served(1000, errors=10), served(200, errors=3)))
    gate = ok["max_error_rate_increase"]
    assert gate.verdict is GateVerdict.PASS
    assert gate.value == pytest.approx(0.015 - 0.01) and gate.threshold == 0.01
    bad = by_name(evaluate(gates, served(1000, errors=10), served(200, errors=20)))
    gate = bad["max_error_rate_increase"]
    assert gate.verdict is GateVerdict.FAIL and gate.value == pytest.approx(0.09)
    assert "candidate error rate 10.00% against stable 1.00%" in gate.message
    assert "20 of 200 against 10 of 1000" in gate.message
    assert "over the allowed 1.00%" in gate.message


def test_latency_gates_compare_p99_as_a_ratio_and_against_a_budget() -> None:
    gates = Gates(max_p99_ratio=1.5, max_p99_ms=25, min_samples=100)
    same = by_name(evaluate(gates, served(300, seed=1), served(300, seed=2)))
    assert same["max_p99_ratio"].verdict is GateVerdict.PASS
    assert same["max_p99_ratio"].value == pytest.approx(1.0, abs=0.3)
    assert same["max_p99_ms"].verdict is GateVerdict.PASS
    slow = by_name(evaluate(gates, served(300), served(300, latency_ms=40.0)))
    ratio = slow["max_p99_ratio"]
    assert ratio.verdict is GateVerdict.FAIL and ratio.value is not None and ratio.value > 3
    assert "over the allowed 1.5x" in ratio.message
    budget = slow["max_p99_ms"]
    assert budget.verdict is GateVerdict.FAIL and budget.value is not None and budget.value > 25
    assert "over the budget of 25 ms" in budget.message


def test_divergence_of_predicted_labels() -> None:
    gates = Gates(max_divergence=0.1, min_samples=100)
    alike = evaluate(gates, served(400, labels=("a", "b")), served(400, labels=("a", "b")))
    assert alike[0].verdict is GateVerdict.PASS and alike[0].value == pytest.approx(0.0)
    apart = evaluate(gates, served(400, labels=("a", "b")), served(400, labels=("a", "c")))
    assert apart[0].verdict is GateVerdict.FAIL and apart[0].value == pytest.approx(0.5)
    assert "prediction divergence 0.5: over the allowed 0.1" in apart[0].message


def test_divergence_without_predictions_is_insufficient() -> None:
    stable, candidate = ArmStats(), ArmStats()
    for _ in range(200):
        stable.observe(0.01, False)
        candidate.observe(0.01, False)
    result = evaluate(Gates(max_divergence=0.1, min_samples=100), stable, candidate)[0]
    assert result.verdict is GateVerdict.INSUFFICIENT
    assert "no predictions" in result.message


def test_drift_needs_the_prediction_log() -> None:
    gates = Gates(max_drift=0.2, min_samples=10)
    unknown = evaluate(gates, served(50), served(50))[0]
    assert unknown.verdict is GateVerdict.INSUFFICIENT and unknown.value is None
    assert "drift needs the prediction log" in unknown.message
    fine = evaluate(gates, served(50), served(50), drift=0.05)[0]
    assert fine.verdict is GateVerdict.PASS and fine.value == 0.05
    drifted = evaluate(gates, served(50), served(50), drift=0.4)[0]
    assert drifted.verdict is GateVerdict.FAIL and drifted.threshold == 0.2


def test_accuracy_drop_needs_labels_then_compares() -> None:
    gates = Gates(max_accuracy_drop=0.02, min_samples=100)
    stable, candidate = served(500), served(500)
    short = evaluate(gates, stable, candidate)[0]
    assert short.verdict is GateVerdict.INSUFFICIENT
    assert "0 of 100 labelled predictions on the candidate" in short.message
    for i in range(200):
        stable.observe_label("a", "a" if i % 10 else "b")  # 90% right
        candidate.observe_label("a", "a" if i % 5 else "b")  # 80% right
    worse = evaluate(gates, stable, candidate)[0]
    assert worse.verdict is GateVerdict.FAIL and worse.value == pytest.approx(0.1)
    assert "candidate accuracy 80.00% against stable 90.00%" in worse.message


def test_gate_results_round_trip_through_json() -> None:
    results = evaluate(Gates(max_error_rate_increase=0.01, min_samples=10), served(50), served(50))
    assert [GateResult.from_json(r.to_json()) for r in results] == results


def test_accuracy_of_a_regressor_says_it_has_none() -> None:
    stable, candidate = served(200), served(200)
    for i in range(200):
        stable.observe_label(1.5, 1.0 + i % 2)
        candidate.observe_label(1.5, 1.0 + i % 2)
    result = evaluate(Gates(max_accuracy_drop=0.02, min_samples=100), stable, candidate)[0]
    assert result.verdict is GateVerdict.INSUFFICIENT
    assert "predicts numbers, which have no accuracy" in result.message
