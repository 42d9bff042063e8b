"""Acting on a deployment: promote, pause, resume or abort its rollout; roll back to an earlier
revision; delete it. Also how the server's rollout driver ends a rollout (``finish_rollout``).

Every action that changes what is served stores a new revision, expecting the revision it read:
of two actions racing (a user's promote and the driver's automatic rollback), exactly one wins and
the other is refused with "someone changed it; look and retry". Pause and resume change only the
rollout's state, by compare-and-set on its generation. Each action records who took it in the
revision and in the rollout's decision log.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from seaway.deploy.actor import CONTROLLER, local_actor
from seaway.deploy.apply import commit, resolve_versions
from seaway.errors import ConflictError, InvalidInputError, NotFoundError
from seaway.routing import rollout as rollouts
from seaway.routing.rollout import Decision, RolloutState
from seaway.routing.spec import DeploymentSpec, parse_spec
from seaway.types import RolloutAction, RolloutPhase

if TYPE_CHECKING:
    from seaway.registry import Registry
    from seaway.registry.deployments import Deployment, Revision, RolloutRecord

ACTIONS = ("promote", "pause", "resume", "abort", "rollback", "delete")


@dataclass(frozen=True)
class ActionResult:
    """What an action did: the deployment's revision afterwards and a sentence saying it."""

    deployment: str
    action: str
    revision: int | None  # None once deleted
    message: str
    changed: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "action": self.action,
            "revision": self.revision,
            "changed": self.changed,
            "message": self.message,
        }


@dataclass(frozen=True)
class _Live:
    """A rollout in progress, as read: the deployment, its spec, the record and its state."""

    deployment: Deployment
    spec: DeploymentSpec
    record: RolloutRecord
    state: RolloutState

    def where(self) -> str:
        assert self.spec.rollout is not None
        steps = self.spec.rollout.steps
        weight = rollouts.current_weight(self.spec.rollout, self.state)
        at = f", {weight:g}%" if weight is not None else ""
        return f"step {self.state.step + 1} of {len(steps)}{at}"


def promote(
    registry: Registry, name: str, *, actor: str | None = None, now: Callable[[], float] = time.time
) -> ActionResult:
    """End the rollout now with the candidate taking all traffic (a new revision)."""
    live, who = _live(registry, name), actor or local_actor()
    candidate = live.state.candidate
    reason = f"promoted by {who} at {live.where()}: version {candidate} takes all traffic"
    decision = Decision(RolloutAction.PROMOTE, live.state.step, 100.0, reason, (), now(), {})
    revision = _end(registry, live, candidate, decision, who, f"promote version {candidate}", now)
    return ActionResult(
        name, "promote", revision.revision, f"{reason} (revision {revision.revision})"
    )


def abort(
    registry: Registry, name: str, *, actor: str | None = None, now: Callable[[], float] = time.time
) -> ActionResult:
    """End the rollout now with the stable version taking all traffic back (a new revision)."""
    live, who = _live(registry, name), actor or local_actor()
    stable, candidate = live.state.stable, live.state.candidate
    reason = f"aborted by {who} at {live.where()}: version {stable} takes all traffic back"
    decision = Decision(RolloutAction.ABORT, live.state.step, 0.0, reason, (), now(), {})
    message = f"abort the rollout of version {candidate}"
    revision = _end(registry, live, stable, decision, who, message, now)
    return ActionResult(
        name, "abort", revision.revision, f"{reason} (revision {revision.revision})"
    )


def pause(
    registry: Registry, name: str, *, actor: str | None = None, now: Callable[[], float] = time.time
) -> ActionResult:
    """Hold the rollout at its step (traffic stays split as it is) until resumed."""
    return _set_phase(registry, name, RolloutPhase.PAUSED, actor or local_actor(), now)


def resume(
    registry: Registry, name: str, *, actor: str | None = None, now: Callable[[], float] = time.time
) -> ActionResult:
    """Let a paused rollout move on again from its step."""
    return _set_phase(registry, name, RolloutPhase.PROGRESSING, actor or local_actor(), now)


def rollback(
    registry: Registry,
    name: str,
    to_revision: int | None = None,
    *,
    actor: str | None = None,
    now: Callable[[], float] = time.time,
) -> ActionResult:
    """Apply an earlier revision's spec again, as a new revision (default: the one before the
    current). No validation gate: the versions served before are what a rollback goes back to."""
    store = registry.deployments
    current = store.get(name)
    target = current.revision - 1 if to_revision is None else to_revision
    if target < 1:
        raise InvalidInputError(
            f"deployment {name} has only revision {current.revision}: there is no earlier "
            "revision to roll back to"
        )
    if target >= current.revision:
        earlier = {
            1: "none: it has no earlier revision",
            2: "revision 1",
        }.get(current.revision, f"an earlier revision (1 to {current.revision - 1})")
        raise InvalidInputError(
            f"to_revision {target}: deployment {name} is at revision {current.revision}; it "
            f"can roll back to {earlier}"
        )
    spec = DeploymentSpec.from_json(store.revision(name, target).spec)
    if spec.alias is not None:  # it follows the alias again when it next moves, not now
        spec = resolve_versions(registry, spec, require_alias=False)
    message = f"rollback to revision {target}"
    try:
        revision, _ = commit(
            registry, spec, current, actor=actor or local_actor(), message=message, now=now
        )
    except NotFoundError as exc:  # a version of that revision was deleted since
        raise InvalidInputError(
            f"revision {target} of deployment {name} cannot be restored: {exc}; it was "
            "deleted since. Apply a spec with the versions there are now"
        ) from None
    return ActionResult(
        name, "rollback", revision.revision, f"deployment {name} rolled back to revision "
        f"{target}'s spec as revision {revision.revision}"
    )  # fmt: skip


