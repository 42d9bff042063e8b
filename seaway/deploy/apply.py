"""Applying a deployment spec: check it against the registry, gate new versions, store a revision.

Everything that can refuse happens before anything is written, so a refused spec leaves the live
deployment exactly as it was: the spec's own rules (``seaway.routing.spec``), its aliases resolved
to version numbers (the stored spec names numbers, so a server serves exactly what was applied and
moving an alias later is a change of its own), every version present, and the validation gate on
each version the deployment does not use yet. The revision is then stored with the revision read
at the start as the expected one: if someone else changed the deployment meanwhile, the apply is
refused rather than silently undoing their change.

A spec with a ``rollout`` starts it at its first step with the new revision; a revision without
one ends any rollout still running (its decision log says which revision superseded it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seaway.deploy.actor import local_actor
from seaway.deploy.validate import ValidationReport, validate
from seaway.errors import InvalidInputError, NotFoundError, ValidationFailedError
from seaway.registry.uri import ModelRef
from seaway.routing import rollout as rollouts
from seaway.routing.rollout import Decision, RolloutState
from seaway.routing.spec import DeploymentSpec, load_spec, parse_spec
from seaway.routing.stats import DeploymentStats
from seaway.types import RolloutAction

if TYPE_CHECKING:
    from seaway.registry import Registry
    from seaway.registry.deployments import Deployment, Revision

SpecInput = DeploymentSpec | Mapping[str, Any] | str | Path


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did. ``revision``: the new one; the current one when the spec is
    ``unchanged``; None for a dry run that would create one."""

    revision: Revision | None
    spec: DeploymentSpec
    validation: list[ValidationReport] = field(default_factory=list)
    unchanged: bool = False
    dry_run: bool = False
    #: the rollout this apply started
    rollout: RolloutState | None = None

    def message(self) -> str:
        name = self.spec.name
        if self.unchanged:
            number = f" (revision {self.revision.revision})" if self.revision else ""
            return f"deployment {name} unchanged{number}: nothing to apply"
        if self.dry_run:
            return f"deployment {name}: the spec is valid and would be applied (dry run)"
        assert self.revision is not None
        text = f"deployment {name} is at revision {self.revision.revision}"
        return f"{text}; {self.rollout.reason}" if self.rollout else text

    def to_json(self) -> dict[str, Any]:
        return {
            "deployment": self.spec.name,
            "revision": None if self.revision is None else self.revision.revision,
            "unchanged": self.unchanged,
            "dry_run": self.dry_run,
            "message": self.message(),
            "spec": self.spec.to_json(),
            "validation": [report.to_json() for report in self.validation],
            "rollout": None if self.rollout is None else self.rollout.to_json(),
        }


def apply(
    registry: Registry,
    spec: SpecInput,
    *,
    actor: str | None = None,
    message: str = "apply",
    dry_run: bool = False,
    trusted: bool = False,
    now: Callable[[], float] = time.time,
) -> ApplyResult:
    """Apply ``spec`` (a spec, its JSON/YAML document as a mapping, or a YAML file's path).

    A relative ``validation.data`` path is read from the spec file's folder (from the current
    folder for a spec given as an object). ``trusted`` lets the validation gate load packages
    that run pickle or packaged code."""
    parsed, base = _parse(spec)
    store = registry.deployments
    current = _current(registry, parsed.name)
    if current is not None and current.model != parsed.model:
        raise InvalidInputError(
            f"deployment spec: model: deployment {parsed.name} serves model {current.model}, not "
            f"{parsed.model}; a deployment's model cannot change (delete the deployment first, or "
            "choose another name)"
        )
    resolved = resolve_versions(registry, parsed)
    if current is not None and _same(current.spec, resolved):
        return ApplyResult(store.revision(parsed.name, current.revision), resolved, unchanged=True)
    reports = _validation_gate(registry, resolved, current, base, trusted)
    if dry_run:
        return ApplyResult(None, resolved, reports, dry_run=True)
    revision, started = commit(
        registry, resolved, current, actor=actor or local_actor(), message=message, now=now
    )
    return ApplyResult(revision, resolved, reports, rollout=started)


def commit(
    registry: Registry,
    spec: DeploymentSpec,
    current: Deployment | None,
    *,
    actor: str,
    message: str,
    now: Callable[[], float] = time.time,
    ending: Decision | None = None,
) -> tuple[Revision, RolloutState | None]:
    """Store ``spec`` (versions already numbers) as the revision after ``current``, then start its
    rollout or end the one running. ``ending`` is what the decision log records for a rollout the
    new revision ends (default: an abort, "superseded by revision N")."""
    store = registry.deployments
    revision = store.apply(
        spec.name,
        spec.model,
        spec.to_json(),
        sorted(int(v) for v in spec.versions()),
        actor=actor,
        message=message,
        expect_revision=0 if current is None else current.revision,
    )
    live = store.rollout(spec.name)
    if live is not None and live.revision < revision.revision:
        decision = ending or _superseded(live.state, revision, message, now())
        if decision is not None:
            store.record_decision(spec.name, live.revision, decision.to_json(), actor=actor)
    if spec.rollout is None:
        if live is not None:
            store.clear_rollout(spec.name)
        return revision, None
    stable, candidate = str(spec.routes[0].version), str(spec.rollout.version)
    at = now()
    state = rollouts.start(spec.rollout, stable, candidate, at, DeploymentStats())
    store.set_rollout(spec.name, revision.revision, state.to_json())
    first = float(spec.rollout.steps[0].weight)
    started = Decision(RolloutAction.START, 0, first, state.reason, (), at, {})
    store.record_decision(spec.name, revision.revision, started.to_json(), actor=actor)
    return revision, state


