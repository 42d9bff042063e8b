"""The servers' side of a rollout, without servers: two followers of one registry (two server
processes), their counts left in the registry, and the decisions one of them takes under the
lease. Time is injected: a step's minimum duration and the lease pass when the test says."""

from __future__ import annotations

from seaway import deploy
from seaway.registry import Registry
from seaway.routing.stats import ArmStats, DeploymentStats
from seaway.serving.deployments import DeploymentFollower, plan
from seaway.types import RolloutAction

ROLLOUT = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": 1, "weight": 100}],
    "rollout": {
        "version": 2,
        "steps": [
            {"weight": 10, "min_duration": "1m", "min_requests": 50},
            {"weight": 50, "min_duration": "1m", "min_requests": 50},
            {"weight": 100, "min_duration": 0, "min_requests": 0},
        ],
        "gates": {"max_error_rate_increase": 0.01, "min_samples": 50},
    },
}


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def counts(requests: int, errors: int = 0) -> ArmStats:
    stats = ArmStats()
    for i in range(requests):
        stats.observe(0.002, ok=i >= errors)
    return stats


def leave(registry: Registry, server: str, revision: int, stable: ArmStats, new: ArmStats) -> None:
    """What a server's flush leaves: its cumulative counts of the revision."""
    doc = DeploymentStats(arms={"1": stable, "2": new}).to_json()
    registry.deployments.put_stats("fraud-prod", revision, server, doc)


def decisions(registry: Registry) -> list[tuple[str, str]]:
    return [(d.decision["action"], d.actor) for d in registry.deployments.decisions("fraud-prod")]


def test_one_server_advances_the_rollout_on_every_servers_counts(fraud: Registry) -> None:
    clock = Clock(1_000_000.0)
    applied = deploy.apply(fraud, ROLLOUT, actor="user:test", now=clock)
    assert applied.revision is not None
    revision = applied.revision.revision
    a = DeploymentFollower(fraud, ["fraud-prod"], poll_interval=1, server="a", clock=clock)
    b = DeploymentFollower(fraud, ["fraud-prod"], poll_interval=1, server="b", clock=clock)
    for follower in (a, b):
        follower.read()
        assert follower.plans["fraud-prod"].split.arms == (("1", 90.0), ("2", 10.0))

    # each server alone has too few requests on the candidate; together they have enough
    leave(fraud, "a", revision, counts(200), counts(30))
    leave(fraud, "b", revision, counts(200), counts(30))
    clock.now += 61
    assert a.drive() is True  # a takes the lease and advances on 60 requests of both
    assert b.drive() is False  # the lease is a's
    a.read(), b.read()
    assert b.plans["fraud-prod"].split.arms == (("1", 50.0), ("2", 50.0))
    assert [act for act, _ in decisions(fraud)] == ["start", "advance"]

    # a dies: its lease runs out and b takes the next decision
    leave(fraud, "b", revision, counts(300), counts(120))
    clock.now += 61
    assert b.drive() is True
    assert decisions(fraud)[-1] == ("advance", "controller:b")
    b.read()
    assert b.plans["fraud-prod"].split.arms == (("1", 0.0), ("2", 100.0))


def test_a_candidate_with_errors_is_rolled_back_to_a_new_revision(fraud: Registry) -> None:
    clock = Clock(2_000_000.0)
    revision = deploy.apply(fraud, ROLLOUT, actor="user:test", now=clock).revision
    assert revision is not None
    follower = DeploymentFollower(fraud, ["fraud-prod"], poll_interval=1, server="a", clock=clock)
    follower.read()
    leave(fraud, "a", revision.revision, counts(500), counts(60, errors=6))
    clock.now += 1  # a failed gate does not wait for the step's minimum duration
    assert follower.drive() is True
    last = fraud.deployments.decisions("fraud-prod")[-1]
    assert last.decision["action"] == RolloutAction.ROLLBACK
    assert "error rate" in last.decision["reason"]
    follower.read()
    now = follower.plans["fraud-prod"]
    assert now.revision == revision.revision + 1
    assert now.split.arms == (("1", 100.0),)
    assert now.rollout is None
    assert last.decision["weight"] == 0


