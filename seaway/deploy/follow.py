"""Following an alias: when the alias a deployment names moves, a new revision follows it.

A deployment with ``alias: production`` serves the version the alias points at. Moving the alias
(``seaway models alias fraud production 4``) is then a release: with ``on_alias_change: switch``
the new version takes all traffic at once (blue/green); with ``canary`` a progressive rollout of it
starts against the version served now, with the spec's ``rollout_template`` steps and gates (the
defaults without one). Either way it is an ordinary revision, so it is recorded, can be rolled
back, and is taken once: of several servers that notice the move, one stores the revision and the
others are refused (``ConflictError``) and see it at their next poll.

No validation gate runs here: a server would have to load and score the version in its own
process; gate the version before moving the alias (``seaway validate``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from seaway.deploy.actor import CONTROLLER
from seaway.deploy.apply import commit
from seaway.errors import NotFoundError
from seaway.registry.uri import ModelRef
from seaway.routing.spec import DeploymentSpec, RolloutTemplate, parse_spec

if TYPE_CHECKING:
    from seaway.registry import Registry
    from seaway.registry.deployments import Revision


def follow_alias(
    registry: Registry,
    name: str,
    *,
    actor: str = CONTROLLER,
    now: Callable[[], float] = time.time,
) -> Revision | None:
    """The revision that follows the deployment's alias to where it points now; None when the
    deployment follows no alias, already follows it, or the alias is gone (it keeps serving)."""
    deployment = registry.deployments.get(name)
    spec = DeploymentSpec.from_json(deployment.spec)
    if spec.alias is None:
        return None
    try:
        target = registry.resolve(ModelRef(name=spec.model, alias=spec.alias)).version
    except NotFoundError:
        return None
    if spec.alias_version == target:
        return None  # the alias has not moved since this revision was made
    if spec.alias_version is None and _follows(spec, target):
        return None
    doc = spec.to_json()
    doc["alias_version"] = target
    stable = _stable(spec)
    if spec.on_alias_change == "canary" and stable != target:
        template = spec.rollout_template or RolloutTemplate()
        doc["routes"] = [{"version": stable, "weight": 100}]
        doc["rollout"] = {"version": target, **template.model_dump(mode="json")}
        message = f"alias {spec.alias} moved to version {target}: rollout started"
        routed = {stable, target}
    else:
        doc["routes"] = [{"version": target, "weight": 100}]
        doc.pop("rollout", None)
        message = f"alias {spec.alias} moved to version {target}: switched"
        routed = {target}
    _drop_what_no_longer_fits(doc, spec, routed)
    revision, _ = commit(
        registry, parse_spec(doc), deployment, actor=actor, message=message, now=now
    )
    return revision


def _follows(spec: DeploymentSpec, target: int) -> bool:
    if spec.rollout is not None:
        return spec.rollout.version == target
    return [(r.version, r.weight) for r in spec.routes] == [(target, 100.0)]


def _stable(spec: DeploymentSpec) -> int:
    """The version a rollout starts from: the one answering most of the traffic now."""
    heaviest = max(spec.routes, key=lambda route: route.weight)
    return int(heaviest.version)


def _drop_what_no_longer_fits(doc: dict[str, Any], spec: DeploymentSpec, routed: set[int]) -> None:
    """One route (or a rollout) now: no A/B test; no shadow of a version that answers; the
    strategy follows from the sections unless it is blue-green (a one-route switch itself)."""
    doc.pop("ab", None)
    if spec.shadow is not None and spec.shadow.version in routed:
        doc.pop("shadow")
    if doc.get("strategy") != "blue-green" or "rollout" in doc:
        doc.pop("strategy", None)
