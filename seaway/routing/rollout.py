"""Progressive rollout as a pure state machine: `start`, then `decide` at every controller poll.

All the rollout's memory is in `RolloutState` (a JSON document the registry stores), and `decide`
reads nothing else but the spec, the deployment's cumulative statistics and the injected ``now``.
So a restarted server, or another server that takes over the rollout's lease, continues exactly
where the last decision left it: at the same step, with the same step-start snapshot; it can only
move one step at a time, so it never jumps to 100%.

Each step is judged on its own window: the cumulative statistics minus the snapshot taken when the
step began. A failed gate rolls back at once; anything short (the step's minimum duration or
request count, or a gate with insufficient data) holds; only a step whose minimums are met and
whose gates all pass advances. At a step of weight 100 the stable version answers nothing, so the
gates compare the candidate's window with all the stable version served during the rollout.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from seaway.errors import InvalidInputError
from seaway.routing.analysis import GateResult, evaluate
from seaway.routing.spec import Rollout
from seaway.routing.stats import ArmStats, DeploymentStats
from seaway.types import GateVerdict, RolloutAction, RolloutPhase

_LIVE = (RolloutPhase.PROGRESSING, RolloutPhase.PAUSED)


@dataclass(frozen=True)
class RolloutState:
    """Where a rollout stands; ``step`` indexes the spec's steps, times are epoch seconds."""

    phase: RolloutPhase
    step: int
    step_started_at: float
    started_at: float
    stable: str
    candidate: str
    at_step_start: dict[str, Any] = field(default_factory=dict)
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase.value,
            "step": self.step,
            "step_started_at": self.step_started_at,
            "started_at": self.started_at,
            "stable": self.stable,
            "candidate": self.candidate,
            "at_step_start": self.at_step_start,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> RolloutState:
        try:
            return cls(
                phase=RolloutPhase(doc["phase"]),
                step=int(doc["step"]),
                step_started_at=float(doc["step_started_at"]),
                started_at=float(doc["started_at"]),
                stable=str(doc["stable"]),
                candidate=str(doc["candidate"]),
                at_step_start=dict(doc.get("at_step_start") or {}),
                reason=str(doc.get("reason", "")),
            )
        except KeyError as exc:
            raise InvalidInputError(f"rollout state: missing field {exc.args[0]!r}") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"rollout state: unreadable ({exc})") from exc

    @property
    def terminal(self) -> bool:
        return self.phase not in _LIVE


@dataclass(frozen=True)
class Decision:
    """One entry of the decision log: what was done, why, and every value compared.

    ``step`` and ``weight`` are where the rollout stands after the decision (a rollback: 0%).
    """

    action: RolloutAction
    step: int
    weight: float
    reason: str
    gates: tuple[GateResult, ...]
    at: float
    values: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action.value,
            "step": self.step,
            "weight": self.weight,
            "reason": self.reason,
            "gates": [gate.to_json() for gate in self.gates],
            "at": self.at,
            "values": self.values,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Decision:
        return cls(
            action=RolloutAction(doc["action"]),
            step=int(doc["step"]),
            weight=float(doc["weight"]),
            reason=str(doc.get("reason", "")),
            gates=tuple(GateResult.from_json(g) for g in doc.get("gates", ())),
            at=float(doc["at"]),
            values=dict(doc.get("values") or {}),
        )


def start(
    rollout: Rollout, stable: str, candidate: str, now: float, stats: DeploymentStats
) -> RolloutState:
    """The state at the first step, its window starting from ``stats`` as they are now."""
    weight = rollout.steps[0].weight
    return RolloutState(
        phase=RolloutPhase.PROGRESSING,
        step=0,
        step_started_at=now,
        started_at=now,
        stable=stable,
        candidate=candidate,
        at_step_start=stats.to_json(),
        reason=f"rollout of version {candidate} started at {weight:g}% (stable {stable})",
    )


def current_weight(rollout: Rollout, state: RolloutState) -> float | None:
    """The candidate's share of traffic now, in percent; None once the rollout has ended."""
    if state.terminal or not 0 <= state.step < len(rollout.steps):
        return None
    return float(rollout.steps[state.step].weight)


