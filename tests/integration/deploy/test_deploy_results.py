"""``seaway.deploy.results`` (issue 12, item 4): per-version figures summed over the counters that
several servers flushed for the current revision, the A/B verdict, and the shadow's agreement."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from seaway.deploy.apply import apply
from seaway.deploy.results import results
from seaway.registry import Registry
from seaway.routing.stats import ArmStats, DeploymentStats, ShadowStats


def _arm(requests: int, errors: int, latency_s: float, outcomes: list[float]) -> ArmStats:
    arm = ArmStats()
    for i in range(requests):
        arm.observe(latency_s, ok=i >= errors)
    for value in outcomes:
        arm.observe_outcome(value)
    return arm


def _conversions(rate: float, n: int, rng: random.Random) -> list[float]:
    return [1.0 if rng.random() < rate else 0.0 for _ in range(n)]


AB: dict[str, Any] = {
    "name": "fraud-ab",
    "model": "fraud",
    "routes": [{"version": 1, "weight": 50}, {"version": 2, "weight": 50}],
    "ab": {"key": {"header": "X-User-ID"}, "alpha": 0.05, "min_samples": 100},
}


def test_figures_are_summed_over_servers_per_version(fraud: Registry) -> None:
    apply(fraud, AB)
    servers = {
        "server-a": DeploymentStats({"1": _arm(300, 3, 0.002, []), "2": _arm(200, 10, 0.004, [])}),
        "server-b": DeploymentStats({"1": _arm(100, 1, 0.003, []), "2": _arm(100, 5, 0.008, [])}),
    }
    for server, stats in servers.items():
        fraud.deployments.put_stats("fraud-ab", 1, server, stats.to_json())
    # a flush of an earlier revision is not summed
    apply(fraud, {**AB, "routes": [{"version": 1, "weight": 40}, {"version": 2, "weight": 60}]})
    fraud.deployments.put_stats("fraud-ab", 2, "server-a", servers["server-a"].to_json())
    fraud.deployments.put_stats("fraud-ab", 2, "server-b", servers["server-b"].to_json())
    fraud.deployments.put_stats("fraud-ab", 1, "server-c", servers["server-a"].to_json())

    found = results(fraud, "fraud-ab")
    assert (found.revision, found.strategy, found.servers) == (2, "ab", 2)
    one, two = found.arms
    assert (one.version, one.weight, one.requests, one.errors) == ("1", 40.0, 400, 4)
    assert (two.version, two.weight, two.requests, two.errors) == ("2", 60.0, 300, 15)
    assert two.error_rate == pytest.approx(0.05)
    merged = servers["server-a"].merge(servers["server-b"]).arms["2"]
    assert two.p50_ms == merged.quantile_ms(0.5) and two.p99_ms == merged.quantile_ms(0.99)
    assert one.p99_ms is not None and two.p99_ms is not None and two.p99_ms > one.p99_ms
    [verdict] = found.ab
    assert not verdict.enough_data
    assert (
        verdict.message
        == "not enough data yet: 0 of 100 outcomes for version 2, 0 of 100 outcomes for version 1"
    )


def test_the_ab_verdict_finds_a_real_difference_across_servers(fraud: Registry) -> None:
    apply(fraud, AB)
    rng = random.Random(5)
    for server in ("server-a", "server-b"):
        stats = DeploymentStats(
            {
                "1": _arm(3000, 0, 0.002, _conversions(0.10, 3000, rng)),
                "2": _arm(3000, 0, 0.002, _conversions(0.16, 3000, rng)),
            }
        )
        fraud.deployments.put_stats("fraud-ab", 1, server, stats.to_json())
    found = results(fraud, "fraud-ab")
    one, two = found.arms
    assert one.outcomes == two.outcomes == 6000
    assert two.outcome_mean is not None and one.outcome_mean is not None
    [verdict] = found.ab
    assert verdict.enough_data and verdict.significant
    assert verdict.difference == pytest.approx(two.outcome_mean - one.outcome_mean)
    assert verdict.message.startswith("version 2 is better")
    assert found.to_json()["ab"][0]["significant"] is True


def test_a_shadows_agreement_and_drops_are_reported(fraud: Registry) -> None:
    apply(
        fraud,
        {
            "name": "fraud-shadow",
            "model": "fraud",
            "routes": [{"version": 1}],
            "shadow": {"version": 3},
        },
    )
    for server, agree in (("server-a", 9), ("server-b", 7)):
        shadow = ShadowStats(copies=10, dropped=2)
        shadow.compare(np.array([1] * 10), np.array([1] * agree + [0] * (10 - agree)))
        stats = DeploymentStats({"1": _arm(12, 0, 0.002, [])}, shadow)
        fraud.deployments.put_stats("fraud-shadow", 1, server, stats.to_json())
    found = results(fraud, "fraud-shadow")
    assert found.shadow is not None
    assert (found.shadow.version, found.shadow.copies, found.shadow.dropped) == ("3", 20, 4)
    assert found.shadow.agreement == pytest.approx(16 / 20)
    assert found.ab == [] and [a.version for a in found.arms] == ["1"]


def test_a_rollout_shows_its_step_and_nothing_flushed_yet_reads_as_zero(fraud: Registry) -> None:
    apply(
        fraud,
        {
            "name": "fraud-prod",
            "model": "fraud",
            "routes": [{"version": 1}],
            "rollout": {"version": 2, "steps": [{"weight": 25}, {"weight": 100}]},
        },
    )
    found = results(fraud, "fraud-prod")
    assert found.servers == 0 and found.updated_at is None
    assert [(a.version, a.weight, a.requests) for a in found.arms] == [
        ("1", 75.0, 0),
        ("2", 25.0, 0),
    ]
    assert found.rollout is not None and found.step_weight == 25.0
    assert found.to_json()["rollout"]["candidate"] == "2"
