"""Chaos: a deployment changed under load answers every request (issue 12: "apply, promote and
rollback cause zero failed requests under load").

Four clients send requests to ``seaway serve --deployment`` without pause while the test applies
a canary split, starts a rollout that advances a step, promotes it, and rolls back to the first
revision, each a new revision followed by the running server; every answer must be a 200 from the
version it names, with that version's prediction. Each change is waited for by a condition (the
server routing to the new versions, answers from them), never by a sleep; the load is bounded by
its four clients and by the length of the test.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rolloutmodels
from _traffic import Outcome, Traffic, figures, running
from deployserver import POLL, apply, cli, serving, wait_until

import seaway

NAME = "fraud-live"
#: fraud/1, /2: Good; /3: Opposite (what each predicts for a request)
PREDICT = {"1": rolloutmodels.Good(), "2": rolloutmodels.Good(), "3": rolloutmodels.Opposite()}


def _spec(routes: list[tuple[int, float]], **sections: Any) -> dict[str, Any]:
    routing = [{"version": v, "weight": w} for v, w in routes]
    return {"name": NAME, "model": "fraud", "routes": routing, **sections}


def _right(body: dict[str, Any], answer: dict[str, Any]) -> bool:
    """The answer is what the version that says it answered predicts for this row."""
    model = PREDICT.get(answer.get("model_version", ""))
    row = np.asarray(body["inputs"][0]["data"], dtype=np.float64).reshape(1, 2)
    return model is not None and answer["outputs"][0]["data"] == model.predict(row).tolist()


def _answered_by(traffic: Traffic, version: str, after: int) -> bool:
    return any(o.version == version for o in traffic.outcomes[after:])


def test_apply_rollout_promote_and_rollback_under_load_fail_no_request(
    seaway_home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with seaway.Registry.from_settings() as registry:
        rolloutmodels.register(registry, "fraud", *PREDICT.values())
    apply(capsys, tmp_path, _spec([(1, 100)]))
    args = ["--deployment", NAME, "--trusted", "--poll-interval", POLL]
    with running(args, seaway_home, tmp_path / "server.log") as server:
        url = f"{server.url}/v2/models/{NAME}/infer"
        with Traffic(url, rolloutmodels.body, _right, threads=4) as traffic:
            phases: dict[str, int] = {}

            def changed(what: str, versions: list[str], new: str) -> None:
                """Wait until ``server`` routes to ``versions`` and ``new`` answered a request
                sent after that."""
                wait_until(lambda: serving(server, NAME) == versions, what, server=server)
                phases[what] = len(traffic.outcomes)
                traffic.wait_for(lambda o: _answered_by(traffic, new, phases[what]), what)

            traffic.wait_for(lambda o: len(o) >= 50, "answers from the first revision")
            apply(capsys, tmp_path, _spec([(1, 50), (2, 50)]))
            changed("canary", ["1", "2"], "2")

            steps = [{"weight": 25, "min_requests": 20}, {"weight": 50, "min_requests": 10**6}]
            rollout = {"version": 3, "steps": [*steps, {"weight": 100}], "gates": {}}
            apply(capsys, tmp_path, _spec([(1, 100)], rollout=rollout))
            changed("rollout", ["1", "3"], "3")
            wait_until(lambda: _advanced(), "the rollout's advance", server=server)
            phases["advanced"] = len(traffic.outcomes)
            traffic.wait_for(lambda o: len(o) >= phases["advanced"] + 50, "answers at step 2")

            assert cli(capsys, "deploy", "promote", NAME)[0] == 0
            changed("promote", ["3"], "3")
            assert cli(capsys, "deploy", "rollback", NAME, "--to-revision", "1")[0] == 0
            changed("rollback", ["1"], "1")
            traffic.wait_for(lambda o: len(o) >= phases["rollback"] + 50, "answers after it")

        report = figures(traffic, "deployment changes under load")
        with capsys.disabled():
            print(f"\n{report}; answers counted before each change: {phases}")
        outcomes: list[Outcome] = list(traffic.outcomes)
        failed = [o for o in outcomes if o.status != 200]
        assert failed == [], report
        assert all(o.correct for o in outcomes), report
        # every change happened while requests were being answered: each phase has answers
        marks = [0, *phases.values(), len(outcomes)]
        assert all(b > a for a, b in itertools.pairwise(marks)), (marks, report)


def _advanced() -> bool:
    with seaway.Registry.from_settings() as registry:
        return any(d.decision["action"] == "advance" for d in registry.deployments.decisions(NAME))