def decide(
    rollout: Rollout,
    state: RolloutState,
    stats: DeploymentStats,
    now: float,
    *,
    drift: float | None = None,
) -> tuple[RolloutState, Decision]:
    """The next state and the decision that led to it (a HOLD returns ``state`` itself)."""
    if state.terminal:
        weight = 100.0 if state.phase is RolloutPhase.SUCCEEDED else 0.0
        return state, _hold(state, weight, now, f"rollout already {_ended(state.phase)}")
    if not 0 <= state.step < len(rollout.steps):
        reason = (
            f"rollout state is at step {state.step + 1} but the spec has {len(rollout.steps)} "
            "steps: holding; promote, abort or re-apply the deployment"
        )
        return state, _hold(state, 0.0, now, reason)
    step = rollout.steps[state.step]
    weight = float(step.weight)
    where = f"step {state.step + 1} of {len(rollout.steps)} ({weight:g}%)"
    if state.phase is RolloutPhase.PAUSED:
        return state, _hold(state, weight, now, f"paused at {where}")

    window = stats.minus(DeploymentStats.from_json(state.at_step_start))
    candidate = _arm(window, state.candidate)
    stable = _arm(window, state.stable)
    if weight >= 100.0:  # the stable version answers nothing now: compare with its whole record
        stable = _arm(stats, state.stable)
    elapsed = max(0.0, now - state.step_started_at)
    values: dict[str, Any] = {
        "elapsed_s": elapsed,
        "min_duration_s": float(step.min_duration),
        "candidate_requests": candidate.requests,
        "min_requests": step.min_requests,
        "stable_requests": stable.requests,
        "candidate_errors": candidate.errors,
        "stable_errors": stable.errors,
    }
    gates = tuple(evaluate(rollout.gates, stable, candidate, drift=drift)) if rollout.gates else ()
    values.update({gate.name: gate.value for gate in gates})

    def decision(action: RolloutAction, decided_weight: float, reason: str) -> Decision:
        return Decision(action, state.step, decided_weight, reason, gates, now, values)

    failed = [gate for gate in gates if gate.verdict is GateVerdict.FAIL]
    if failed:
        reason = f"rolled back at {where}: " + "; ".join(f"{g.name}: {g.message}" for g in failed)
        new = replace(state, phase=RolloutPhase.ROLLED_BACK, reason=reason)
        return new, decision(RolloutAction.ROLLBACK, 0.0, reason)

    waiting = []
    if elapsed < step.min_duration:
        waiting.append(f"{_duration(elapsed)} of {_duration(step.min_duration)} elapsed")
    if candidate.requests < step.min_requests:
        waiting.append(
            f"{candidate.requests} of {step.min_requests} requests on version {state.candidate}"
        )
    waiting += [f"{g.name}: {g.message}" for g in gates if g.verdict is GateVerdict.INSUFFICIENT]
    if waiting:
        return state, decision(
            RolloutAction.HOLD, weight, f"holding at {where}: " + "; ".join(waiting)
        )

    passed = f"gates passed ({', '.join(g.name for g in gates)})" if gates else "no gates set"
    met = f"{_duration(elapsed)} and {candidate.requests} requests at {where}, {passed}"
    if state.step + 1 >= len(rollout.steps):
        reason = f"completed: {met}"
        new = replace(state, phase=RolloutPhase.SUCCEEDED, reason=reason)
        return new, decision(RolloutAction.COMPLETE, 100.0, reason)
    next_weight = float(rollout.steps[state.step + 1].weight)
    reason = f"advanced to {next_weight:g}%: {met}"
    new = replace(
        state,
        step=state.step + 1,
        step_started_at=now,
        at_step_start=stats.to_json(),
        reason=reason,
    )
    return new, Decision(RolloutAction.ADVANCE, new.step, next_weight, reason, gates, now, values)


def _arm(stats: DeploymentStats, version: str) -> ArmStats:
    arm = stats.arms.get(version)
    return ArmStats() if arm is None else arm


def _hold(state: RolloutState, weight: float, now: float, reason: str) -> Decision:
    return Decision(RolloutAction.HOLD, state.step, weight, reason, (), now, {})


def _ended(phase: RolloutPhase) -> str:
    return {
        RolloutPhase.SUCCEEDED: "succeeded",
        RolloutPhase.ROLLED_BACK: "rolled back",
        RolloutPhase.ABORTED: "aborted",
    }.get(phase, phase.value)


def _duration(seconds: float) -> str:
    """``3m10s``, ``1h5m``, ``42s``: how long, for messages."""
    total = int(seconds)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m" if minutes else f"{hours}h"
    if minutes:
        return f"{minutes}m{secs}s" if secs else f"{minutes}m"
    return f"{secs}s" if total or seconds == 0 else f"{seconds:.1f}s"
