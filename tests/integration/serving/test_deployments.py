"""Deployments over REST and gRPC with real clients and real replicas (a server in this process,
its routing table built by hand): sticky A/B arms, answers naming their version (body, header,
gRPC trailing metadata), MLflow scoring per model and by header, outcomes per arm, and a shadow
that is slow or failing while the primary's answers stay the primary's."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import deploymodels
import grpc
import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.http as triton
from inprocess import InProcessServer, Serving
from sklearn.linear_model import LogisticRegression

import seaway
from seaway.errors import InvalidInputError
from seaway.packaging.reader import open_package
from seaway.protocol.grpc import inference_pb2 as pb
from seaway.protocol.grpc import inference_pb2_grpc as pb_grpc
from seaway.routing.policy import Split
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.model import ServedModel, ServingOptions

#: the shadow that waits at a gate may hold at most this many copies; the rest are dropped
MAX_PENDING = 2


@pytest.fixture(scope="module")
def deployed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[InProcessServer, dict[str, Any]]]:
    """Model ``fraud`` versions 3 and 4 (two classifiers that disagree), served as the model
    ``fraud`` (version 3) and in deployments: ``fraud-ab`` (50/50 sticky by X-User-ID),
    ``fraud-slow-shadow`` (3, shadowed by a version that waits at a gate) and
    ``fraud-failing-shadow`` (3, shadowed by one that always fails)."""
    folder = tmp_path_factory.mktemp("deployments")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(200, 4)), columns=deploymodels.COLUMNS)
    target = ((frame["age"] + 0.5 * frame["score"]) > 0).astype(np.int64).to_numpy()
    gate = folder / "gate"
    gate.mkdir()
    packages = {
        "3": seaway.save_model(LogisticRegression().fit(frame, target), folder / "v3", sample_input=frame.head(10)),
        "4": seaway.save_model(LogisticRegression().fit(frame, 1 - target), folder / "v4", sample_input=frame.head(10)),
        "8": deploymodels.save(deploymodels.GatedLabels(), folder / "v8", gate),
        "9": deploymodels.save(deploymodels.Failing(), folder / "v9"),
    }  # fmt: skip
    options = ServingOptions(timeout=60, trusted=True, max_latency_ms=1)
    models = {
        version: ServedModel(
            "fraud", version, str(package.path), open_package(package.path).manifest, options
        )
        for version, package in packages.items()
    }

    async def build() -> tuple[list[ServedModel], list[DeploymentRoute]]:
        await asyncio.gather(*(m.start() for m in models.values()))

        def route(name: str, split: tuple[tuple[str, float], ...], **kw: Any) -> DeploymentRoute:
            arms = {v: models[v] for v, _ in split}
            return DeploymentRoute(
                name, model="fraud", split=Split(split), arms=arms, rng=random.Random(1), **kw
            )

        routes = [
            route("fraud-ab", (("3", 50.0), ("4", 50.0)), sticky_header="X-User-ID"),
            route(
                "fraud-slow-shadow",
                (("3", 100.0),),
                shadow=models["8"],
                shadow_max_pending=MAX_PENDING,
            ),
            route("fraud-failing-shadow", (("3", 100.0),), shadow=models["9"]),
        ]
        return [models["3"]], routes

    serving = Serving(build, feedback_root=str(folder / "feedback"))
    server = serving.start()
    try:
        yield server, {"frame": frame, "gate": gate, "models": models}
    finally:
        serving.stop()


def _infer_body(rows: pd.DataFrame) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": c, "shape": [len(rows)], "datatype": "FP64", "data": rows[c].tolist()}
            for c in rows.columns
        ]
    }


def _route(server: InProcessServer, name: str) -> DeploymentRoute:
    route = server.plane.deployment(name)
    assert route is not None
    return route


def test_an_ab_test_is_sticky_per_user_and_answers_name_their_version(deployed: Any) -> None:
    server, given = deployed
    rows = given["frame"].head(2)
    seen: dict[str, set[str]] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for user in [f"user-{n}" for n in range(40)] * 3:
            answer = client.post(
                "/v2/models/fraud-ab/infer", json=_infer_body(rows), headers={"X-User-ID": user}
            )
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["model_name"] == "fraud-ab"
            assert answer.headers["x-seaway-model-version"] == body["model_version"]
            seen.setdefault(user, set()).add(body["model_version"])
    assert all(len(versions) == 1 for versions in seen.values())
    share = Counter(next(iter(v)) for v in seen.values())
    assert set(share) == {"3", "4"}, share  # 40 users, 50/50: both arms have some

    # tritonclient reads the version from the body too
    client = triton.InferenceServerClient(f"127.0.0.1:{server.port}", network_timeout=30)
    inputs = []
    for column in rows.columns:
        tensor = triton.InferInput(column, [len(rows)], "FP64")
        tensor.set_data_from_numpy(rows[column].to_numpy())
        inputs.append(tensor)
    result = client.infer("fraud-ab", inputs, headers={"X-User-ID": "user-0"})
    assert result.get_response()["model_version"] in seen["user-0"]
    assert client.get_model_metadata("fraud-ab")["versions"] == ["3", "4"]
    assert client.is_model_ready("fraud-ab")
    client.close()


def test_grpc_answers_name_the_version_in_trailing_metadata(deployed: Any) -> None:
    server, given = deployed
    rows = given["frame"].head(3)
    request = pb.ModelInferRequest(model_name="fraud-ab")
    for column in rows.columns:
        request.inputs.add(name=column, datatype="FP64", shape=[len(rows)])
        request.raw_input_contents.append(rows[column].to_numpy().tobytes())
    versions = set()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        for user in ("alice", "bob", "carol", "dave", "erin", "frank"):
            answer, call = stub.ModelInfer.with_call(
                request, metadata=(("x-user-id", user),), timeout=30
            )
            trailing = dict(call.trailing_metadata())
            assert answer.model_name == "fraud-ab"
            assert trailing["seaway-model-version"] == answer.model_version
            again, _ = stub.ModelInfer.with_call(
                request, metadata=(("x-user-id", user),), timeout=30
            )
            assert again.model_version == answer.model_version  # sticky over gRPC metadata
            versions.add(answer.model_version)
        _, call = stub.ModelInfer.with_call(
            pb.ModelInferRequest(model_name="fraud", inputs=request.inputs,
                                 raw_input_contents=request.raw_input_contents),
            timeout=30,
        )  # fmt: skip
        assert dict(call.trailing_metadata())["seaway-model-version"] == "3"
    assert versions <= {"3", "4"}


def test_mlflow_scoring_per_model_and_by_header(deployed: Any) -> None:
    server, given = deployed
    rows = given["frame"].head(4)
    body = {"dataframe_split": {"columns": list(rows.columns), "data": rows.to_numpy().tolist()}}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        by_path = client.post(
            "/v2/models/fraud-ab/invocations", json=body, headers={"X-User-ID": "user-1"}
        )
        assert by_path.status_code == 200, by_path.text
        assert len(by_path.json()["predictions"]) == 4
        assert by_path.headers["x-seaway-model-version"] in {"3", "4"}
        by_header = client.post("/invocations", json=body, headers={"X-Seaway-Model": "fraud"})
        assert by_header.status_code == 200
        assert by_header.headers["x-seaway-model-version"] == "3"
        refused = client.post("/invocations", json=body)
        assert refused.status_code == 400
        assert "X-Seaway-Model" in refused.json()["message"]
        assert "'fraud-ab'" in refused.json()["message"]


def test_outcomes_are_counted_for_the_arm_that_answered(deployed: Any) -> None:
    server, given = deployed
    route = _route(server, "fraud-ab")
    before = {v: a.outcome_n for v, a in route.recorder.stats.arms.items()}
    rows = given["frame"].head(1)
    answered: dict[str, str] = {}
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for n in range(10):
            answer = client.post(
                "/v2/models/fraud-ab/infer", json=_infer_body(rows), headers={"X-User-ID": f"o{n}"}
            )
            answered[answer.headers["x-request-id"]] = answer.headers["x-seaway-model-version"]
        outcomes = [{"id": rid, "value": 1} for rid in answered]
        outcomes.append({"id": "not-ours", "value": 0})
        posted = client.post("/v2/models/fraud-ab/outcome", json={"outcomes": outcomes})
        assert posted.status_code == 200, posted.text
        assert posted.json()["accepted"] == 10 and posted.json()["unmatched"] == ["not-ours"]
        bad = client.post("/v2/models/fraud-ab/outcome", json={"outcomes": [{"id": "x"}]})
        assert bad.status_code == 400 and "outcomes[0].value" in bad.json()["error"]
    arms = route.recorder.stats.arms
    for version in ("3", "4"):
        expected = sum(1 for v in answered.values() if v == version)
        assert arms[version].outcome_n - before.get(version, 0) == expected


def _wait_for(check: Any, what: str, timeout: float = 60) -> None:
    """Poll ``check`` (work finishing on the server's loop) until it holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_shadow_that_cannot_keep_up_never_holds_an_answer_back(deployed: Any) -> None:
    server, given = deployed
    route = _route(server, "fraud-slow-shadow")
    gate: Path = given["gate"]
    rows = given["frame"].head(2)
    expected = given["models"]["3"]
    sent = 6
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = [
            client.post("/v2/models/fraud-slow-shadow/infer", json=_infer_body(rows))
            for _ in range(sent)
        ]
        # every answer came back while the shadow holds its first copy at the gate
        _wait_for(lambda: (gate / "entered").exists(), "the shadow to take its first copy")
        assert not (gate / "open").exists()
        assert [a.status_code for a in answers] == [200] * sent
        assert {a.json()["model_version"] for a in answers} == {expected.version}
        plain = client.post("/v2/models/fraud/infer", json=_infer_body(rows)).json()
    assert all(a.json()["outputs"] == plain["outputs"] for a in answers)
    stats = route.recorder.stats.shadow
    assert stats is not None
    assert (stats.copies, stats.dropped) == (MAX_PENDING, sent - MAX_PENDING)
    assert route.recorder.pending == MAX_PENDING
    (gate / "open").touch()
    _wait_for(lambda: route.recorder.pending == 0, "the shadow's copies to finish")
    assert stats.errors == 0 and stats.compared == MAX_PENDING * len(rows)
    assert route.recorder.stats.arms["3"].requests == sent


def test_a_failing_shadow_never_reaches_the_client(deployed: Any) -> None:
    server, given = deployed
    route = _route(server, "fraud-failing-shadow")
    rows = given["frame"].head(1)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        answers = [
            client.post("/v2/models/fraud-failing-shadow/infer", json=_infer_body(rows))
            for _ in range(5)
        ]
    assert [a.status_code for a in answers] == [200] * 5
    assert {a.headers["x-seaway-model-version"] for a in answers} == {"3"}
    stats = route.recorder.stats.shadow
    assert stats is not None
    _wait_for(lambda: route.recorder.pending == 0, "the shadow's copies to finish")
    assert (stats.copies, stats.errors, stats.compared) == (5, 5, 0)
    assert route.recorder.stats.arms["3"].errors == 0


def test_the_python_client_sends_a_sticky_key_names_the_version_and_posts_outcomes(
    deployed: Any,
) -> None:
    server, given = deployed
    route = _route(server, "fraud-ab")
    before = {v: a.outcome_n for v, a in route.recorder.stats.arms.items()}
    rows = given["frame"].head(1)
    with seaway.Client(server.url) as client:
        versions = set()
        for _ in range(3):
            client.predict("fraud-ab", rows, headers={"X-User-ID": "client-user"})
            versions.add(client.last_model_version)
        assert len(versions) == 1 and versions <= {"3", "4"}  # sticky: one arm for the user
        arm = versions.pop()
        answer = client.outcome("fraud-ab", 1, request_id=client.last_request_id)
        assert answer["accepted"] == 1
        assert client.outcome("fraud-ab", 0, key="client-user")["accepted"] == 1
        assert client.outcome("fraud-ab", items=[{"id": "nobody", "value": 1}])["unmatched"] == [
            "nobody"
        ]
        with pytest.raises(InvalidInputError, match="request_id= or key="):
            client.outcome("fraud-ab", 1)
    assert route.recorder.stats.arms[arm].outcome_n - before.get(arm, 0) == 2
