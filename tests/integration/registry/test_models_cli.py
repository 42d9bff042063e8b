"""``seaway models delete NAME``, ``delete --force`` naming the aliases it removed, and
``seaway models update`` (issue 10, item 12), run in-process against both backends."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.cli.main import main
from seaway.registry import Registry


@pytest.fixture
def package(tmp_path: Path, tabular: tuple[pd.DataFrame, np.ndarray]) -> Path:
    frame, target = tabular
    model = LogisticRegression().fit(frame, target)
    return seaway.save_model(model, tmp_path / "pkg", sample_input=frame.head()).path


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, " ".join(err.split())


def test_delete_force_names_the_aliases_it_removed(
    registry: Registry, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(3):
        registry.register(package, "fraud")
    registry.set_alias("fraud", "production", 1)
    registry.set_alias("fraud", "canary", 1)
    registry.set_alias("fraud", "staging", 2)

    code, out, _ = _cli(capsys, "models", "delete", "fraud/1", "--force")
    assert code == 0
    assert "Deleted models:/fraud/1; removed alias(es) canary, production" in " ".join(out.split())

    code, out, _ = _cli(capsys, "models", "delete", "models:/fraud/2", "--force", "--json")
    assert code == 0
    assert json.loads(out) == {
        "deleted": "models:/fraud/2",
        "name": "fraud",
        "version": 2,
        "versions_deleted": 1,
        "aliases_removed": ["staging"],
    }
    code, out, _ = _cli(capsys, "models", "delete", "fraud/3", "--json")
    assert code == 0 and json.loads(out)["aliases_removed"] == []


def test_delete_a_whole_model(
    registry: Registry, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for _ in range(2):
        registry.register(package, "fraud")
    registry.register(package, "churn")
    registry.set_alias("fraud", "production", 2)

    code, _, err = _cli(capsys, "models", "delete", "fraud")
    assert code == 1 and "production -> 2" in err and "--force" in err
    assert registry.get_model("fraud").version_count == 2

    code, out, _ = _cli(capsys, "models", "delete", "fraud", "--force")
    assert code == 0
    assert "Deleted model fraud (2 version(s)); removed alias(es) production" in " ".join(
        out.split()
    )
    assert [m.name for m in registry.list_models()] == ["churn"]

    code, out, _ = _cli(capsys, "models", "delete", "churn", "--json")
    assert code == 0
    assert json.loads(out) == {
        "deleted": "models:/churn",
        "name": "churn",
        "version": None,
        "versions_deleted": 1,
        "aliases_removed": [],
    }
    code, _, err = _cli(capsys, "models", "delete", "churn")
    assert code == 1 and "no model named 'churn'" in err
    code, _, err = _cli(capsys, "models", "delete", "fraud@production")
    assert code != 0 and "seaway models alias fraud production --delete" in err


def test_update_sets_model_and_version_metadata_shown_by_show(
    registry: Registry, package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.register(package, "fraud", model_tags={"tier": "1"})
    code, out, _ = _cli(
        capsys,
        "models",
        "update",
        "fraud",
        "--description",
        "card fraud scoring",
        "--tag",
        "team=risk",
        "--tag",
        "owner=ana",
        "--remove-tag",
        "tier",
    )
    assert code == 0 and "Updated model fraud" in out
    code, out, _ = _cli(capsys, "models", "show", "fraud", "--json")
    shown = json.loads(out)
    assert (shown["description"], shown["tags"]) == (
        "card fraud scoring",
        {"team": "risk", "owner": "ana"},
    )
    code, out, _ = _cli(capsys, "models", "show", "fraud")
    assert "card fraud scoring" in out and "owner" in out

    code, out, _ = _cli(capsys, "models", "update", "fraud/1", "-d", "first", "--json")
    assert code == 0 and json.loads(out)["description"] == "first"
    assert registry.get_model("fraud").description == "card fraud scoring"

    code, _, err = _cli(capsys, "models", "update", "fraud")
    assert code != 0 and "--description" in err
    code, _, err = _cli(capsys, "models", "update", "fraud", "--tag", "oops")
    assert code != 0 and "KEY=VALUE" in err
