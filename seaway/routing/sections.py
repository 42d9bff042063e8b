"""The sections of a deployment spec (routes, ``ab``, ``shadow``, ``rollout`` and its steps and
gates, ``validation``), each checking its own fields; :mod:`seaway.routing.spec` puts them
together and checks the rules that span sections.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator

from seaway.routing.rules import (
    HIGHER_IS_BETTER,
    LOWER_IS_BETTER,
    UNIT_INTERVAL,
    FieldProblem,
    header_name,
    number_text,
    parse_duration,
    version_ref,
)

VersionRef = Annotated[int | str, BeforeValidator(version_ref)]
Seconds = Annotated[float, BeforeValidator(parse_duration)]


class Strategy(StrEnum):
    DIRECT = "direct"
    CANARY = "canary"
    AB = "ab"
    SHADOW = "shadow"
    BLUE_GREEN = "blue-green"
    ROLLOUT = "rollout"


class SpecModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Route(SpecModel):
    #: a version number, or an alias resolved to one at apply
    version: VersionRef
    #: percent of the traffic, 0 to 100; a 0 arm is kept (its version stays loaded) but never picked
    weight: Annotated[float, Strict()] = Field(ge=0, le=100)


class StickyKey(SpecModel):
    """What keeps a caller on one arm: a request header, or a named input field."""

    header: Annotated[str | None, BeforeValidator(header_name)] = None
    input: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _exactly_one(self) -> StickyKey:
        if (self.header is None) == (self.input is None):
            raise FieldProblem(
                (),
                "give exactly one of header: (a request header such as X-User-ID) or input: "
                "(the name of an input field)",
            )
        return self


class ABTest(SpecModel):
    key: StickyKey
    #: the sequential test's level: the chance of a false "significant" however often one looks
    alpha: float = Field(default=0.05, gt=0, lt=0.5)
    #: outcomes per arm before any verdict
    min_samples: int = Field(default=100, ge=10)


class Shadow(SpecModel):
    version: VersionRef
    #: share of the requests copied to the shadow
    fraction: Annotated[float, Strict()] = Field(default=1.0, gt=0, le=1)
    #: copies in flight at most; beyond, copies are dropped and counted, never queued
    #: copies running at once before more are dropped: bounded, so a shadow never queues
    max_pending: int = Field(default=64, ge=1, le=10_000)


class Step(SpecModel):
    weight: Annotated[float, Strict()] = Field(gt=0, le=100)
    #: seconds at least at this step ("30s", "5m", "1h", "2d" or a number of seconds)
    min_duration: Seconds = 0.0
    #: requests to the candidate at least at this step
    min_requests: int = Field(default=0, ge=0)


class Gates(SpecModel):
    """Candidate compared with stable over each step's window; None: not checked."""

    #: candidate error rate minus stable error rate (absolute)
    max_error_rate_increase: float | None = Field(default=None, ge=0, le=1)
    #: candidate p99 latency over stable p99 latency
    max_p99_ratio: float | None = Field(default=None, gt=0)
    #: the candidate's p99 latency budget, milliseconds
    max_p99_ms: float | None = Field(default=None, gt=0)
    #: prediction divergence (seaway.routing.stats.divergence)
    max_divergence: float | None = Field(default=None, ge=0)
    #: the candidate's input drift score against its training profile
    max_drift: float | None = Field(default=None, ge=0)
    #: stable accuracy minus candidate accuracy (labels from feedback)
    max_accuracy_drop: float | None = Field(default=None, ge=0, le=1)
    #: requests per arm per step below which every gate is "insufficient data"
    min_samples: int = Field(default=100, ge=1)


def _default_steps() -> tuple[Step, ...]:
    five_minutes = {"min_duration": 300.0, "min_requests": 200}
    return (
        Step(weight=5, **five_minutes),
        Step(weight=25, **five_minutes),
        Step(weight=50, **five_minutes),
        Step(weight=100),
    )


def _default_gates() -> Gates:
    # a rollout written without gates still rolls back a version that errors or slows down
    return Gates(max_error_rate_increase=0.01, max_p99_ratio=1.5)


class RolloutTemplate(SpecModel):
    """Steps and gates; a ``rollout`` adds the version, ``on_alias_change: canary`` takes these."""

    steps: tuple[Step, ...] = Field(default_factory=_default_steps)
    gates: Gates = Field(default_factory=_default_gates)

    @model_validator(mode="after")
    def _steps_climb_to_100(self) -> RolloutTemplate:
        if not self.steps:
            raise FieldProblem(("steps",), "give at least one step; the last at weight 100")
        for i in range(1, len(self.steps)):
            before, now = self.steps[i - 1].weight, self.steps[i].weight
            if now <= before:
                raise FieldProblem(
                    ("steps", i, "weight"),
                    f"step weights must increase ({number_text(now)} comes after {number_text(before)})",
                )
        last = len(self.steps) - 1
        if self.steps[last].weight != 100:
            raise FieldProblem(
                ("steps", last, "weight"),
                f"the last step must be 100, where the new version takes all traffic (it is "
                f"{number_text(self.steps[last].weight)}); add a step {{weight: 100}}",
            )
        return self


class Rollout(RolloutTemplate):
    #: the candidate; the spec's one route is the stable version it replaces
    version: VersionRef


class Validation(SpecModel):
    """A pre-release gate: every version new to the deployment is scored on ``data`` at apply."""

    #: a path or fsspec URL (.parquet, .csv, .jsonl)
    data: str = Field(min_length=1)
    #: the label column; needed by every metric except latency
    target: str | None = Field(default=None, min_length=1)
    min: dict[str, float] = Field(default_factory=dict)
    max: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _thresholds(self) -> Validation:
        if not self.min and not self.max:
            raise FieldProblem(
                (), "give at least one threshold, e.g. min: {accuracy: 0.9} or max: {p99_ms: 20}"
            )
        known = ", ".join(sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER))
        for side, thresholds, wrong, other in (
            ("min", self.min, LOWER_IS_BETTER, "max"),
            ("max", self.max, HIGHER_IS_BETTER, "min"),
        ):
            for metric, value in thresholds.items():
                where = (side, metric)
                if metric not in HIGHER_IS_BETTER | LOWER_IS_BETTER:
                    raise FieldProblem(where, f"unknown metric; use one of {known}")
                if metric in wrong:
                    better = "lower" if side == "min" else "higher"
                    raise FieldProblem(
                        where, f"{metric} is better {better}; put its threshold under {other}:"
                    )
                if metric in UNIT_INTERVAL and not 0 <= value <= 1:
                    raise FieldProblem(where, f"must be from 0 to 1 (got {number_text(value)})")
                if metric.endswith("_ms") and value <= 0:
                    raise FieldProblem(where, f"must be above 0 ms (got {number_text(value)})")
                if metric in LOWER_IS_BETTER and value < 0:
                    raise FieldProblem(where, f"must be 0 or more (got {number_text(value)})")
                if metric == "r2" and value > 1:
                    raise FieldProblem(where, f"r2 is at most 1 (got {number_text(value)})")
                if not metric.endswith("_ms") and self.target is None:
                    raise FieldProblem(
                        ("target",), f"{metric} needs the label column; add target: COLUMN"
                    )
        return self
