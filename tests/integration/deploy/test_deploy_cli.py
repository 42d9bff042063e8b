"""``seaway deploy ...`` and ``seaway validate`` run in-process on both backends (issue 12, items
3, 5 and 6): what they print fits 80 columns in a pipe, ``--json`` is the library's answer, and
every refusal is one ``Error:`` line with a non-zero exit, never a traceback."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from seaway.cli.main import main
from seaway.registry import Registry
from seaway.routing.stats import ArmStats, DeploymentStats

WIDTH = 80


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _fits(text: str) -> None:
    """Every line within 80 columns, but a lone token (a long temporary path) that no layout
    could break."""
    wide = [line for line in text.splitlines() if len(line) > WIDTH and " " in line.strip()]
    assert wide == [], "lines over 80 columns"


def _spec(tmp_path: Path, doc: dict[str, Any], name: str = "deploy.yaml") -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return str(path)


CANARY = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}],
}
ROLLOUT = {
    "name": "fraud-prod",
    "model": "fraud",
    "routes": [{"version": 1}],
    "rollout": {"version": 2, "steps": [{"weight": 5, "min_duration": "5m"}, {"weight": 100}]},
}


def test_apply_list_status_and_history(
    fraud: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _spec(tmp_path, CANARY)
    code, out, _ = _cli(capsys, "deploy", "apply", path)
    assert code == 0
    assert out.splitlines() == ["Deployment fraud-prod is at revision 1", "Traffic: 1:90 2:10"]
    code, out, _ = _cli(capsys, "deploy", "apply", path)
    assert (code, out) == (0, "Deployment fraud-prod unchanged (revision 1): nothing to apply\n")

    message = "move a tenth more traffic to version 2 after a week without any complaint at all"
    doc = {**CANARY, "routes": [{"version": 1, "weight": 80}, {"version": 2, "weight": 20}]}
    assert _cli(capsys, "deploy", "apply", _spec(tmp_path, doc), "-m", message)[0] == 0

    code, out, _ = _cli(capsys, "deploy", "list")
    assert code == 0 and "fraud-prod  fraud  2    canary" in out and "1:80 2:20" in out
    code, out, _ = _cli(capsys, "deploy", "status", "fraud-prod")
    assert code == 0 and "traffic   1:80 2:20" in out and "strategy  canary" in out
    code, out, _ = _cli(capsys, "deploy", "history", "fraud-prod")
    assert code == 0
    _fits(out)
    words = " ".join(out.split())
    assert message in words.replace(" 1:90 2:10", "")  # wrapped within its column
    assert out.splitlines()[0].split() == ["rev", "when", "(UTC)", "actor", "traffic", "message"]

    code, out, _ = _cli(capsys, "deploy", "history", "fraud-prod", "--json", "--limit", "1")
    assert code == 0
    assert [r["revision"] for r in json.loads(out)["revisions"]] == [2]
    code, out, _ = _cli(capsys, "deploy", "list", "--json")
    assert [d["split"] for d in json.loads(out)] == [
        [{"version": "1", "weight": 80.0}, {"version": "2", "weight": 20.0}]
    ]


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        (
            {**CANARY, "routes": [{"version": 1, "weight": 90}, {"version": 7, "weight": 10}]},
            "routes[1].version: model fraud has no version 7 (versions: 1, 2, 3)",
        ),
        ({**CANARY, "shadow": {"version": 2}}, "shadow.version: 2 is also routed"),
        ({**CANARY, "colour": "blue"}, "colour"),
    ],
)
def test_a_refused_apply_is_one_error_line_and_changes_nothing(
    fraud: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    doc: dict[str, Any],
    expected: str,
) -> None:
    assert _cli(capsys, "deploy", "apply", _spec(tmp_path, CANARY, "first.yaml"))[0] == 0
    code, out, err = _cli(capsys, "deploy", "apply", _spec(tmp_path, doc))
    assert code == 1 and out == ""
    assert err.startswith("Error: ") and expected in " ".join(err.split())
    assert "Traceback" not in err
    assert fraud.deployments.get("fraud-prod").revision == 1


def test_the_validation_gate_on_the_command_line(
    fraud: Registry, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gate = {"data": holdout.name, "target": "label", "min": {"accuracy": 0.9}}
    bad = {**CANARY, "routes": [{"version": 3}], "validation": gate}
    code, out, err = _cli(capsys, "deploy", "apply", _spec(holdout.parent, bad), "--dry-run")
    assert code == 1 and out == ""
    assert err.startswith("Error: deployment fraud-prod not applied: models:/fraud/3 failed")
    assert "accuracy 0.5" in err

    good = {**CANARY, "validation": gate}
    code, out, _ = _cli(capsys, "deploy", "apply", _spec(holdout.parent, good))
    assert code == 0
    words = " ".join(out.split())
    assert words.startswith(f"Validated models:/fraud/1 on {holdout}: accuracy 0.9")
    assert f"Validated models:/fraud/2 on {holdout}: accuracy 0.9" in words


def test_seaway_validate(
    fraud: Registry, holdout: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["validate", "--data", str(holdout), "--target", "label", "--min", "accuracy=0.9"]
    code, out, err = _cli(capsys, *args[:1], "models:/fraud/1", *args[1:], "--max", "p99_ms=60000")
    assert code == 0 and err == ""
    _fits(out)
    assert "accuracy" in out and ">= 0.9" in out and "<= 60000" in out
    assert out.rstrip().endswith("Passed: models:/fraud/1 meets every threshold.")

    code, out, err = _cli(capsys, *args[:1], "fraud/3", *args[1:])
    assert code == 1 and "MISSED" in out
    assert err.startswith("Error: models:/fraud/3 failed validation on")
    assert "accuracy 0.5" in err and "is below the minimum 0.9" in err

    code, out, err = _cli(capsys, *args[:1], "fraud/3", *args[1:], "--json")
    assert code == 1 and json.loads(out)["passed"] is False

    code, _, err = _cli(capsys, "validate", "fraud/1", "--data", str(holdout), "--min", "accuracy")
    assert code == 2 and "must look like METRIC=NUMBER" in err


def test_a_rollout_from_the_command_line(
    fraud: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(capsys, "deploy", "apply", _spec(tmp_path, ROLLOUT))
    assert code == 0 and "rollout of version 2 started at 5% (stable 1)" in " ".join(out.split())
    assert "Traffic: 1:95 2:5" in out
    code, out, _ = _cli(capsys, "deploy", "pause", "fraud-prod")
    assert code == 0 and out.startswith("Rollout of fraud-prod paused by user:")
    code, out, _ = _cli(capsys, "deploy", "status", "fraud-prod")
    assert "rollout   paused: step 1 of 2, 5%" in out and "Last decision" in out
    code, out, _ = _cli(capsys, "deploy", "history", "fraud-prod", "--decisions")
    assert code == 0
    _fits(out)
    heads = [line.split()[3:5] for line in out.splitlines() if line.startswith("#")]
    assert heads == [["start", "by"], ["pause", "by"]]
    code, out, _ = _cli(capsys, "deploy", "promote", "fraud-prod", "--json")
    assert code == 0 and json.loads(out)["revision"] == 2
    code, _, err = _cli(capsys, "deploy", "resume", "fraud-prod")
    assert code == 1 and "has no rollout in progress" in err
    code, out, _ = _cli(capsys, "deploy", "rollback", "fraud-prod", "--to-revision", "1")
    assert code == 0 and "rolled back to revision 1's spec as revision 3" in out
    code, out, _ = _cli(capsys, "deploy", "history", "fraud-prod")
    third = out.splitlines()[1]
    assert third.startswith("3 ") and third.endswith("1:100 rollout:2  rollback to revision 1")


def test_results_from_two_servers(
    fraud: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = {**CANARY, "ab": {"key": {"header": "X-User-ID"}, "min_samples": 100}}
    assert _cli(capsys, "deploy", "apply", _spec(tmp_path, doc))[0] == 0
    rng = random.Random(3)
    for server in ("server-a", "server-b"):
        arms = {"1": ArmStats(), "2": ArmStats()}
        for version, arm in arms.items():
            for i in range(250):
                arm.observe(0.003 if version == "1" else 0.006, ok=i % 50 != 0)
                arm.observe_outcome(1.0 if rng.random() < 0.1 else 0.0)
        stats = DeploymentStats(arms)
        fraud.deployments.put_stats("fraud-prod", 1, server, stats.to_json())
    code, out, _ = _cli(capsys, "deploy", "results", "fraud-prod")
    assert code == 0
    _fits(out)
    rows = {line[0]: line.split() for line in out.splitlines() if line[:2] in ("1 ", "2 ")}
    assert rows["1"][:4] == ["1", "90%", "500", "2.00%"] and rows["2"][:4] == [
        "2",
        "10%",
        "500",
        "2.00%",
    ]
    assert "A/B 2 vs 1: " in out and "2 server(s)" in out
    code, out, _ = _cli(capsys, "deploy", "results", "fraud-prod", "--json")
    assert [arm["requests"] for arm in json.loads(out)["arms"]] == [500, 500]

    code, out, _ = _cli(capsys, "deploy", "delete", "fraud-prod")
    assert code == 0 and out.startswith("Deleted deployment fraud-prod")
    code, _, err = _cli(capsys, "deploy", "status", "fraud-prod")
    assert code == 1 and "no deployment named fraud-prod" in err
