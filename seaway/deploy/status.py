"""Reading a deployment: where it stands now (``status``) and how it got there (``history``).

What is served now is the current revision's spec, except during a rollout, where the split is
the stable version and the candidate at the rollout's step weight: ``status`` works that out the
way the server does (``routing.policy.effective_split``), so the CLI shows what clients get.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from seaway.errors import InvalidInputError
from seaway.routing import rollout as rollouts
from seaway.routing.policy import Split, effective_split
from seaway.routing.rollout import RolloutState
from seaway.routing.spec import DeploymentSpec

if TYPE_CHECKING:
    from seaway.registry import Registry
    from seaway.registry.deployments import DecisionRecord, Deployment, Revision, RolloutRecord


@dataclass(frozen=True)
class DeploymentStatus:
    deployment: Deployment
    spec: DeploymentSpec
    #: what is served now: versions and their percent of the traffic
    split: Split
    #: the current revision's rollout (None: none, or it belongs to an earlier revision)
    rollout: RolloutState | None
    record: RolloutRecord | None
    #: the candidate's weight now (None without a rollout in progress)
    step_weight: float | None
    last_decision: DecisionRecord | None

    def to_json(self) -> dict[str, Any]:
        return {
            **self.deployment.to_dict(),
            "strategy": str(self.spec.strategy),
            "split": [{"version": v, "weight": w} for v, w in self.split.arms],
            "rollout": None if self.rollout is None else self.rollout.to_json(),
            "rollout_generation": None if self.record is None else self.record.generation,
            "step_weight": self.step_weight,
            "last_decision": None if self.last_decision is None else self.last_decision.to_dict(),
        }


def status(registry: Registry, name: str) -> DeploymentStatus:
    store = registry.deployments
    deployment = store.get(name)
    spec = DeploymentSpec.from_json(deployment.spec)
    record = store.rollout(name)
    state = None
    if record is not None and record.revision == deployment.revision:
        try:
            state = RolloutState.from_json(record.state)
        except InvalidInputError:
            state = None
    weight = None
    if state is not None and spec.rollout is not None:
        weight = rollouts.current_weight(spec.rollout, state)
    last = store.decisions(name, limit=1)
    return DeploymentStatus(
        deployment,
        spec,
        effective_split(spec, weight),
        state,
        record if state is not None else None,
        weight,
        last[0] if last else None,
    )


def history(registry: Registry, name: str, *, limit: int | None = None) -> list[Revision]:
    """Revisions newest first."""
    return registry.deployments.history(name, limit=limit)


def decisions(registry: Registry, name: str, *, limit: int | None = None) -> list[DecisionRecord]:
    """The decision log oldest first (its newest ``limit`` entries with a limit)."""
    return registry.deployments.decisions(name, limit=limit)


def history_json(
    registry: Registry, name: str, *, with_decisions: bool = False, limit: int | None = None
) -> dict[str, Any]:
    """The admin API's history answer: revisions, and the decision log when asked."""
    out: dict[str, Any] = {
        "deployment": name,
        "revisions": [r.to_dict() for r in history(registry, name, limit=limit)],
    }
    if with_decisions:
        out["decisions"] = [d.to_dict() for d in decisions(registry, name, limit=limit)]
    return out
