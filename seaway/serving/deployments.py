"""The controller's deployments: follow their desired state in the registry, drive their rollouts.

A server started with ``--deployment NAME`` (or ``'*'``: every deployment in the registry) reads
each deployment's current revision and rollout at every poll (:meth:`DeploymentFollower.read`,
one registry read in a worker thread) and turns it into a :class:`Plan`: the versions to keep
loaded (every arm, the shadow, and a rollout's candidate before its first step) and the split to
serve now. The controller loads what a plan needs first and publishes the new routes only then,
so a new revision never sends a request to a version that is not warm; until it is, the last
route keeps serving.

Each process counts its own requests per revision (``deployment_route.Recorder``, kept while
the revision is the same) and leaves them in the registry (:meth:`DeploymentFollower.flush`,
one row per server). Decisions that must be taken once, however many servers follow the
deployment, are taken under a lease in the database by whichever server holds it
(:meth:`DeploymentFollower.drive`): following a moved alias, and a rollout's next step, judged
on every server's counts. A server that dies leaves its lease to expire; another takes it over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from seaway import deploy
from seaway.errors import ConflictError, InvalidInputError, NotFoundError, SeawayError, listed
from seaway.routing import rollout as rollouts
from seaway.routing.policy import Split, effective_split
from seaway.routing.rollout import Decision, RolloutState
from seaway.routing.spec import DeploymentSpec
from seaway.routing.stats import DeploymentStats
from seaway.serving.deployment_route import DeploymentRoute, Recorder
from seaway.serving.model import ServedModel
from seaway.types import RolloutAction, RolloutPhase

if TYPE_CHECKING:
    from seaway.registry import Registry
    from seaway.registry.deployments import Deployment, RolloutRecord

log = logging.getLogger("seaway.serving.deployments")

#: serve every deployment in the registry (``seaway serve --deployment '*'``)
ALL = "*"


@dataclass(frozen=True)
class Plan:
    """What one deployment's current revision asks of this server now."""

    name: str
    model: str
    revision: int
    spec: DeploymentSpec
    #: the rollout of this revision (None: none, or its record belongs to an earlier revision)
    rollout: RolloutState | None
    generation: int | None
    split: Split
    #: every version to keep loaded: arms, shadow, and the rollout's candidate
    versions: tuple[str, ...]

    @property
    def shadow(self) -> str | None:
        return None if self.spec.shadow is None else str(self.spec.shadow.version)


def plan(deployment: Deployment, record: RolloutRecord | None) -> Plan:
    """The plan of a stored deployment (``status`` in ``seaway.deploy`` reads it the same way)."""
    spec = DeploymentSpec.from_json(deployment.spec)
    state = None
    generation = None
    if record is not None and record.revision == deployment.revision:
        try:
            state = RolloutState.from_json(record.state)
            generation = record.generation
        except InvalidInputError as exc:
            log.error("deployment %s: its rollout state is unreadable (%s)", deployment.name, exc)
    weight = None
    if state is not None and spec.rollout is not None:
        weight = rollouts.current_weight(spec.rollout, state)
    split = effective_split(spec, weight)
    versions = list(split.versions)
    for extra in (spec.shadow.version if spec.shadow else None,
                  spec.rollout.version if spec.rollout else None):  # fmt: skip
        if extra is not None and str(extra) not in versions:
            versions.append(str(extra))
    return Plan(
        deployment.name,
        deployment.model,
        deployment.revision,
        spec,
        state,
        generation,
        split,
        tuple(versions),
    )