def resolve_versions(
    registry: Registry, spec: DeploymentSpec, *, require_alias: bool = True
) -> DeploymentSpec:
    """The spec with aliases replaced by version numbers; every version checked to exist. Each
    refusal names the spec's field (``routes[0].version: model fraud has no alias 'prod'``).
    The alias the deployment follows must exist too (a typo would never be followed), unless
    ``require_alias`` is false (a rollback to a revision whose alias was deleted since)."""
    try:
        model = registry.get_model(spec.model)
    except NotFoundError as exc:
        raise InvalidInputError(f"deployment spec: model: {exc}") from None
    known = {v.version for v in registry.list_versions(spec.model)}
    mapping: dict[str, int] = {}
    for where, ref in version_fields(spec):
        if isinstance(ref, str):
            if ref not in model.aliases:
                aliases = ", ".join(sorted(model.aliases)) or "none"
                raise InvalidInputError(
                    f"deployment spec: {where}: model {spec.model} has no alias {ref!r} (its "
                    f"aliases: {aliases}); name a version number or set the alias"
                )
            mapping[ref] = model.aliases[ref]
        elif ref not in known:
            listed = ", ".join(map(str, sorted(known))) or "none"
            raise InvalidInputError(
                f"deployment spec: {where}: model {spec.model} has no version {ref} (versions: "
                f"{listed})"
            )
    resolved = spec.with_versions(mapping) if mapping else spec
    # where the followed alias points now: the deployment follows it from here on
    moved_from = model.aliases.get(spec.alias) if spec.alias is not None else None
    if spec.alias is not None and moved_from is None and require_alias:
        aliases = ", ".join(sorted(model.aliases)) or "none"
        raise InvalidInputError(
            f"deployment spec: alias: model {spec.model} has no alias {spec.alias!r} (its "
            f"aliases: {aliases}); set it first (seaway models alias {spec.model} {spec.alias} "
            "VERSION) or correct the name"
        )
    if moved_from != resolved.alias_version:
        resolved = resolved.model_copy(update={"alias_version": moved_from})
    return resolved


def version_fields(spec: DeploymentSpec) -> list[tuple[str, int | str]]:
    """Each version the spec names, with its field's path."""
    found: list[tuple[str, int | str]] = [
        (f"routes[{i}].version", route.version) for i, route in enumerate(spec.routes)
    ]
    if spec.shadow is not None:
        found.append(("shadow.version", spec.shadow.version))
    if spec.rollout is not None:
        found.append(("rollout.version", spec.rollout.version))
    return found


def _parse(spec: SpecInput) -> tuple[DeploymentSpec, Path | None]:
    if isinstance(spec, DeploymentSpec):
        return spec, None
    if isinstance(spec, str | Path):
        return load_spec(spec), Path(spec).parent
    return parse_spec(spec), None


def _current(registry: Registry, name: str) -> Deployment | None:
    try:
        return registry.deployments.get(name)
    except NotFoundError:
        return None


def _same(stored: Mapping[str, Any], spec: DeploymentSpec) -> bool:
    try:
        return DeploymentSpec.from_json(stored).to_json() == spec.to_json()
    except InvalidInputError:  # a spec stored by another Seaway that this one cannot read
        return False


def _validation_gate(
    registry: Registry,
    spec: DeploymentSpec,
    current: Deployment | None,
    base: Path | None,
    trusted: bool,
) -> list[ValidationReport]:
    """Every version new to the deployment scored on the spec's holdout data; refuses with the
    figures of each one that misses a threshold."""
    gate = spec.validation
    if gate is None:
        return []
    used = set(current.versions) if current is not None else set()
    data = gate.data
    if base is not None and "://" not in data and not Path(data).is_absolute():
        data = str(base / data)
    reports = [
        validate(
            registry,
            ModelRef(name=spec.model, version=version),
            data,
            target=gate.target,
            minimum=gate.min,
            maximum=gate.max,
            trusted=trusted,
        )
        for version in sorted(int(v) for v in spec.versions() if int(v) not in used)
    ]
    failed = [report.message() for report in reports if not report.passed]
    if failed:
        raise ValidationFailedError(f"deployment {spec.name} not applied: " + " | ".join(failed))
    return reports


def _superseded(
    state: Mapping[str, Any], revision: Revision, message: str, at: float
) -> Decision | None:
    """The decision that records a running rollout ended by a new revision (None when it had
    ended already, or its state cannot be read)."""
    try:
        old = RolloutState.from_json(state)
    except InvalidInputError:
        return None
    if old.terminal:
        return None
    reason = f"superseded by revision {revision.revision} ({message}) at step {old.step + 1}"
    return Decision(RolloutAction.ABORT, old.step, 0.0, reason, (), at, {})
