"""``seaway.deploy.follow.follow_alias`` (issue 12, item 5): a deployment that names an alias
follows its moves with a new revision: a switch, or a rollout from the version served now."""

from __future__ import annotations

from typing import Any

import pytest

from seaway.deploy.apply import apply
from seaway.deploy.follow import follow_alias
from seaway.deploy.status import status
from seaway.errors import InvalidInputError
from seaway.registry import Registry
from seaway.types import RolloutAction

FOLLOWING: dict[str, Any] = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": "production"}],
    "alias": "production",
}


def test_a_switch_follows_the_alias_at_once(fraud: Registry) -> None:
    apply(fraud, {**FOLLOWING, "shadow": {"version": 3}})
    assert follow_alias(fraud, "fraud-prod") is None  # it serves the alias's version already

    fraud.set_alias("fraud", "production", 2)
    revision = follow_alias(fraud, "fraud-prod", now=lambda: 10.0)
    assert revision is not None and revision.revision == 2
    assert revision.actor == "controller"
    assert revision.message == "alias production moved to version 2: switched"
    assert revision.spec["routes"] == [{"version": 2, "weight": 100.0}]
    assert revision.spec["shadow"]["version"] == 3  # still a version that does not answer
    assert follow_alias(fraud, "fraud-prod") is None

    fraud.set_alias("fraud", "production", 3)  # the shadow's version now answers: no shadow
    revision = follow_alias(fraud, "fraud-prod")
    assert revision is not None and "shadow" not in revision.spec


def test_a_canary_rolls_the_new_version_out_from_the_one_served(fraud: Registry) -> None:
    template = {"steps": [{"weight": 10, "min_requests": 100}, {"weight": 100}]}
    apply(fraud, {**FOLLOWING, "on_alias_change": "canary", "rollout_template": template})
    fraud.set_alias("fraud", "production", 3)
    revision = follow_alias(fraud, "fraud-prod", now=lambda: 10.0)
    assert revision is not None
    assert revision.spec["routes"] == [{"version": 1, "weight": 100.0}]
    assert revision.spec["rollout"]["version"] == 3
    assert [s["weight"] for s in revision.spec["rollout"]["steps"]] == [10.0, 100.0]
    assert status(fraud, "fraud-prod").split.arms == (("1", 90.0), ("3", 10.0))
    started = fraud.deployments.decisions("fraud-prod")[-1]
    assert (started.actor, started.decision["action"]) == ("controller", RolloutAction.START)
    assert follow_alias(fraud, "fraud-prod") is None  # the rollout is of the alias's version

    # moved back to the stable version mid-rollout: a switch back, the rollout superseded
    fraud.set_alias("fraud", "production", 1)
    back = follow_alias(fraud, "fraud-prod", now=lambda: 20.0)
    assert back is not None and back.spec["routes"] == [{"version": 1, "weight": 100.0}]
    assert "rollout" not in back.spec and fraud.deployments.rollout("fraud-prod") is None
    ended = fraud.deployments.decisions("fraud-prod")[-1]
    assert ended.decision["action"] == RolloutAction.ABORT


def test_nothing_to_follow(fraud: Registry) -> None:
    apply(fraud, {"name": "plain", "model": "fraud", "routes": [{"version": 1}]})
    assert follow_alias(fraud, "plain") is None
    apply(fraud, FOLLOWING)
    fraud.delete_alias("fraud", "production")
    assert follow_alias(fraud, "fraud-prod") is None  # it keeps serving what it served
    assert fraud.deployments.get("fraud-prod").revision == 1


def test_a_rolled_back_alias_rollout_is_not_started_again_until_the_alias_moves(
    fraud: Registry,
) -> None:
    """Following acts when the alias moves, not whenever it differs from what serves: a rollout
    the gates rolled back (or a person aborted) would otherwise start again at the next poll."""
    from seaway.deploy.actions import abort, rollback

    template = {"steps": [{"weight": 10, "min_requests": 100}, {"weight": 100}]}
    apply(fraud, {**FOLLOWING, "on_alias_change": "canary", "rollout_template": template})
    assert fraud.deployments.get("fraud-prod").spec["alias_version"] == 1
    fraud.set_alias("fraud", "production", 3)
    started = follow_alias(fraud, "fraud-prod")
    assert started is not None and started.spec["alias_version"] == 3
    abort(fraud, "fraud-prod")
    assert status(fraud, "fraud-prod").split.arms == (("1", 100.0),)
    assert follow_alias(fraud, "fraud-prod") is None  # the alias still says 3: no new rollout

    rollback(fraud, "fraud-prod", to_revision=1)  # revision 1 was made when the alias said 1
    assert fraud.deployments.get("fraud-prod").spec["alias_version"] == 3
    assert follow_alias(fraud, "fraud-prod") is None  # the rollback stays

    fraud.set_alias("fraud", "production", 2)  # it moves: followed again
    moved = follow_alias(fraud, "fraud-prod")
    assert moved is not None and moved.spec["rollout"]["version"] == 2


def test_an_alias_that_does_not_exist_is_refused_at_apply(fraud: Registry) -> None:
    """A typo in the alias would never be followed: refused, naming the field and the aliases."""
    with pytest.raises(InvalidInputError, match="alias: model fraud has no alias 'prodution'"):
        apply(fraud, {**FOLLOWING, "routes": [{"version": 1}], "alias": "prodution"})
    apply(fraud, {**FOLLOWING, "routes": [{"version": 1}]})
    fraud.delete_alias("fraud", "production")  # deleted later: it keeps serving what it served
    assert follow_alias(fraud, "fraud-prod") is None
    fraud.set_alias("fraud", "production", 2)  # and follows it again once it is back
    revision = follow_alias(fraud, "fraud-prod")
    assert revision is not None and revision.spec["routes"] == [{"version": 2, "weight": 100.0}]
    assert revision.spec["alias_version"] == 2
