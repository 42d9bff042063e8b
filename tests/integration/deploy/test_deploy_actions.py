"""``seaway.deploy.actions`` (issue 12, items 5 and 7): promote, pause, resume and abort change a
rollout with a decision naming who took it; rollback restores an earlier revision's spec as a new
revision; the driver's automatic rollback (``finish_rollout``) and a user's action never both win.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from seaway.deploy import actions
from seaway.deploy.apply import apply
from seaway.deploy.status import status
from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.registry import Registry
from seaway.routing import rollout as rollouts
from seaway.routing.rollout import RolloutState
from seaway.routing.spec import DeploymentSpec
from seaway.routing.stats import ArmStats, DeploymentStats
from seaway.types import RolloutAction, RolloutPhase

ROLLOUT: dict[str, Any] = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": 1}],
    "rollout": {
        "version": 2,
        "steps": [{"weight": 10, "min_requests": 50}, {"weight": 100}],
        "gates": {"max_error_rate_increase": 0.05, "min_samples": 50},
    },
}


@pytest.fixture
def rolling(fraud: Registry) -> Registry:
    apply(fraud, ROLLOUT, actor="user:alice", now=lambda: 1000.0)
    return fraud


def _clock() -> Any:
    ticks = itertools.count(2000)
    return lambda: float(next(ticks))


def _log(registry: Registry) -> list[tuple[str, str, int]]:
    """The decision log as (action, actor, revision)."""
    return [
        (d.decision["action"], d.actor, d.revision)
        for d in registry.deployments.decisions("fraud-prod")
    ]


def test_promote_gives_the_candidate_all_traffic_in_a_new_revision(rolling: Registry) -> None:
    done = actions.promote(rolling, "fraud-prod", actor="user:bob", now=_clock())
    assert done.revision == 2 and "version 2 takes all traffic" in done.message
    current = rolling.deployments.get("fraud-prod")
    assert current.spec["routes"] == [{"version": 2, "weight": 100.0}]
    assert "rollout" not in current.spec and current.spec["strategy"] == "direct"
    assert current.actor == "user:bob"
    assert rolling.deployments.history("fraud-prod")[0].message == "promote version 2"
    assert rolling.deployments.rollout("fraud-prod") is None
    assert _log(rolling) == [("start", "user:alice", 1), ("promote", "user:bob", 1)]
    assert status(rolling, "fraud-prod").split.arms == (("2", 100.0),)


def test_pause_and_resume_change_the_phase_with_decisions(rolling: Registry) -> None:
    paused = actions.pause(rolling, "fraud-prod", actor="user:bob", now=_clock())
    assert paused.changed and paused.revision == 1
    now = status(rolling, "fraud-prod")
    assert now.rollout is not None and now.rollout.phase is RolloutPhase.PAUSED
    assert now.split.arms == (("1", 90.0), ("2", 10.0))  # traffic stays split as it was

    again = actions.pause(rolling, "fraud-prod", actor="user:bob")
    assert not again.changed and "already paused" in again.message

    resumed = actions.resume(rolling, "fraud-prod", actor="user:carol", now=_clock())
    assert resumed.changed
    state = status(rolling, "fraud-prod").rollout
    assert state is not None and state.phase is RolloutPhase.PROGRESSING
    assert not actions.resume(rolling, "fraud-prod").changed
    assert _log(rolling) == [
        ("start", "user:alice", 1),
        ("pause", "user:bob", 1),
        ("resume", "user:carol", 1),
    ]


def test_abort_gives_the_stable_version_all_traffic_back(rolling: Registry) -> None:
    actions.pause(rolling, "fraud-prod")  # a paused rollout can be aborted too
    done = actions.abort(rolling, "fraud-prod", actor="user:bob", now=_clock())
    assert done.revision == 2
    current = rolling.deployments.get("fraud-prod")
    assert current.spec["routes"] == [{"version": 1, "weight": 100.0}]
    assert current.versions == (1,)
    assert rolling.deployments.rollout("fraud-prod") is None
    assert _log(rolling)[-1] == ("abort", "user:bob", 1)
    with pytest.raises(ConflictError, match="has no rollout in progress"):
        actions.promote(rolling, "fraud-prod")


@pytest.mark.parametrize("action", ["promote", "pause", "resume", "abort"])
def test_rollout_actions_need_a_rollout(fraud: Registry, action: str) -> None:
    apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 1}]})
    with pytest.raises(ConflictError, match=r"fraud-prod has no rollout in progress \(revision 1"):
        actions.act(fraud, "fraud-prod", action)


def test_rollback_restores_an_earlier_revisions_spec_as_a_new_revision(fraud: Registry) -> None:
    for version in (1, 2, 3):
        apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": version}]})
    done = actions.rollback(fraud, "fraud-prod", actor="user:bob")
    assert done.revision == 4
    latest = fraud.deployments.history("fraud-prod")[0]
    assert latest.spec == fraud.deployments.revision("fraud-prod", 2).spec
    assert (latest.message, latest.actor) == ("rollback to revision 2", "user:bob")

    done = actions.rollback(fraud, "fraud-prod", to_revision=1)
    assert done.revision == 5
    assert fraud.deployments.get("fraud-prod").versions == (1,)


@pytest.mark.parametrize(
    ("to_revision", "expected"),
    [(2, "is at revision 2; it can roll back to revision 1"), (7, "is at revision 2")],
)
def test_rollback_refuses_a_revision_that_is_not_earlier(
    fraud: Registry, to_revision: int, expected: str
) -> None:
    for version in (1, 2):
        apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": version}]})
    with pytest.raises(InvalidInputError, match=re.escape(expected)):
        actions.rollback(fraud, "fraud-prod", to_revision=to_revision)


def test_rollback_past_the_only_revision_says_there_is_none(fraud: Registry) -> None:
    apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 1}]})
    with pytest.raises(InvalidInputError, match="it has no earlier revision"):
        actions.rollback(fraud, "fraud-prod", to_revision=5)


def test_rollback_needs_an_earlier_revision(fraud: Registry) -> None:
    apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 1}]})
    with pytest.raises(InvalidInputError, match="has only revision 1"):
        actions.rollback(fraud, "fraud-prod")
    with pytest.raises(NotFoundError):
        actions.rollback(fraud, "no-such-deployment")


def test_rollback_during_a_rollout_records_that_it_ended_it(rolling: Registry) -> None:
    apply(rolling, {key: value for key, value in ROLLOUT.items() if key != "rollout"})
    assert _log(rolling)[-1][0] == "abort"  # revision 2 ended the rollout of revision 1
    # rolling back to revision 1 starts its rollout again, from its first step
    done = actions.rollback(rolling, "fraud-prod", actor="user:bob", now=_clock())
    assert done.revision == 3
    record = rolling.deployments.rollout("fraud-prod")
    assert record is not None and record.revision == 3 and record.state["step"] == 0
    assert _log(rolling)[-1] == ("start", "user:bob", 3)


def _bad_candidate_stats() -> DeploymentStats:
    stable, candidate = ArmStats(), ArmStats()
    for i in range(100):
        stable.observe(0.002, ok=True)
        candidate.observe(0.002, ok=i % 5 != 0)  # 20% errors
    return DeploymentStats({"1": stable, "2": candidate})


def test_the_drivers_automatic_rollback_is_a_new_revision_with_its_reason(
    rolling: Registry,
) -> None:
    # what a server's rollout driver does at a poll: counters from the servers, decide, finish
    revision = rolling.deployments.get("fraud-prod").revision
    rolling.deployments.put_stats(
        "fraud-prod", revision, "server-a", _bad_candidate_stats().to_json()
    )
    record = rolling.deployments.rollout("fraud-prod")
    assert record is not None
    spec = DeploymentSpec.from_json(rolling.deployments.get("fraud-prod").spec)
    assert spec.rollout is not None
    total = DeploymentStats.from_json(rolling.deployments.stats("fraud-prod", revision)[0].stats)
    state, decision = rollouts.decide(
        spec.rollout, RolloutState.from_json(record.state), total, now=1060.0
    )
    assert decision.action is RolloutAction.ROLLBACK

    new = actions.finish_rollout(rolling, "fraud-prod", state, decision)
    assert new.revision == 2 and new.actor == "controller"
    assert new.spec["routes"] == [{"version": 1, "weight": 100.0}]
    assert new.message == "rollout of version 2 rolled back"
    last = rolling.deployments.decisions("fraud-prod")[-1]
    assert (last.actor, last.revision, last.decision["action"]) == ("controller", 1, "rollback")
    assert "max_error_rate_increase" in last.decision["reason"]
    assert last.decision["values"]["candidate_errors"] == 20
    # a user's promote racing the driver finds the rollout over
    with pytest.raises(ConflictError, match="has no rollout in progress"):
        actions.promote(rolling, "fraud-prod")


def test_the_driver_cannot_finish_a_rollout_a_user_already_ended(rolling: Registry) -> None:
    record = rolling.deployments.rollout("fraud-prod")
    assert record is not None
    state = RolloutState.from_json(record.state)
    actions.promote(rolling, "fraud-prod")
    decision = rollouts.Decision(RolloutAction.COMPLETE, 1, 100.0, "completed", (), 1.0, {})
    with pytest.raises(ConflictError):
        actions.finish_rollout(rolling, "fraud-prod", state, decision)
    assert rolling.deployments.get("fraud-prod").revision == 2  # the promote's, nothing after


def test_delete_and_unknown_actions(rolling: Registry) -> None:
    with pytest.raises(InvalidInputError, match="unknown action 'restart'; use one of promote"):
        actions.act(rolling, "fraud-prod", "restart")
    with pytest.raises(InvalidInputError, match="to_revision goes with rollback"):
        actions.act(rolling, "fraud-prod", "promote", to_revision=1)
    done = actions.act(rolling, "fraud-prod", "delete", actor="user:bob")
    assert done.revision is None and "deleted deployment fraud-prod" in done.message
    with pytest.raises(NotFoundError):
        rolling.deployments.get("fraud-prod")


def test_rollback_to_a_revision_whose_version_was_deleted_names_the_revision(
    fraud: Registry,
) -> None:
    apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 3}]})
    apply(fraud, {"name": "fraud-prod", "model": "fraud", "routes": [{"version": 1}]})
    fraud.delete_version("fraud", 3)  # no longer used by the current revision
    with pytest.raises(InvalidInputError, match="revision 1 of deployment fraud-prod cannot be"):
        actions.rollback(fraud, "fraud-prod", to_revision=1)
    assert fraud.deployments.get("fraud-prod").revision == 2
