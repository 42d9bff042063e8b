"""Deployment specs: what parses, what is refused, and that each refusal names the field by its
path and says what to write."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from seaway.errors import InvalidInputError
from seaway.routing.spec import (
    DeploymentSpec,
    Strategy,
    load_spec,
    parse_duration,
    parse_spec,
)

BASE: dict[str, Any] = {"name": "fraud", "model": "fraud"}


def spec(**fields: Any) -> DeploymentSpec:
    return parse_spec({**BASE, **fields})


def refused(**fields: Any) -> str:
    with pytest.raises(InvalidInputError) as caught:
        parse_spec({**BASE, **fields})
    message = str(caught.value)
    assert message.startswith("deployment spec: ")
    assert "Value error" not in message
    assert "Input should" not in message
    return message


def two(a: Any = 3, b: Any = 4, wa: float = 90, wb: float = 10) -> list[dict[str, Any]]:
    return [{"version": a, "weight": wa}, {"version": b, "weight": wb}]


ROLLOUT = {
    "version": 4,
    "steps": [
        {"weight": 5, "min_duration": "5m", "min_requests": 200},
        {"weight": 25, "min_duration": "1h", "min_requests": 200},
        {"weight": 100, "min_duration": 0, "min_requests": 0},
    ],
    "gates": {"max_error_rate_increase": 0.01, "max_p99_ratio": 1.5, "min_samples": 50},
}


# -- what parses ---------------------------------------------------------------------------------


def test_the_documented_example_parses(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text(
        """
name: fraud
model: fraud
routes:
  - {version: 3, weight: 90}
  - {version: 4, weight: 10}
shadow: {version: 5, fraction: 0.5, max_pending: 8}
validation:
  data: holdout.parquet
  target: label
  min: {accuracy: 0.9}
  max: {p99_ms: 20}