class DeploymentFollower:
    """Follows deployments ``names`` (``ALL``: every one) of ``registry`` for one server process.

    ``clock`` is wall time (leases and rollout steps are compared across servers); tests inject
    one to decide when a step's minimum duration has passed."""

    def __init__(
        self,
        registry: Registry,
        names: Sequence[str],
        *,
        poll_interval: float = 2.0,
        lease_seconds: float | None = None,
        server: str | None = None,
        clock: Callable[[], float] = time.time,
        drift: Callable[[str, str, datetime], float | None] | None = None,
    ) -> None:
        self.registry = registry
        #: the candidate's drift for a ``max_drift`` gate (``rollout_drift.py``; None: not known)
        self._drift = drift
        self.names = list(dict.fromkeys(names))
        self.server = server or f"server-{uuid.uuid4().hex[:8]}"
        self.actor = f"controller:{self.server}"
        #: how long a lease lasts unrenewed: a dead holder's decisions wait this long for another
        self.lease_seconds = (
            lease_seconds if lease_seconds is not None else max(3 * poll_interval, 10.0)
        )
        self._clock = clock
        #: the plans read last, by deployment name
        self.plans: dict[str, Plan] = {}
        #: the routes published last, by name: they keep serving while a new plan loads
        self.routes: dict[str, DeploymentRoute] = {}
        #: (name, revision) -> this process's counts of that revision
        self._recorders: dict[tuple[str, int], Recorder] = {}
        #: requests counted at the last flush, per (name, revision): unchanged counts are not sent
        self._flushed: dict[tuple[str, int], int] = {}
        #: the last hold reason recorded per deployment: a hold is logged when its reason changes
        self._held: dict[str, str] = {}
        self._load_failures: dict[tuple[str, str], str] = {}
        #: set once the server stops: it takes no more decisions
        self._closed = False

    @property
    def follows_all(self) -> bool:
        return ALL in self.names

    # ---- reading desired state ---------------------------------------------------------------

    def read(self) -> dict[str, Plan]:
        """Every followed deployment's plan (blocking: a worker thread's work). A deployment named
        at start that is missing raises NotFoundError when ``strict``; later it stops serving
        (it was deleted)."""
        snapshot = self.registry.deployments.snapshot()
        found = {
            d.name: plan(d, r) for d, r in snapshot if self.follows_all or d.name in self.names
        }
        self.plans = found
        return found

    def check_named(self) -> None:
        """Start-up: every deployment named explicitly must exist."""
        missing = [n for n in self.names if n != ALL and n not in self.plans]
        if missing:
            known = sorted(self.plans) or [d.name for d in self.registry.deployments.list()]
            raise NotFoundError(
                f"no deployment named {listed(missing)} in the registry (deployments: "
                f"{listed(sorted(known)) if known else 'none'}); create one with "
                "seaway deploy apply FILE"
            )

    # ---- routes --------------------------------------------------------------------------------

    def build(self, item: Plan, running: Mapping[tuple[str, str], ServedModel]) -> DeploymentRoute:
        """The route of ``item`` over the running versions (all of ``item.versions`` must run)."""
        arms = {v: running[(item.model, v)] for v in item.split.versions}
        spec = item.spec
        key = (item.name, item.revision)
        recorder = self._recorders.get(key)
        if recorder is None:
            recorder = Recorder(
                item.split.versions,
                shadow=spec.shadow is not None,
                max_pending=spec.shadow.max_pending if spec.shadow else 64,
            )
            self._recorders[key] = recorder
        sticky = spec.ab.key if spec.ab is not None else None
        current = self.routes.get(item.name)
        return DeploymentRoute(
            item.name,
            model=item.model,
            split=item.split,
            arms=arms,
            revision=item.revision,
            sticky_header=sticky.header if sticky is not None else None,
            sticky_input=sticky.input if sticky is not None else None,
            shadow=running[(item.model, item.shadow)] if item.shadow is not None else None,
            shadow_fraction=spec.shadow.fraction if spec.shadow else 1.0,
            shadow_max_pending=spec.shadow.max_pending if spec.shadow else 64,
            recorder=recorder,
            rng=current.rng if current is not None else None,
        )

    def published(self, routes: Mapping[str, DeploymentRoute]) -> list[Recorder]:
        """Remember what was published; the recorders of revisions no longer served, to close."""
        self.routes = dict(routes)
        live = {(r.name, r.revision) for r in routes.values()}
        gone = [key for key in self._recorders if key not in live]
        return [self._recorders.pop(key) for key in gone]

    # ---- counts and decisions (blocking: worker threads) ----------------------------------------

    def flush(self) -> None:
        """Leave this process's counts of each served revision in the registry."""
        store = self.registry.deployments
        for (name, revision), recorder in list(self._recorders.items()):
            stats = recorder.stats
            seen = sum(arm.requests for arm in stats.arms.values())
            if stats.shadow is not None:
                seen += stats.shadow.copies + stats.shadow.dropped
            seen += sum(a.outcome_n + a.labelled + a.residual_n for a in stats.arms.values())
            if self._flushed.get((name, revision)) == seen:
                continue
            try:
                store.put_stats(name, revision, self.server, stats.to_json())
            except NotFoundError:
                continue  # deleted, or a newer revision: the next read drops it
            self._flushed[(name, revision)] = seen

    def drive(self, load_failures: Mapping[tuple[str, str], str] | None = None) -> bool:
        """Take the decisions this server holds the lease for; True when one changed a
        deployment (the caller reads the registry again at once). ``load_failures``: why each
        (model, version) this server could not load failed; a rollout of such a candidate is
        rolled back, not held for ever."""
        self._load_failures = dict(load_failures or {})
        changed = False
        if self._closed:
            return changed
        for item in list(self.plans.values()):
            needs = item.spec.alias is not None or (
                item.rollout is not None and item.rollout.phase is RolloutPhase.PROGRESSING
            )
            if not needs:
                continue
            lease = f"deployment:{item.name}"
            if not self.registry.deployments.acquire_lease(
                lease, self.server, self.lease_seconds, now=self._now_utc()
            ):
                continue
            try:
                changed |= self._decide(item)
            except ConflictError as exc:  # another writer got there first: look again next poll
                log.info("deployment %s changed meanwhile (%s); looking again", item.name, exc)
                changed = True
            except SeawayError as exc:
                log.error("deployment %s: cannot take its next decision: %s", item.name, exc)
        return changed

    def close(self) -> None:
        """A stopping server's last word: the counts of the requests it answered since the last
        flush (a restart must not lose them), and its leases handed back, so that another server
        takes over its decisions at once instead of when they expire."""
        self._closed = True
        self.flush()
        for name in self.plans:
            self.registry.deployments.release_lease(f"deployment:{name}", self.server)

    def _decide(self, item: Plan) -> bool:
        if item.spec.alias is not None:
            revision = deploy.follow_alias(
                self.registry, item.name, actor=self.actor, now=self._clock
            )
            if revision is not None:
                log.info(
                    "deployment %s: %s (revision %d)",
                    item.name,
                    revision.message,
                    revision.revision,
                )
                return True
        state, rollout = item.rollout, item.spec.rollout
        if state is None or rollout is None or state.phase is not RolloutPhase.PROGRESSING:
            return False
        failure = self._load_failures.get((item.model, state.candidate))
        if failure is not None:
            new = dataclasses.replace(
                state, phase=RolloutPhase.ROLLED_BACK, reason=f"failed to load: {failure}"
            )
            decision = Decision(
                RolloutAction.ROLLBACK,
                state.step,
                0.0,
                f"rolled back: version {state.candidate} failed to load on {self.server}: "
                f"{failure}",
                (),
                self._clock(),
                {"load_failure": failure},
            )
            return self._finish(item, new, decision)
        stats = self._stats(item)
        drift = None
        if rollout.gates.max_drift is not None and self._drift is not None:
            since = datetime.fromtimestamp(state.step_started_at, UTC)
            drift = self._drift(item.model, state.candidate, since)
        new, decision = rollouts.decide(rollout, state, stats, self._clock(), drift=drift)
        store = self.registry.deployments
        if decision.action is RolloutAction.HOLD:
            # a hold is logged when what holds it changes, not as its counts grow every poll
            why = _without_numbers(decision.reason)
            if self._held.get(item.name) != why:
                store.record_decision(
                    item.name, item.revision, decision.to_json(), actor=self.actor
                )
                self._held[item.name] = why
            return False
        self._held.pop(item.name, None)
        if decision.action in (RolloutAction.COMPLETE, RolloutAction.ROLLBACK):
            return self._finish(item, new, decision)
        store.set_rollout(
            item.name, item.revision, new.to_json(), expect_generation=item.generation
        )
        store.record_decision(item.name, item.revision, decision.to_json(), actor=self.actor)
        log.info("deployment %s: %s", item.name, decision.reason)
        return True

    def _finish(self, item: Plan, new: RolloutState, decision: Decision) -> bool:
        revision = deploy.finish_rollout(
            self.registry, item.name, new, decision, self.actor, now=self._clock
        )
        log.warning(
            "deployment %s: %s (revision %d): %s",
            item.name,
            revision.message,
            revision.revision,
            decision.reason,
        )
        return True

    def _stats(self, item: Plan) -> DeploymentStats:
        """Every server's counts of the revision (this one's included, flushed just before)."""
        total = DeploymentStats()
        for record in self.registry.deployments.stats(item.name, item.revision):
            total = total.merge(DeploymentStats.from_json(record.stats))
        return total

    def _now_utc(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)


def _without_numbers(reason: str) -> str:
    return re.sub(r"\d+(\.\d+)?", "#", reason)


async def close_recorders(recorders: Sequence[Recorder]) -> None:
    """Let the shadow copies of retired revisions finish (they are bounded)."""
    await asyncio.gather(*(r.close() for r in recorders), return_exceptions=True)
