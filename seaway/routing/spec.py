"""A deployment spec: what a user writes in ``deploy.yaml`` and ``seaway deploy apply`` reads.

One named endpoint whose traffic is split among versions of one registered model::

    name: fraud
    model: fraud
    routes:
      - {version: 3, weight: 90}
      - {version: 4, weight: 10}

plus optional sections: ``ab`` (sticky assignment and outcome statistics), ``shadow`` (a copy
of the traffic to a version that never answers), ``rollout`` (progressive steps with gates),
``validation`` (a held-out data set every new version must pass at apply), ``alias`` with
``on_alias_change``. Every rule that involves more than one field is checked here, so a spec
that parses is one the server can serve; :func:`parse_spec` turns pydantic's report into one
:class:`~seaway.errors.InvalidInputError` naming each field by its path (``routes[1].weight``).
The spec is stored in the registry as the JSON of :meth:`DeploymentSpec.to_json`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError, model_validator

from seaway.errors import InvalidInputError
from seaway.routing.rules import (
    FieldPath,
    FieldProblem,
    alias_name,
    describe,
    format_path,
    model_name,
    number_text,
    parse_duration,
)
from seaway.routing.sections import (
    ABTest,
    Gates,
    Rollout,
    RolloutTemplate,
    Route,
    Shadow,
    SpecModel,
    Step,
    StickyKey,
    Strategy,
    Validation,
)
from seaway.routing.spec_yaml import read_yaml

__all__ = [
    "ABTest",
    "DeploymentSpec",
    "Gates",
    "Rollout",
    "RolloutTemplate",
    "Route",
    "Shadow",
    "Step",
    "StickyKey",
    "Strategy",
    "Validation",
    "load_spec",
    "parse_duration",
    "parse_spec",
]

#: weights may miss 100 by this much (0.1 + 0.2 + ... written as decimals)
WEIGHT_TOLERANCE = 1e-6

Name = Annotated[str, BeforeValidator(model_name)]
Alias = Annotated[str, BeforeValidator(alias_name)]


class DeploymentSpec(SpecModel):
    name: Name
    model: Name
    #: the strategy given, or (when not given) the one the sections imply
    strategy: Strategy = Strategy.DIRECT
    routes: tuple[Route, ...]
    ab: ABTest | None = None
    shadow: Shadow | None = None
    rollout: Rollout | None = None
    validation: Validation | None = None
    #: the alias this deployment follows
    alias: Alias | None = None
    #: what moving ``alias`` does: switch all traffic, or start a canary rollout (filled to
    #: "switch" when an alias is given)
    on_alias_change: Literal["switch", "canary"] | None = None
    #: steps and gates of the rollout ``on_alias_change: canary`` starts
    rollout_template: RolloutTemplate | None = None
    #: kept by Seaway: the version ``alias`` pointed at when this revision was made. The
    #: deployment follows the alias when it *moves* from it, so a rollback (by a gate or a
    #: person) away from where the alias points stays until the alias moves again.
    alias_version: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _one_route_takes_all(cls, data: Any) -> Any:
        # `routes: [{version: 3}]`: one route needs no weight
        if isinstance(data, Mapping):
            routes = data.get("routes")
            if isinstance(routes, list | tuple) and len(routes) == 1:
                only = routes[0]
                if isinstance(only, Mapping) and "weight" not in only:
                    return {**data, "routes": [{**only, "weight": 100}]}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentSpec:
        _check_routes(self.routes)
        if "strategy" not in self.model_fields_set:
            self.__dict__["strategy"] = _infer_strategy(self)
        _check_strategy(self)
        _check_versions(self)
        if self.on_alias_change is not None and self.alias is None:
            raise FieldProblem(
                ("on_alias_change",), "needs alias: the alias whose moves the deployment follows"
            )
        if self.alias is not None and self.on_alias_change is None:
            self.__dict__["on_alias_change"] = "switch"
        if self.alias_version is not None and self.alias is None:
            raise FieldProblem(("alias_version",), "goes with alias; remove it")
        if self.rollout_template is not None and self.on_alias_change != "canary":
            raise FieldProblem(
                ("rollout_template",),
                "is what on_alias_change: canary rolls out with; set that, or remove this section",
            )
        return self

    def versions(self) -> set[int | str]:
        """Every version the spec names: routes, shadow and rollout candidate."""
        found: set[int | str] = {route.version for route in self.routes}
        if self.shadow is not None:
            found.add(self.shadow.version)
        if self.rollout is not None:
            found.add(self.rollout.version)
        return found

    def with_versions(self, mapping: Mapping[str, int]) -> DeploymentSpec:
        """The spec with each alias replaced by the version number ``mapping`` gives it."""
        doc = self.to_json()
        places: list[tuple[FieldPath, dict[str, Any]]] = [
            (("routes", i), route) for i, route in enumerate(doc["routes"])
        ]
        places += [((key,), doc[key]) for key in ("shadow", "rollout") if key in doc]
        for path, section in places:
            ref = section["version"]
            if isinstance(ref, str):
                if ref not in mapping:
                    raise InvalidInputError(
                        f"deployment spec: {format_path((*path, 'version'))}: no version is "
                        f"known for alias {ref!r}; set the alias or name a version number"
                    )
                section["version"] = mapping[ref]
        return parse_spec(doc)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> DeploymentSpec:
        return parse_spec(doc)


def parse_spec(doc: Mapping[str, Any], *, source: str | None = None) -> DeploymentSpec:
    """Check a spec; every problem is named by its field path in one InvalidInputError."""
    where = f"deployment spec {source}" if source else "deployment spec"
    if not isinstance(doc, Mapping):
        raise InvalidInputError(
            f"{where} must be a mapping with name, model and routes (got {type(doc).__name__})"
        )
    try:
        return DeploymentSpec.model_validate(dict(doc))
    except ValidationError as exc:
        problems = [describe(error, DeploymentSpec) for error in exc.errors()]
        shown = problems[:6]
        if len(problems) > len(shown):
            shown.append(f"and {len(problems) - len(shown)} more")
        raise InvalidInputError(f"{where}: " + "; ".join(shown)) from None


def load_spec(path: str | Path) -> DeploymentSpec:
    """Read a YAML (or JSON) spec file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInputError(
            f"cannot read deployment spec {file}: {exc.strerror or exc}"
        ) from None
    return parse_spec(read_yaml(text, f"deployment spec {file}"), source=str(file))


