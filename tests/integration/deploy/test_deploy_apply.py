"""``seaway.deploy.apply`` (issue 12, items 3 and 6): every change is a new revision, an unchanged
spec makes none, an invalid spec is refused naming its field with the live deployment untouched,
the validation gate refuses a bad version with its figures, and a rollout starts with its revision.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from seaway.deploy.actor import local_actor
from seaway.deploy.apply import apply
from seaway.deploy.status import status
from seaway.errors import InvalidInputError, ValidationFailedError
from seaway.registry import Registry
from seaway.types import RolloutAction, RolloutPhase

CANARY: dict[str, Any] = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**CANARY, **changes}


def test_each_change_is_a_new_revision_and_an_unchanged_spec_makes_none(fraud: Registry) -> None:
    first = apply(fraud, CANARY, actor="user:alice")
    assert first.revision is not None and first.revision.revision == 1 and not first.unchanged
    assert first.revision.actor == "user:alice" and first.revision.versions == (1, 2)

    again = apply(fraud, CANARY, actor="user:bob")
    assert again.unchanged and again.revision is not None and again.revision.revision == 1
    assert "unchanged (revision 1)" in again.message()

    moved = apply(fraud, _with(routes=[{"version": 1, "weight": 50}, {"version": 2, "weight": 50}]))
    assert moved.revision is not None and moved.revision.revision == 2
    assert moved.revision.actor == local_actor()
    history = fraud.deployments.history("fraud-prod")
    assert [r.revision for r in history] == [2, 1]
    assert [r.spec["routes"][0]["weight"] for r in history] == [50, 90]
    assert status(fraud, "fraud-prod").split.arms == (("1", 50.0), ("2", 50.0))


def test_an_alias_is_stored_as_the_version_it_points_at(fraud: Registry) -> None:
    spec = _with(routes=[{"version": "production", "weight": 90}, {"version": 2, "weight": 10}])
    first = apply(fraud, spec)
    assert first.revision is not None and first.revision.spec["routes"][0]["version"] == 1
    assert apply(fraud, spec).unchanged  # the alias still points at 1

    fraud.set_alias("fraud", "production", 3)
    moved = apply(fraud, spec)
    assert moved.revision is not None and moved.revision.revision == 2
    assert moved.revision.versions == (2, 3)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (
            _with(routes=[{"version": 1, "weight": 90}, {"version": 9, "weight": 10}]),
            "routes[1].version: model fraud has no version 9 (versions: 1, 2, 3)",
        ),
        (
            _with(routes=[{"version": "prod", "weight": 90}, {"version": 2, "weight": 10}]),
            "routes[0].version: model fraud has no alias 'prod' (its aliases: production)",
        ),
        (
            _with(routes=[{"version": 1, "weight": 90}, {"version": 2, "weight": 5}]),
            "routes[1].weight: weights must sum to 100 (they sum to 95)",
        ),
        (
            _with(shadow={"version": 1}),
            "shadow.version: 1 is also routed; a shadow must be a version that does not answer",
        ),
        (
            _with(routes=[{"version": 1}], rollout={"version": 9}),
            "rollout.version: model fraud has no version 9",
        ),
        (_with(name="churn-prod", model="churn"), "deployment spec: model: no model named 'churn'"),
        (
            _with(validation={"data": "h.parquet", "target": "label", "min": {"accuracy": 1.5}}),
            "validation.min.accuracy: must be from 0 to 1",
        ),
        (_with(routes=[{"version": 1, "weight": 90}, {"version": 1, "weight": 10}]), "routes[1]"),
    ],
)
def test_an_invalid_spec_is_refused_naming_the_field_and_the_live_deployment_is_untouched(
    fraud: Registry, spec: dict[str, Any], expected: str
) -> None:
    apply(fraud, CANARY)
    before = fraud.deployments.get("fraud-prod")
    with pytest.raises(InvalidInputError) as caught:
        apply(fraud, spec)
    assert expected in str(caught.value)
    assert fraud.deployments.get("fraud-prod") == before
    assert len(fraud.deployments.history("fraud-prod")) == 1


def test_the_model_of_a_deployment_cannot_change(fraud: Registry, price: Path) -> None:
    apply(fraud, CANARY)
    with pytest.raises(InvalidInputError, match="serves model fraud, not price"):
        apply(fraud, _with(routes=[{"version": 1}], model="price"))


def _gated(holdout: Path, *versions: int) -> dict[str, Any]:
    routes = [{"version": v, "weight": 100 / len(versions)} for v in versions]
    gate = {"data": str(holdout), "target": "label", "min": {"accuracy": 0.9}}
    return _with(routes=routes, validation=gate)


def test_the_validation_gate_refuses_a_bad_version_with_its_figures(
    fraud: Registry, holdout: Path
) -> None:
    first = apply(fraud, _gated(holdout, 1))
    assert [r.uri for r in first.validation] == ["models:/fraud/1"]
    before = fraud.deployments.get("fraud-prod")

    with pytest.raises(ValidationFailedError) as caught:
        apply(fraud, _gated(holdout, 1, 3))
    message = str(caught.value)
    assert message.startswith("deployment fraud-prod not applied: models:/fraud/3 failed")
    assert "accuracy 0.5" in message and "is below the minimum 0.9" in message
    assert fraud.deployments.get("fraud-prod") == before

    good = apply(fraud, _gated(holdout, 1, 2))
    assert good.revision is not None and good.revision.revision == 2
    # only the version new to the deployment is scored
    assert [r.uri for r in good.validation] == ["models:/fraud/2"]
    assert all(r.passed for r in good.validation)


def test_a_relative_holdout_path_is_read_from_the_spec_files_folder(
    fraud: Registry, holdout: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _gated(Path(holdout.name), 3)
    path = holdout.parent / "deploy.yaml"
    path.write_text(yaml.safe_dump(spec))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    with pytest.raises(ValidationFailedError, match="models:/fraud/3 failed validation"):
        apply(fraud, str(path))


def test_a_dry_run_checks_everything_and_stores_nothing(fraud: Registry, holdout: Path) -> None:
    result = apply(fraud, _gated(holdout, 1), dry_run=True)
    assert result.dry_run and result.revision is None and result.validation[0].passed
    assert fraud.deployments.list() == []
    with pytest.raises(ValidationFailedError):
        apply(fraud, _gated(holdout, 3), dry_run=True)


def test_a_rollout_starts_with_its_revision(fraud: Registry) -> None:
    spec = _with(
        routes=[{"version": 1}],
        rollout={"version": 2, "steps": [{"weight": 10}, {"weight": 100}]},
    )
    result = apply(fraud, spec, actor="user:alice", now=lambda: 1000.0)
    assert result.revision is not None and result.rollout is not None
    record = fraud.deployments.rollout("fraud-prod")
    assert record is not None and record.revision == result.revision.revision
    assert record.state["phase"] == RolloutPhase.PROGRESSING and record.state["step"] == 0
    assert record.state["started_at"] == 1000.0
    [started] = fraud.deployments.decisions("fraud-prod")
    assert started.actor == "user:alice"
    assert started.decision["action"] == RolloutAction.START and started.decision["weight"] == 10
    assert status(fraud, "fraud-prod").split.arms == (("1", 90.0), ("2", 10.0))


def test_a_revision_without_a_rollout_ends_the_one_running(fraud: Registry) -> None:
    apply(fraud, _with(routes=[{"version": 1}], rollout={"version": 2}))
    apply(fraud, _with(routes=[{"version": 3}]), actor="user:bob", now=lambda: 2000.0)
    assert fraud.deployments.rollout("fraud-prod") is None
    ended = fraud.deployments.decisions("fraud-prod")[-1]
    assert ended.revision == 1 and ended.actor == "user:bob"
    assert ended.decision["action"] == RolloutAction.ABORT
    assert ended.decision["reason"].startswith("superseded by revision 2 (apply)")
