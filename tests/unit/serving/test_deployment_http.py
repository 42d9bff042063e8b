"""The REST app over deployments (ASGI, fake versions): version headers, MLflow scoring per model
and by header, outcomes, feedback per arm, and the 4xx a bad request gets."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

import httpx
import pytest
from deployfakes import FakeVersion

from seaway.monitoring.feedback import read_feedback
from seaway.routing.policy import Split
from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.feedback import FeedbackWriter
from seaway.serving.http.app import create_app

INFER = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}]}
SCORING = {"inputs": [[1.0, 2.0]]}


def _route(weights: dict[str, float], **kwargs: Any) -> DeploymentRoute:
    return DeploymentRoute(
        "fraud-prod",
        model="fraud",
        split=Split(tuple(weights.items())),
        arms={v: FakeVersion(v) for v in weights},
        rng=random.Random(5),
        **kwargs,
    )


def _app(*routes: DeploymentRoute, models: Any = (), feedback: Path | None = None) -> Any:
    plane = DataPlane()
    plane.publish(list(models), deployments=routes)
    writer = FeedbackWriter(str(feedback)) if feedback is not None else None
    return create_app(plane, feedback=writer)


def _calls(app: Any, *calls: tuple[str, str, dict[str, Any]]) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.request(method, path, **kw) for method, path, kw in calls]

    return asyncio.run(go())


def _post(app: Any, path: str, n: int = 1, **kwargs: Any) -> list[httpx.Response]:
    return _calls(app, *[("POST", path, kwargs)] * n)


def test_v2_infer_names_the_version_in_the_body_and_a_header() -> None:
    app = _app(_route({"3": 50, "4": 50}))
    answers = _post(app, "/v2/models/fraud-prod/infer", 40, json=INFER)
    assert all(a.status_code == 200 for a in answers)
    for answer in answers:
        body = answer.json()
        assert body["model_name"] == "fraud-prod"
        assert answer.headers["x-seaway-model-version"] == body["model_version"]
        assert body["outputs"][0]["data"] == [int(body["model_version"])]
    assert {a.headers["x-seaway-model-version"] for a in answers} == {"3", "4"}
    # a plain model's answer carries the header too
    plain = _post(_app(models=[FakeVersion("2", name="m")]), "/v2/models/m/infer", json=INFER)[0]
    assert plain.headers["x-seaway-model-version"] == "2"


def test_a_sticky_header_through_the_raw_infer_endpoint() -> None:
    app = _app(_route({"3": 50, "4": 50}, sticky_header="X-User-ID"))
    for user in ("alice", "bob", "carol"):
        answers = _post(
            app, "/v2/models/fraud-prod/infer", 8, json=INFER, headers={"x-user-id": user}
        )
        assert len({a.headers["x-seaway-model-version"] for a in answers}) == 1, user


def test_a_sticky_header_through_mlflow_scoring() -> None:
    app = _app(_route({"3": 50, "4": 50}, sticky_header="X-User-ID"))
    for user in ("alice", "bob"):
        answers = _post(
            app, "/v2/models/fraud-prod/invocations", 8, json=SCORING, headers={"x-user-id": user}
        )
        assert len({a.headers["x-seaway-model-version"] for a in answers}) == 1, user


def test_invocations_per_model_path_and_by_header() -> None:
    app = _app(_route({"4": 100}), models=[FakeVersion("2", name="other")])
    by_path = _post(app, "/v2/models/fraud-prod/invocations", json=SCORING)[0]
    assert by_path.status_code == 200, by_path.text
    assert by_path.json() == {"predictions": [4]}
    assert by_path.headers["x-seaway-model-version"] == "4"
    assert by_path.headers["x-model-name"] == "fraud-prod"
    pinned = _post(app, "/v2/models/other/versions/2/invocations", json=SCORING)[0]
    assert pinned.json() == {"predictions": [2]}
    by_header = _post(app, "/invocations", json=SCORING, headers={"X-Seaway-Model": "other"})[0]
    assert by_header.status_code == 200 and by_header.json() == {"predictions": [2]}
    assert by_header.headers["x-seaway-model-version"] == "2"


def test_invocations_with_several_models_and_no_header_names_the_header_and_the_models() -> None:
    app = _app(_route({"4": 100}), models=[FakeVersion("2", name="other")])
    answer = _post(app, "/invocations", json=SCORING)[0]
    assert answer.status_code == 400
    message = answer.json()["message"]
    assert "X-Seaway-Model" in message and "'fraud-prod', 'other'" in message
    unknown = _post(app, "/invocations", json=SCORING, headers={"X-Seaway-Model": "nope"})[0]
    assert unknown.status_code == 404
    assert "X-Seaway-Model" in unknown.json()["message"] and "nope" in unknown.json()["message"]
    # one model: as before, no header needed
    one = _app(models=[FakeVersion("2", name="other")])
    assert _post(one, "/invocations", json=SCORING)[0].json() == {"predictions": [2]}


def test_outcomes_are_counted_per_arm_and_unknown_ids_come_back_unmatched() -> None:
    route = _route({"3": 50, "4": 50}, sticky_header="x-user-id")
    app = _app(route)
    answers = _post(app, "/v2/models/fraud-prod/infer", 20, json=INFER)
    ids = {a.headers["x-request-id"]: a.headers["x-seaway-model-version"] for a in answers}
    outcomes = [{"id": rid, "value": 1} for rid in ids]
    outcomes += [{"id": "never-seen", "value": 1}, {"key": "alice", "value": True}]
    answer = _post(app, "/v2/models/fraud-prod/outcome", json={"outcomes": outcomes})[0]
    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "model_name": "fraud-prod",
        "accepted": 21,
        "unmatched": ["never-seen"],
        "duplicates": [],
    }
    first = next(iter(ids))  # posted again (a retry): reported, not counted
    again = _post(
        app, "/v2/models/fraud-prod/outcome", json={"outcomes": [{"id": first, "value": 1}]}
    )
    assert again[0].json()["duplicates"] == [first] and again[0].json()["accepted"] == 0
    arms = route.recorder.stats.arms
    alice = route.version_for_key("alice")
    for version in ("3", "4"):
        expected = sum(1 for v in ids.values() if v == version) + (version == alice)
        assert arms[version].outcome_n == expected


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "not valid JSON"),
        (b"[]", 400, "must be a JSON object"),
        (b'{"outcomes": []}', 400, '"outcomes" must be a non-empty list'),
        (b'{"outcomes": [{"id": "a", "value": 1}], "x": 1}', 400, "unknown field(s) ['x']"),
        (b'{"outcomes": [{"value": 1}]}', 400, "outcomes[0] needs exactly one of"),
        (b'{"outcomes": [{"id": "a", "key": "b", "value": 1}]}', 400, "exactly one of"),
        (b'{"outcomes": [{"id": "a", "value": "yes"}]}', 400, "outcomes[0].value must be"),
        (b'{"outcomes": [{"id": "a"}]}', 400, "outcomes[0].value must be"),
        (b'{"outcomes": [{"id": "", "value": 1}]}', 400, "outcomes[0].id must be"),
        (b'{"outcomes": [{"id": "a", "value": 1, "n": 2}]}', 400, "outcomes[0] has unknown"),
        (b'{"outcomes": [{"key": "u", "value": 1}]}', 400, "outcomes[0].key: deployment"),
        # a value whose square overflows would make the stored counters unreadable
        (b'{"outcomes": [{"id": "a", "value": 1e308}]}', 400, "outcomes[0].value must be"),
        (b'{"outcomes": [{"id": "a", "value": -1e200}]}', 400, "at most 1e+100 in size"),
    ],
)
def test_bad_outcome_bodies_get_4xx_naming_the_field(
    body: bytes, status: int, message: str
) -> None:
    app = _app(_route({"3": 100}))  # not sticky: a key is refused
    answer = _post(app, "/v2/models/fraud-prod/outcome", content=body)[0]
    assert answer.status_code == status
    assert message in answer.json()["error"]


def test_outcomes_are_bounded_and_only_for_deployments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("seaway.serving.outcomes.MAX_OUTCOMES", 2)
    app = _app(_route({"3": 100}), models=[FakeVersion("2", name="other")])
    many = {"outcomes": [{"id": str(n), "value": 1} for n in range(3)]}
    too_many = _post(app, "/v2/models/fraud-prod/outcome", json=many)[0]
    assert too_many.status_code == 413 and "at most 2" in too_many.json()["error"]
    monkeypatch.setattr("seaway.serving.outcomes.MAX_BODY_BYTES", 100)
    big = _post(app, "/v2/models/fraud-prod/outcome", content=b" " * 200)[0]
    assert big.status_code == 413
    error = big.json()["error"]  # a limit --max-body-size cannot raise is not said to be its
    assert "limit of 100 bytes (this route's own limit)" in error and "--max-body" not in error
    plain = _post(app, "/v2/models/other/outcome", json={"outcomes": [{"id": "a", "value": 1}]})[0]
    assert plain.status_code == 400 and "not a deployment" in plain.json()["error"]
    unknown = _post(app, "/v2/models/nope/outcome", content=b"junk")[0]
    assert unknown.status_code == 404


def test_feedback_on_a_deployment_is_stored_under_its_model_and_counts_arm_accuracy(
    tmp_path: Path,
) -> None:
    route = _route({"3": 100})
    app = _app(route, feedback=tmp_path)
    answer = _post(app, "/v2/models/fraud-prod/infer", json=INFER)[0]
    rid = answer.headers["x-request-id"]
    labels = {"items": [{"request_id": rid, "label": 3}, {"request_id": "other", "label": 1}]}
    stored = _post(app, "/v2/models/fraud-prod/feedback", json=labels)[0]
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"model_name": "fraud-prod", "accepted": 2, "matched": 1}
    arm = route.recorder.stats.arms["3"]
    assert (arm.labelled, arm.correct) == (1, 1)
    stored_labels = read_feedback("fraud", root=str(tmp_path))  # beside the model's own log
    assert sorted(stored_labels["request_id"]) == sorted([rid, "other"])


def test_metadata_ready_and_model_list_of_a_deployment() -> None:
    app = _app(_route({"3": 90, "4": 10}), models=[FakeVersion("2", name="other")])
    meta, ready, listing, pinned = _calls(
        app,
        ("GET", "/v2/models/fraud-prod", {}),
        ("GET", "/v2/models/fraud-prod/ready", {}),
        ("GET", "/v2/models", {}),
        ("GET", "/v2/models/fraud-prod/versions/4", {}),
    )
    assert meta.json()["name"] == "fraud-prod" and meta.json()["versions"] == ["3", "4"]
    assert ready.json() == {"name": "fraud-prod", "ready": True}
    assert listing.json() == {"models": ["fraud-prod", "other"]}
    assert pinned.json()["versions"] == ["4"]


def test_metrics_count_a_deployments_requests_under_its_name_and_arm() -> None:
    from seaway.serving.metrics import Metrics

    metrics = Metrics()
    plane = DataPlane()
    route = DeploymentRoute(
        "fraud-prod",
        model="fraud",
        split=Split((("3", 100.0),)),
        arms={"3": FakeVersion("3", fails=True)},
        rng=random.Random(5),
    )
    plane.publish([], deployments=[route])
    app = create_app(plane, metrics=metrics)
    failed = _post(app, "/v2/models/fraud-prod/infer", json=INFER)[0]
    assert failed.status_code == 400
    page = metrics.render().decode()
    counted = [line for line in page.splitlines() if line.startswith("seaway_requests_total{")]
    assert any('model="fraud-prod"' in line and 'version="3"' in line for line in counted), counted
    assert not any('model="fraud"' in line for line in counted)