def test_a_hold_is_logged_when_what_holds_it_changes_not_every_poll(fraud: Registry) -> None:
    clock = Clock(3_000_000.0)
    revision = deploy.apply(fraud, ROLLOUT, actor="user:test", now=clock).revision
    assert revision is not None
    follower = DeploymentFollower(fraud, ["fraud-prod"], poll_interval=1, server="a", clock=clock)
    follower.read()
    for seen in range(1, 6):  # five polls, the candidate's counts growing, still too few
        leave(fraud, "a", revision.revision, counts(100 * seen), counts(5 * seen))
        clock.now += 2
        assert follower.drive() is False
    holds = [
        d.decision["reason"]
        for d in fraud.deployments.decisions("fraud-prod")
        if d.decision["action"] == "hold"
    ]
    assert len(holds) == 1, holds


def test_a_rollout_of_an_earlier_revision_does_not_steer_the_current_one(
    fraud: Registry,
) -> None:
    """A record that belongs to an earlier revision is no rollout: the spec's routes serve."""
    clock = Clock(4_000_000.0)
    deploy.apply(fraud, ROLLOUT, actor="user:test", now=clock)
    deployment, record = fraud.deployments.snapshot()[0]
    assert record is not None
    stale = type(record)(
        record.deployment, record.revision - 1, record.state, record.generation, record.updated_at
    )
    item = plan(deployment, stale)
    assert item.rollout is None
    assert item.split.arms == (("1", 100.0),)
    assert item.versions == ("1", "2")  # the candidate stays loaded, warm for its first step


def test_the_drift_gate_holds_without_a_measure_and_rolls_back_over_its_limit(
    fraud: Registry,
) -> None:
    clock = Clock(5_000_000.0)
    spec = {
        **ROLLOUT,
        "rollout": {**ROLLOUT["rollout"], "gates": {"max_drift": 0.2, "min_samples": 50}},
    }  # type: ignore[dict-item]
    revision = deploy.apply(fraud, spec, actor="user:test", now=clock).revision
    assert revision is not None
    measured: list[tuple[str, str]] = []
    scores: list[float | None] = [None, 0.05, 0.6]

    def drift(model: str, version: str, since: object) -> float | None:
        measured.append((model, version))
        return scores.pop(0)

    follower = DeploymentFollower(
        fraud, ["fraud-prod"], poll_interval=1, server="a", clock=clock, drift=drift
    )
    follower.read()
    leave(fraud, "a", revision.revision, counts(500), counts(60))
    clock.now += 61
    assert follower.drive() is False  # nothing logged yet: insufficient data holds
    assert "drift needs the prediction log" in decisions_reasons(fraud)[-1]
    assert follower.drive() is True  # 0.05: within 0.2, so the rollout advances
    follower.read()
    leave(fraud, "a", revision.revision, counts(600), counts(120))
    clock.now += 61
    assert follower.drive() is True  # 0.6: over 0.2, rolled back
    last = fraud.deployments.decisions("fraud-prod")[-1].decision
    assert last["action"] == RolloutAction.ROLLBACK
    assert "drift" in last["reason"]
    assert measured == [("fraud", "2")] * 3


def decisions_reasons(registry: Registry) -> list[str]:
    return [d.decision["reason"] for d in registry.deployments.decisions("fraud-prod")]


def test_a_candidate_that_fails_to_load_is_rolled_back_not_held(fraud: Registry) -> None:
    clock = Clock(6_000_000.0)
    revision = deploy.apply(fraud, ROLLOUT, actor="user:test", now=clock).revision
    assert revision is not None
    follower = DeploymentFollower(fraud, ["fraud-prod"], poll_interval=1, server="a", clock=clock)
    follower.read()
    assert follower.drive({("fraud", "1"): "not the candidate"}) is False  # holds: no traffic
    assert follower.drive({("fraud", "2"): "ModuleNotFoundError: No module named 'gone'"})
    last = fraud.deployments.decisions("fraud-prod")[-1].decision
    assert last["action"] == RolloutAction.ROLLBACK
    assert "version 2 failed to load on a: ModuleNotFoundError" in last["reason"]
    follower.read()
    assert follower.plans["fraud-prod"].split.arms == (("1", 100.0),)
