"""A server that stops hands back its deployments' leases (``DeploymentFollower.close``): another
server takes the next decision at once, not once the lease would have run out, and the stopping
one takes none after. (That its last counts reach the registry is shown on real servers:
tests/integration/serving/test_deployment_server.py, the restart mid-rollout.)"""

from __future__ import annotations

from datetime import UTC, datetime

from seaway import deploy
from seaway.registry import Registry
from seaway.routing.stats import ArmStats, DeploymentStats
from seaway.serving.deployments import DeploymentFollower

ROLLOUT = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": 1, "weight": 100}],
    "rollout": {
        "version": 2,
        "steps": [{"weight": 10, "min_requests": 50}, {"weight": 100}],
        "gates": {},
    },
}


def test_a_stopping_server_hands_its_lease_to_the_next_at_once(fraud: Registry) -> None:
    now = 6_000_000.0
    at = datetime.fromtimestamp(now, UTC)
    revision = deploy.apply(fraud, ROLLOUT, actor="user:test", now=lambda: now).revision
    assert revision is not None
    a, b = (
        DeploymentFollower(fraud, ["fraud-prod"], poll_interval=1, server=s, clock=lambda: now)
        for s in ("a", "b")
    )
    a.read(), b.read()
    assert a.drive() is False and b.drive() is False  # a holds (too few requests), b waits
    assert fraud.deployments.lease_holder("deployment:fraud-prod", now=at) == "a"

    a.close()
    assert fraud.deployments.lease_holder("deployment:fraud-prod", now=at) is None
    enough = ArmStats(requests=50)
    stats = DeploymentStats(arms={"1": ArmStats(requests=450), "2": enough}).to_json()
    fraud.deployments.put_stats("fraud-prod", revision.revision, "b", stats)
    assert a.drive() is False  # stopped: no more decisions, no lease taken again
    assert b.drive() is True  # the same instant: no lease to wait out
    last = fraud.deployments.decisions("fraud-prod")[-1]
    assert (last.decision["action"], last.actor) == ("advance", "controller:b")