# -- the rules across fields ---------------------------------------------------------------------


def _check_routes(routes: tuple[Route, ...]) -> None:
    if not routes:
        raise FieldProblem(("routes",), "give at least one route, e.g. [{version: 3, weight: 100}]")
    seen: dict[int | str, int] = {}
    for i, route in enumerate(routes):
        if route.version in seen:
            raise FieldProblem(
                ("routes", i, "version"),
                f"version {route.version} is already routed by routes[{seen[route.version]}]; "
                "give each version one route",
            )
        seen[route.version] = i
    total = sum(route.weight for route in routes)
    if abs(total - 100) > WEIGHT_TOLERANCE:
        raise FieldProblem(
            ("routes", len(routes) - 1, "weight"),
            f"weights must sum to 100 (they sum to {number_text(total)})",
        )


def _infer_strategy(spec: DeploymentSpec) -> Strategy:
    if spec.rollout is not None:
        return Strategy.ROLLOUT
    if spec.ab is not None:
        return Strategy.AB
    if len(spec.routes) > 1:
        return Strategy.CANARY
    return Strategy.SHADOW if spec.shadow is not None else Strategy.DIRECT


def _check_strategy(spec: DeploymentSpec) -> None:
    strategy, routes = spec.strategy, spec.routes
    for section, owner in (("rollout", Strategy.ROLLOUT), ("ab", Strategy.AB)):
        if getattr(spec, section) is not None and strategy != owner:
            raise FieldProblem(
                (section,), f"goes with strategy: {owner}, not {strategy}; change one of them"
            )
    if strategy in (Strategy.ROLLOUT, Strategy.AB, Strategy.SHADOW):
        section = "ab" if strategy == Strategy.AB else str(strategy)
        if getattr(spec, section) is None:
            article = "an" if section == "ab" else "a"
            raise FieldProblem(("strategy",), f"{strategy} needs {article} '{section}' section")
    if strategy == Strategy.DIRECT and spec.shadow is not None:
        raise FieldProblem(("strategy",), "direct has no shadow; use strategy: shadow")
    if strategy == Strategy.CANARY and len(routes) < 2:
        raise FieldProblem(
            ("routes",), "a canary splits traffic: give at least 2 routes (or strategy: direct)"
        )
    if strategy == Strategy.AB:
        if len(routes) < 2:
            raise FieldProblem(("routes",), "an A/B test needs at least 2 routes (its arms)")
        for i, route in enumerate(routes):
            if route.weight == 0:
                raise FieldProblem(
                    ("routes", i, "weight"), "an A/B test arm needs a weight above 0"
                )
    if strategy == Strategy.ROLLOUT and len(routes) != 1:
        raise FieldProblem(
            ("routes",),
            f"a rollout starts from exactly one route at weight 100, the stable version (got "
            f"{len(routes)}); the rollout moves traffic to rollout.version step by step",
        )
    if strategy in (Strategy.DIRECT, Strategy.SHADOW, Strategy.BLUE_GREEN) and len(routes) != 1:
        raise FieldProblem(
            ("routes",),
            f"{strategy} takes exactly one route at weight 100 (got {len(routes)}); for a split "
            "use strategy: canary",
        )


def _check_versions(spec: DeploymentSpec) -> None:
    routed = {route.version for route in spec.routes}
    if spec.rollout is not None and spec.rollout.version in routed:
        raise FieldProblem(
            ("rollout", "version"),
            f"{spec.rollout.version} is the stable version (routes[0]); a rollout moves traffic "
            "to another version",
        )
    if spec.shadow is not None:
        shadow = spec.shadow.version
        if shadow in routed:
            raise FieldProblem(
                ("shadow", "version"),
                f"{shadow} is also routed; a shadow must be a version that does not answer",
            )
        if spec.rollout is not None and shadow == spec.rollout.version:
            raise FieldProblem(
                ("shadow", "version"),
                f"{shadow} is the rollout's candidate, which answers; shadow another version",
            )