def delete(registry: Registry, name: str, *, actor: str | None = None) -> ActionResult:
    """Delete the deployment with its revisions, rollout, decision log and counters."""
    record = registry.deployments.delete(name, actor=actor or local_actor())
    return ActionResult(
        name, "delete", None, f"deleted deployment {name} ({record.revision} revision(s))"
    )


def act(
    registry: Registry,
    name: str,
    action: str,
    *,
    actor: str | None = None,
    to_revision: int | None = None,
    now: Callable[[], float] = time.time,
) -> ActionResult:
    """One action by name (the admin API's ``POST .../{action}``)."""
    if action == "rollback":
        return rollback(registry, name, to_revision, actor=actor, now=now)
    if to_revision is not None:
        raise InvalidInputError(f"to_revision goes with rollback, not {action}")
    if action == "delete":
        return delete(registry, name, actor=actor)
    do: Mapping[str, Callable[..., ActionResult]] = {
        "promote": promote, "pause": pause, "resume": resume, "abort": abort,
    }  # fmt: skip
    if action not in do:
        raise InvalidInputError(f"unknown action {action!r}; use one of {', '.join(ACTIONS)}")
    return do[action](registry, name, actor=actor, now=now)


def finish_rollout(
    registry: Registry,
    name: str,
    state: RolloutState,
    decision: Decision,
    actor: str = CONTROLLER,
    *,
    now: Callable[[], float] = time.time,
) -> Revision:
    """End a rollout as the driver decided (COMPLETE: the candidate takes all traffic; ROLLBACK:
    the stable version takes it back) with a new revision, recording the decision."""
    if decision.action not in (RolloutAction.COMPLETE, RolloutAction.ROLLBACK):
        raise InvalidInputError(
            f"finish_rollout takes a complete or rollback decision, not {decision.action}"
        )
    live = _live(registry, name)
    if (live.state.stable, live.state.candidate) != (state.stable, state.candidate):
        raise ConflictError(
            f"deployment {name} now rolls out version {live.state.candidate}, not "
            f"{state.candidate}: someone changed it; look and retry"
        )
    if decision.action is RolloutAction.COMPLETE:
        keep, message = state.candidate, f"rollout of version {state.candidate} completed"
    else:
        keep, message = state.stable, f"rollout of version {state.candidate} rolled back"
    return _end(registry, live, keep, decision, actor, message, now)


def _live(registry: Registry, name: str) -> _Live:
    """The rollout in progress (paused ones too); ConflictError when there is none."""
    store = registry.deployments
    deployment = store.get(name)
    spec = DeploymentSpec.from_json(deployment.spec)
    record = store.rollout(name)
    if spec.rollout is None or record is None or record.revision != deployment.revision:
        raise ConflictError(
            f"deployment {name} has no rollout in progress (revision {deployment.revision} is "
            f"{spec.strategy}); a rollout starts when a spec with a rollout section is applied"
        )
    state = RolloutState.from_json(record.state)
    if state.terminal:
        raise ConflictError(f"the rollout of deployment {name} has {state.phase}: {state.reason}")
    return _Live(deployment, spec, record, state)


def _end(
    registry: Registry,
    live: _Live,
    version: str,
    decision: Decision,
    actor: str,
    message: str,
    now: Callable[[], float],
) -> Revision:
    """A new revision routing all traffic to ``version``, with no rollout."""
    doc = live.spec.to_json()
    for key in ("rollout", "strategy"):  # the strategy follows from what is left
        doc.pop(key, None)
    doc["routes"] = [{"version": int(version), "weight": 100}]
    revision, _ = commit(
        registry, parse_spec(doc), live.deployment, actor=actor, message=message, now=now,
        ending=decision,
    )  # fmt: skip
    return revision


def _set_phase(
    registry: Registry,
    name: str,
    phase: RolloutPhase,
    actor: str,
    now: Callable[[], float],
) -> ActionResult:
    live = _live(registry, name)
    verb = "paused" if phase is RolloutPhase.PAUSED else "resumed"
    action = "pause" if phase is RolloutPhase.PAUSED else "resume"
    if live.state.phase is phase:
        already = "already paused" if phase is RolloutPhase.PAUSED else "not paused"
        return ActionResult(
            name, action, live.deployment.revision,
            f"the rollout of deployment {name} is {already} ({live.where()}): nothing to do",
            changed=False,
        )  # fmt: skip
    reason = f"{verb} by {actor} at {live.where()}"
    new = replace(live.state, phase=phase, reason=reason)
    store = registry.deployments
    store.set_rollout(
        name, live.record.revision, new.to_json(), expect_generation=live.record.generation
    )
    weight = rollouts.current_weight(live.spec.rollout, new) if live.spec.rollout else None
    kind = RolloutAction.PAUSE if phase is RolloutPhase.PAUSED else RolloutAction.RESUME
    decision = Decision(kind, live.state.step, weight or 0.0, reason, (), now(), {})
    store.record_decision(name, live.record.revision, decision.to_json(), actor=actor)
    return ActionResult(name, action, live.deployment.revision, f"rollout of {name} {reason}")
