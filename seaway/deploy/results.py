"""A deployment's results: per-version figures summed over every server, and the A/B verdict.

Each server flushes its own counters for the revision it serves (``Registry.deployments.put_stats``);
results add up those of the current revision, so two servers behind one load balancer report as
one deployment. Per version: requests, error rate, latency p50/p99 (from the histograms, to a
bucket), outcomes and accuracy where feedback came. An ``ab`` section adds the sequential test of
each arm against the first route's (``routing.abtest.compare``: valid however often one looks, and
plain when there is not enough data yet); a shadow adds its agreement with the primary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from seaway.deploy.status import status
from seaway.routing.abtest import ABResult, compare
from seaway.routing.rollout import RolloutState
from seaway.routing.stats import ArmStats, DeploymentStats, ShadowStats

if TYPE_CHECKING:
    from seaway.registry import Registry


@dataclass(frozen=True)
class ArmFigures:
    version: str
    #: percent of the traffic the version gets now
    weight: float
    requests: int
    errors: int
    error_rate: float | None
    p50_ms: float | None
    p99_ms: float | None
    outcomes: int
    outcome_mean: float | None
    labelled: int
    accuracy: float | None

    @classmethod
    def of(cls, version: str, weight: float, arm: ArmStats) -> ArmFigures:
        return cls(
            version,
            weight,
            arm.requests,
            arm.errors,
            arm.error_rate,
            arm.quantile_ms(0.5),
            arm.quantile_ms(0.99),
            arm.outcome_n,
            arm.outcome_mean,
            arm.labelled,
            arm.accuracy,
        )


@dataclass(frozen=True)
class ShadowFigures:
    version: str
    copies: int
    dropped: int
    errors: int
    compared: int
    #: share of label answers equal to the primary's
    agreement: float | None
    #: mean absolute difference of score answers from the primary's
    mean_abs_diff: float | None
    p99_ms: float | None

    @classmethod
    def of(cls, version: str, shadow: ShadowStats) -> ShadowFigures:
        return cls(
            version,
            shadow.copies,
            shadow.dropped,
            shadow.errors,
            shadow.compared,
            shadow.agreement,
            shadow.mean_abs_diff,
            shadow.quantile_ms(0.99),
        )


@dataclass(frozen=True)
class DeploymentResults:
    name: str
    revision: int
    strategy: str
    #: servers whose counters are summed, and when the latest flushed
    servers: int
    updated_at: datetime | None
    arms: list[ArmFigures]
    #: each arm's A/B comparison with the first route's (empty without an ``ab`` section)
    ab: list[ABResult]
    shadow: ShadowFigures | None
    rollout: RolloutState | None
    step_weight: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.name,
            "revision": self.revision,
            "strategy": self.strategy,
            "servers": self.servers,
            "updated_at": None if self.updated_at is None else self.updated_at.isoformat(),
            "arms": [dataclasses.asdict(arm) for arm in self.arms],
            "ab": [dataclasses.asdict(result) for result in self.ab],
            "shadow": None if self.shadow is None else dataclasses.asdict(self.shadow),
            "rollout": None if self.rollout is None else self.rollout.to_json(),
            "step_weight": self.step_weight,
        }


def results(registry: Registry, name: str) -> DeploymentResults:
    now = status(registry, name)
    revision = now.deployment.revision
    records = registry.deployments.stats(name, revision)
    total = DeploymentStats()
    for record in records:
        total = total.merge(DeploymentStats.from_json(record.stats))
    split = dict(now.split.arms)
    versions = [*split, *(v for v in sorted(total.arms) if v not in split)]
    arms = [ArmFigures.of(v, split.get(v, 0.0), total.arms.get(v) or ArmStats()) for v in versions]
    spec = now.spec
    ab: list[ABResult] = []
    if spec.ab is not None:
        control = str(spec.routes[0].version)
        for route in spec.routes[1:]:
            treatment = str(route.version)
            ab.append(
                compare(
                    total.arms.get(control) or ArmStats(),
                    total.arms.get(treatment) or ArmStats(),
                    alpha=spec.ab.alpha,
                    min_samples=spec.ab.min_samples,
                    control_version=control,
                    treatment_version=treatment,
                )
            )
    shadow = None
    if spec.shadow is not None:
        shadow = ShadowFigures.of(str(spec.shadow.version), total.shadow or ShadowStats())
    return DeploymentResults(
        name,
        revision,
        str(spec.strategy),
        len(records),
        max((r.updated_at for r in records), default=None),
        arms,
        ab,
        shadow,
        now.rollout,
        now.step_weight,
    )