"""
    )
    parsed = load_spec(path)
    assert parsed.strategy == Strategy.CANARY
    assert [(r.version, r.weight) for r in parsed.routes] == [(3, 90), (4, 10)]
    assert parsed.shadow is not None and parsed.shadow.fraction == 0.5
    assert parsed.validation is not None and parsed.validation.min == {"accuracy": 0.9}
    assert parsed.versions() == {3, 4, 5}


@pytest.mark.parametrize(
    ("fields", "strategy"),
    [
        ({"routes": [{"version": 3}]}, Strategy.DIRECT),
        ({"routes": two()}, Strategy.CANARY),
        ({"routes": [{"version": 3}], "shadow": {"version": 5}}, Strategy.SHADOW),
        ({"routes": two(), "shadow": {"version": 5}}, Strategy.CANARY),
        ({"routes": two(wa=50, wb=50), "ab": {"key": {"header": "X-User-ID"}}}, Strategy.AB),
        ({"routes": [{"version": 3}], "rollout": {"version": 4}}, Strategy.ROLLOUT),
    ],
)
def test_the_strategy_is_inferred_from_the_sections(
    fields: dict[str, Any], strategy: Strategy
) -> None:
    assert spec(**fields).strategy == strategy


def test_blue_green_is_declared_and_kept() -> None:
    parsed = spec(strategy="blue-green", routes=[{"version": 4, "weight": 100}])
    assert parsed.strategy == Strategy.BLUE_GREEN
    assert parsed.to_json()["strategy"] == "blue-green"


def test_a_single_route_needs_no_weight_and_takes_all_traffic() -> None:
    assert spec(routes=[{"version": 3}]).routes[0].weight == 100


def test_weights_written_as_decimals_may_miss_100_by_rounding() -> None:
    routes = [{"version": v, "weight": 100 / 3} for v in (1, 2, 3)]
    assert len(spec(routes=routes).routes) == 3


def test_a_zero_weight_canary_arm_is_allowed() -> None:
    assert spec(routes=two(wa=100, wb=0)).routes[1].weight == 0


def test_versions_may_be_aliases_and_numbers_written_as_text_are_numbers() -> None:
    parsed = spec(routes=two(a="production", b="4"))
    assert parsed.versions() == {"production", 4}


def test_a_rollout_gets_default_steps_and_gates_when_it_names_none() -> None:
    rollout = spec(routes=[{"version": 3}], rollout={"version": 4}).rollout
    assert rollout is not None
    assert [step.weight for step in rollout.steps] == [5, 25, 50, 100]
    assert rollout.gates.max_error_rate_increase is not None
    assert rollout.gates.max_p99_ratio is not None


def test_rollout_durations_are_parsed_to_seconds() -> None:
    rollout = spec(routes=[{"version": 3}], rollout=ROLLOUT).rollout
    assert rollout is not None
    assert [step.min_duration for step in rollout.steps] == [300, 3600, 0]
    assert rollout.gates.min_samples == 50
    assert rollout.gates.max_p99_ms is None


def test_an_alias_defaults_to_switching_and_canary_takes_a_template() -> None:
    assert spec(routes=[{"version": 3}], alias="production").on_alias_change == "switch"
    parsed = spec(
        routes=[{"version": 3}],
        alias="production",
        on_alias_change="canary",
        rollout_template={"steps": [{"weight": 50}, {"weight": 100}]},
    )
    assert parsed.rollout_template is not None
    assert [s.weight for s in parsed.rollout_template.steps] == [50, 100]


# -- JSON and aliases ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"routes": two(), "shadow": {"version": 5}},
        {"routes": two(wa=50, wb=50), "ab": {"key": {"input": "user_id"}, "alpha": 0.01}},
        {"routes": [{"version": 3}], "rollout": ROLLOUT},
        {"routes": [{"version": "stable"}], "alias": "production", "on_alias_change": "canary"},
        {
            "strategy": "blue-green",
            "routes": [{"version": 4}],
            "validation": {"data": "s3://b/holdout.csv", "max": {"p99_ms": 20}},
        },
    ],
)
def test_json_round_trip(fields: dict[str, Any]) -> None:
    parsed = spec(**fields)
    doc = json.loads(json.dumps(parsed.to_json()))
    assert DeploymentSpec.from_json(doc) == parsed
    assert DeploymentSpec.from_json(doc).to_json() == doc
    assert "ab" not in doc or "shadow" not in doc  # None sections are left out


def test_with_versions_replaces_aliases_everywhere() -> None:
    parsed = spec(routes=[{"version": "production"}], rollout={"version": "candidate"})
    resolved = parsed.with_versions({"production": 3, "candidate": 4})
    assert resolved.versions() == {3, 4}
    assert resolved.routes[0].version == 3
    assert resolved.rollout is not None and resolved.rollout.version == 4
    assert parsed.versions() == {"production", "candidate"}  # the original is unchanged


def test_with_versions_names_an_alias_it_cannot_resolve() -> None:
    parsed = spec(routes=[{"version": 3}], shadow={"version": "next"})
    with pytest.raises(InvalidInputError, match=r"shadow\.version: .*'next'"):
        parsed.with_versions({})


def test_with_versions_refuses_aliases_that_resolve_to_the_routed_version() -> None:
    parsed = spec(routes=[{"version": "production"}], shadow={"version": "shadow"})
    with pytest.raises(InvalidInputError, match=r"shadow\.version: 3 is also routed"):
        parsed.with_versions({"production": 3, "shadow": 3})


# -- refusals ------------------------------------------------------------------------------------


def test_weights_not_summing_to_100_name_the_field_and_the_sum() -> None:
    message = refused(routes=two(wa=90, wb=5))
    assert "routes[1].weight: weights must sum to 100 (they sum to 95)" in message


def test_duplicate_versions_are_refused() -> None:
    message = refused(routes=two(a=3, b=3, wa=50, wb=50))
    assert "routes[1].version: version 3 is already routed by routes[0]" in message


@pytest.mark.parametrize("weight", [-1, 101, "ten", "50", True, float("nan"), float("inf")])
def test_a_weight_out_of_range_is_refused(weight: Any) -> None:
    assert "routes[1].weight: must" in refused(routes=two(wb=weight))


def test_a_shadow_queue_is_bounded() -> None:
    message = refused(routes=[{"version": 3}], shadow={"version": 5, "max_pending": 10**18})
    assert "shadow.max_pending: must be less than or equal to 10000" in message
    assert spec(routes=[{"version": 3}], shadow={"version": 5, "max_pending": 10_000})


def test_no_routes_is_refused() -> None:
    assert "routes: give at least one route" in refused(routes=[])
    assert "routes: missing; add it" in refused()


@pytest.mark.parametrize("version", [0, -2, True, 1.5, "not an alias!", "latest", None])
def test_a_bad_version_is_refused(version: Any) -> None:
    assert "routes[0].version: " in refused(routes=[{"version": version}])


def test_a_shadow_equal_to_a_routed_version_is_refused() -> None:
    message = refused(routes=two(), shadow={"version": 4})
    assert (
        "shadow.version: 4 is also routed; a shadow must be a version that does not answer"
        in message
    )


def test_a_shadow_equal_to_the_rollout_candidate_is_refused() -> None:
    message = refused(routes=[{"version": 3}], shadow={"version": 4}, rollout={"version": 4})
    assert "shadow.version: 4 is the rollout's candidate" in message


@pytest.mark.parametrize(
    ("shadow", "field"),
    [
        ({"fraction": 0}, "fraction"),
        ({"fraction": 1.5}, "fraction"),
        ({"max_pending": 0}, "max_pending"),
    ],
)
def test_shadow_limits(shadow: dict[str, Any], field: str) -> None:
    message = refused(routes=[{"version": 3}], shadow={"version": 5, **shadow})
    assert f"shadow.{field}: must be" in message


def test_a_rollout_of_the_stable_version_is_refused() -> None:
    message = refused(routes=[{"version": 3}], rollout={"version": 3})
    assert "rollout.version: 3 is the stable version" in message


def test_a_rollout_starts_from_exactly_one_route() -> None:
    message = refused(routes=two(), rollout={"version": 5})
    assert "routes: a rollout starts from exactly one route at weight 100" in message


def test_rollout_steps_must_increase() -> None:
    steps = [{"weight": 25}, {"weight": 25}, {"weight": 100}]
    message = refused(routes=[{"version": 3}], rollout={"version": 4, "steps": steps})
    assert "rollout.steps[1].weight: step weights must increase (25 comes after 25)" in message


def test_the_last_rollout_step_must_be_100() -> None:
    steps = [{"weight": 5}, {"weight": 50}]
    message = refused(routes=[{"version": 3}], rollout={"version": 4, "steps": steps})
    assert "rollout.steps[1].weight: the last step must be 100" in message
    assert "rollout.steps: give at least one step" in refused(
        routes=[{"version": 3}], rollout={"version": 4, "steps": []}
    )


@pytest.mark.parametrize(
    "step", [{"weight": 0}, {"weight": 120}, {"weight": 100, "min_requests": -1}]
)
def test_step_fields_in_range(step: dict[str, Any]) -> None:
    message = refused(routes=[{"version": 3}], rollout={"version": 4, "steps": [step]})
    assert "rollout.steps[0]." in message


@pytest.mark.parametrize("duration", ["5x", "five minutes", "-5m", -1, True, "1y", "999999999d"])
def test_a_bad_duration_names_the_step(duration: Any) -> None:
    steps = [{"weight": 100, "min_duration": duration}]
    message = refused(routes=[{"version": 3}], rollout={"version": 4, "steps": steps})
    assert "rollout.steps[0].min_duration: " in message
    assert "30s, 5m, 1h, 2d" in message


@pytest.mark.parametrize(
    "gate",
    [
        "max_error_rate_increase",
        "max_p99_ratio",
        "max_p99_ms",
        "max_divergence",
        "max_drift",
        "max_accuracy_drop",
        "min_samples",
    ],
)
def test_negative_thresholds_are_refused(gate: str) -> None:
    message = refused(routes=[{"version": 3}], rollout={"version": 4, "gates": {gate: -1}})
    assert f"rollout.gates.{gate}: must be greater than" in message
    assert "(got -1)" in message


def test_unknown_keys_are_named_with_a_suggestion() -> None:
    message = refused(routes=[{"version": 3, "wieght": 100}])
    assert "routes[0].wieght: unknown key; did you mean 'weight'?" in message
    message = refused(routes=[{"version": 3}], shadw={"version": 5})
    assert "shadw: unknown key; did you mean 'shadow'?" in message
    message = refused(routes=[{"version": 3}], rollout={"version": 4, "gates": {"max_p99": 2}})
    assert "rollout.gates.max_p99: unknown key" in message


def test_a_section_that_is_not_a_mapping_lists_its_keys() -> None:
    assert "ab: must be a mapping (keys: key, alpha, min_samples)" in refused(
        routes=two(), ab="yes"
    )
    assert "routes: must be a list" in refused(routes=3)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"strategy": "ab", "routes": two()}, "strategy: ab needs an 'ab' section"),
        (
            {"strategy": "rollout", "routes": [{"version": 3}]},
            "strategy: rollout needs a 'rollout'",
        ),
        ({"strategy": "shadow", "routes": [{"version": 3}]}, "strategy: shadow needs a 'shadow'"),
        ({"strategy": "canary", "routes": [{"version": 3}]}, "routes: a canary splits traffic"),
        ({"strategy": "direct", "routes": two()}, "routes: direct takes exactly one route"),
        ({"strategy": "blue-green", "routes": two()}, "routes: blue-green takes exactly one route"),
        (
            {"strategy": "direct", "routes": [{"version": 3}], "shadow": {"version": 5}},
            "strategy: direct has no shadow",
        ),
        (
            {"strategy": "canary", "routes": two(), "rollout": {"version": 5}},
            "rollout: goes with strategy: rollout, not canary",
        ),
        (
            {"strategy": "canary", "routes": two(), "ab": {"key": {"header": "X-User-ID"}}},
            "ab: goes with strategy: ab, not canary",
        ),
        (
            {
                "routes": [{"version": 3}],
                "rollout": {"version": 4},
                "ab": {"key": {"header": "X-User-ID"}},
            },
            "ab: goes with strategy: ab, not rollout",
        ),
        ({"strategy": "fancy", "routes": [{"version": 3}]}, "strategy: must be 'direct', 'canary'"),
    ],
)
def test_a_strategy_inconsistent_with_the_sections_is_refused(
    fields: dict[str, Any], expected: str
) -> None:
    assert expected in refused(**fields)


def test_an_ab_test_needs_two_arms_with_traffic() -> None:
    key = {"key": {"header": "X-User-ID"}}
    assert "routes: an A/B test needs at least 2 routes" in refused(routes=[{"version": 3}], ab=key)
    assert "routes[1].weight: an A/B test arm needs a weight above 0" in refused(
        routes=two(wa=100, wb=0), ab=key
    )


@pytest.mark.parametrize("key", [{}, {"header": "X-User-ID", "input": "user"}, {"input": None}])
def test_an_ab_key_is_exactly_one_of_header_or_input(key: dict[str, Any]) -> None:
    message = refused(routes=two(wa=50, wb=50), ab={"key": key})
    assert "ab.key: give exactly one of header: " in message


@pytest.mark.parametrize(
    ("ab", "field"),
    [
        ({"key": {"header": "X User"}}, "ab.key.header: 'X User' is not an HTTP header name"),
        ({"key": {"input": ""}}, "ab.key.input: "),
        ({"key": {"header": "X-User-ID"}, "alpha": 0}, "ab.alpha: must be greater than 0"),
        ({"key": {"header": "X-User-ID"}, "alpha": 0.5}, "ab.alpha: must be less than 0.5"),
        ({"key": {"header": "X-User-ID"}, "min_samples": 5}, "ab.min_samples: must be greater"),
        ({"alpha": 0.05}, "ab.key: missing; add it"),
    ],
)
def test_ab_fields(ab: dict[str, Any], field: str) -> None:
    assert field in refused(routes=two(wa=50, wb=50), ab=ab)


def test_on_alias_change_needs_an_alias() -> None:
    message = refused(routes=[{"version": 3}], on_alias_change="canary")
    assert "on_alias_change: needs alias" in message
    message = refused(routes=[{"version": 3}], alias="production", on_alias_change="later")
    assert "on_alias_change: must be 'switch' or 'canary'" in message
    message = refused(routes=[{"version": 3}], alias="production", rollout_template={})
    assert "rollout_template: is what on_alias_change: canary rolls out with" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"name": "bad name"}, "name: 'bad name' is not a valid name"),
        ({"name": "-fraud"}, "name: '-fraud' is not a valid name"),
        ({"name": "x" * 129}, "name: "),
        ({"model": 5}, "model: 5 is not a valid name"),
        ({"alias": "9lives"}, "alias: '9lives' is not a valid alias"),
        ({"alias": "latest"}, "'latest' is reserved"),
    ],
)
def test_names_follow_the_registry_rules(fields: dict[str, Any], expected: str) -> None:
    assert expected in refused(routes=[{"version": 3}], **fields)


@pytest.mark.parametrize(
    ("validation", "expected"),
    [
        (
            {"data": "h.parquet", "target": "y", "min": {"acuracy": 0.9}},
            "validation.min.acuracy: unknown metric; use one of accuracy",
        ),
        ({"data": "h.parquet", "max": {"p90_ms": 5}}, "validation.max.p90_ms: unknown metric"),
        (
            {"data": "h.parquet", "target": "y", "min": {"rmse": 2}},
            "validation.min.rmse: rmse is better lower; put its threshold under max:",
        ),
        (
            {"data": "h.parquet", "target": "y", "max": {"f1": 0.5}},
            "validation.max.f1: f1 is better higher; put its threshold under min:",
        ),
        (
            {"data": "h.parquet", "min": {"accuracy": 0.9}},
            "validation.target: accuracy needs the label column",
        ),
        (
            {"data": "h.parquet", "target": "y", "min": {"accuracy": 1.5}},
            "validation.min.accuracy: must be from 0 to 1",
        ),
        ({"data": "h.parquet", "max": {"p99_ms": 0}}, "validation.max.p99_ms: must be above 0 ms"),
        (
            {"data": "h.parquet", "target": "y", "max": {"mae": -1}},
            "validation.max.mae: must be 0 or more",
        ),
        ({"data": "h.parquet"}, "validation: give at least one threshold"),
        ({"data": "", "max": {"p99_ms": 5}}, "validation.data: "),
        ({"max": {"p99_ms": 5}}, "validation.data: missing"),
    ],
)
def test_validation_thresholds(validation: dict[str, Any], expected: str) -> None:
    assert expected in refused(routes=[{"version": 3}], validation=validation)


def test_every_validation_metric_is_accepted_on_its_side() -> None:
    higher = {
        "accuracy": 0.9,
        "precision": 0.8,
        "recall": 0.8,
        "f1": 0.8,
        "roc_auc": 0.9,
        "r2": 0.5,
    }
    lower = {"log_loss": 0.4, "mae": 1.0, "rmse": 2.0, "p50_ms": 5, "p99_ms": 20}
    parsed = spec(
        routes=[{"version": 3}],
        validation={"data": "h.parquet", "target": "y", "min": higher, "max": lower},
    )
    assert parsed.validation is not None
    assert parsed.validation.max == lower


def test_latency_thresholds_need_no_target() -> None:
    parsed = spec(routes=[{"version": 3}], validation={"data": "h.parquet", "max": {"p99_ms": 20}})
    assert parsed.validation is not None and parsed.validation.target is None


def test_several_problems_are_reported_together() -> None:
    message = refused(name="bad name", routes=[{"version": 3, "weight": "x"}], shadw={})
    assert "name: " in message
    assert "routes[0].weight: " in message
    assert "shadw: unknown key" in message


def test_a_spec_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(InvalidInputError, match="must be a mapping with name, model and routes"):
        parse_spec(["fraud"])  # type: ignore[arg-type]


# -- files ---------------------------------------------------------------------------------------


def test_load_spec_names_the_file_in_its_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(InvalidInputError, match="cannot read deployment spec .*nope.yaml"):
        load_spec(missing)
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [fraud\n")
    with pytest.raises(InvalidInputError, match="broken.yaml is not valid YAML"):
        load_spec(broken)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(InvalidInputError, match="empty.yaml must be a mapping"):
        load_spec(empty)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: fraud\nmodel: fraud\nroutes: [{version: 3, weight: 50}]\n")
    with pytest.raises(InvalidInputError, match=r"wrong.yaml: routes\[0\].weight: weights must"):
        load_spec(wrong)


#: nine levels of nine aliases: 9**8 values once expanded, from a few hundred bytes
ALIAS_BOMB = "".join(
    f"{x}: &{x} [{', '.join([f'*{p}' if p else '1'] * 9)}]\n"
    for p, x in zip(["", *"abcdefg"], "abcdefgh", strict=True)
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\nmodel: m\nroutes: " + "[" * 50_000 + "]" * 50_000, "nest"),
        ("name: x\nmodel: m\nroutes:\n" + "- " * 50_000 + "1\n", "nest"),
        ("name: x\nmodel: m\nroutes: [{version: " + "9" * 5000 + "}]", "digits"),
        (ALIAS_BOMB + "name: *h\nmodel: m\nroutes: [{version: 1}]\n", "more than 10,000 values"),
        ("name: x\nmodel: m\nroutes: &r [*r]\n", "more than 10,000 values"),
    ],
)
def test_a_spec_file_too_deep_too_big_or_expanding_is_refused_in_a_few_words(
    tmp_path: Path, text: str, message: str
) -> None:
    """Deep nesting and huge numbers made PyYAML raise RecursionError and ValueError (a
    traceback, a 500 over HTTP); aliases expanding to millions of values were quoted whole in
    the error (tens of megabytes, minutes)."""
    path = tmp_path / "deploy.yaml"
    path.write_text(text)
    with pytest.raises(InvalidInputError, match=message) as refused:
        load_spec(path)
    assert "deploy.yaml" in str(refused.value) and len(str(refused.value)) < 400


def test_without_libyaml_deep_nesting_is_refused_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("seaway.routing.spec_yaml._LOADER", yaml.SafeLoader)
    path = tmp_path / "deploy.yaml"
    path.write_text("name: x\nmodel: m\nroutes: " + "[" * 50_000 + "]" * 50_000)
    with pytest.raises(InvalidInputError, match="deploy.yaml is nested too deeply to read"):
        load_spec(path)


def test_a_spec_may_use_a_few_aliases(tmp_path: Path) -> None:
    path = tmp_path / "deploy.yaml"
    path.write_text("name: x\nmodel: m\nroutes: &r [{version: 1}]\nshadow: {version: 2}\n")
    assert load_spec(path).shadow is not None


# -- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h", 3600),
        ("2d", 172800),
        ("1.5h", 5400),
        (" 10M ", 600),
        ("90", 90),
        (0, 0),
        (12.5, 12.5),
        ("0", 0),
    ],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "5 minutes", "-1s", "1w", float("nan"), -3, None])
def test_bad_durations_say_what_to_write(text: Any) -> None:
    with pytest.raises(InvalidInputError, match="is not a duration; write seconds"):
        parse_duration(text)
