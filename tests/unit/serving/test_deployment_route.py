"""A deployment served by the data plane: the split, stickiness, answers naming their version,
per-arm counts, outcomes and labels (in process, with fake versions)."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from typing import Any

import numpy as np
import pytest
from deployfakes import FakeVersion, request

from seaway.errors import ConfigError, InvalidInputError, NotFoundError, PredictionError
from seaway.protocol.types import Tensor
from seaway.routing.policy import Split
from seaway.serving import logs, request_context
from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_route import DeploymentRoute, Recorder
from seaway.types import Datatype


def _route(
    weights: dict[str, float],
    *,
    seed: int = 7,
    arms: dict[str, Any] | None = None,
    **kwargs: Any,
) -> DeploymentRoute:
    arms = arms or {v: FakeVersion(v) for v in weights}
    return DeploymentRoute(
        "fraud-prod",
        model="fraud",
        split=Split(tuple(weights.items())),
        arms=arms,
        rng=random.Random(seed),
        **kwargs,
    )


def _plane(*routes: DeploymentRoute, models: Any = ()) -> DataPlane:
    plane = DataPlane()
    plane.publish(list(models), deployments=routes)
    return plane


def _serve(plane: DataPlane, requests: list[Any]) -> list[Any]:
    async def go() -> list[Any]:
        return [await plane.infer(r) for r in requests]

    return asyncio.run(go())


def test_a_canary_split_is_within_statistical_tolerance_and_answers_name_the_version() -> None:
    route = _route({"3": 90, "4": 10})
    plane = _plane(route)
    n = 20_000
    answers = _serve(plane, [request() for _ in range(n)])
    counts = Counter(a.model_version for a in answers)
    assert set(counts) == {"3", "4"}
    # the canary's count is binomial(n, 0.1): 5 standard deviations either side
    sd = math.sqrt(n * 0.1 * 0.9)
    assert abs(counts["4"] - n * 0.1) < 5 * sd, counts
    assert {a.model_name for a in answers} == {"fraud-prod"}
    # each answer is the version's own (the fake answers its version number)
    assert all(int(a.outputs[0].data[0]) == int(a.model_version) for a in answers)
    stats = route.recorder.stats.arms
    assert (stats["3"].requests, stats["4"].requests) == (counts["3"], counts["4"])
    assert stats["3"].labels == {"3": counts["3"]} and stats["4"].errors == 0
    assert sum(stats["4"].latency) == counts["4"]


def test_the_same_seed_gives_the_same_assignment() -> None:
    first = [a.model_version for a in _serve(_plane(_route({"1": 50, "2": 50})), [request()] * 50)]
    again = [a.model_version for a in _serve(_plane(_route({"1": 50, "2": 50})), [request()] * 50)]
    assert first == again


def _with_headers(plane: DataPlane, headers: dict[str, str], n: int = 1) -> list[str]:
    async def go() -> list[str]:
        token = request_context.headers.set(headers)
        try:
            return [(await plane.infer(request())).model_version or "" for _ in range(n)]
        finally:
            request_context.headers.reset(token)

    return asyncio.run(go())


def test_assignment_is_sticky_per_header_key_and_split_by_keys() -> None:
    plane = _plane(_route({"3": 50, "4": 50}, sticky_header="X-User-ID"))
    per_key = {
        f"user-{i}": set(_with_headers(plane, {"x-user-id": f"user-{i}"}, 5)) for i in range(400)
    }
    assert all(len(versions) == 1 for versions in per_key.values())  # each key keeps its arm
    share = Counter(next(iter(v)) for v in per_key.values())
    assert abs(share["3"] - 200) < 5 * math.sqrt(400 * 0.25), share  # and keys split ~50/50


def test_the_raw_asgi_header_list_is_read_too() -> None:
    plane = _plane(_route({"3": 50, "4": 50}, sticky_header="x-user-id"))
    versions = {
        _with_headers(plane, [(b"x-user-id", b"alice")])[0]  # type: ignore[arg-type]
        for _ in range(20)
    }
    assert len(versions) == 1


def test_a_request_without_the_sticky_header_is_served_at_random() -> None:
    plane = _plane(_route({"3": 50, "4": 50}, sticky_header="x-user-id"))
    assert set(_with_headers(plane, {}, 60)) == {"3", "4"}


def test_assignment_is_sticky_per_input_field_of_the_first_row() -> None:
    route = _route({"3": 50, "4": 50}, sticky_input="user")
    plane = _plane(route)

    def user(value: Any) -> Any:
        data = np.array([value, "other"], dtype=object)
        return request(rows=2, extra=[Tensor("user", Datatype.BYTES, (2,), data)])

    for value in (b"alice", "bob", 7):
        versions = {a.model_version for a in _serve(plane, [user(value)] * 10)}
        assert len(versions) == 1, value
    assert route.version_for_key("bob") == _serve(plane, [user("bob")])[0].model_version
    # the same value however it is typed: 7 and 7.0 are one key
    assert _serve(plane, [user(7.0)])[0].model_version == _serve(plane, [user(7)])[0].model_version


def test_a_request_naming_a_version_gets_that_arm_and_an_unknown_one_is_a_404() -> None:
    plane = _plane(_route({"3": 99, "4": 1}))
    answers = _serve(plane, [request(version="4") for _ in range(10)])
    assert {a.model_version for a in answers} == {"4"}
    with pytest.raises(NotFoundError, match=r"no version '9'.*versions \['3', '4'\]"):
        _serve(plane, [request(version="9")])
    with pytest.raises(NotFoundError, match="fraud-prod"):
        _serve(plane, [request(name="nope")])


def test_errors_are_counted_for_the_arm_that_made_them() -> None:
    route = _route(
        {"3": 50, "4": 50}, arms={"3": FakeVersion("3"), "4": FakeVersion("4", fails=True)}
    )
    plane = _plane(route)
    failed = 0

    async def go() -> None:
        nonlocal failed
        for _ in range(200):
            try:
                await plane.infer(request())
            except PredictionError:
                failed += 1

    asyncio.run(go())
    arms = route.recorder.stats.arms
    assert arms["4"].errors == arms["4"].requests == failed > 0
    assert arms["3"].errors == 0 and arms["3"].requests == 200 - failed
    assert sum(arms["4"].latency) == 0  # a failure's latency is not an answer's


def test_predict_native_serves_a_deployment_as_mlflow_scoring_does() -> None:
    route = _route({"3": 100})
    plane = _plane(route)
    served, outputs = asyncio.run(plane.predict_native("fraud-prod", None, [[1.0, 2.0]]))
    assert served.version == "3" and outputs["predict"].tolist() == [3]
    assert route.recorder.stats.arms["3"].requests == 1


def test_readiness_metadata_and_names_of_a_deployment() -> None:
    arms = {"3": FakeVersion("3"), "4": FakeVersion("4")}
    shadow = FakeVersion("5")
    route = _route({"3": 90, "4": 10}, arms=arms, shadow=shadow)
    plain = FakeVersion("1", name="other")
    plane = _plane(route, models=[plain])
    assert plane.names == ["fraud-prod", "other"]
    assert {id(m) for m in plane.models} == {id(m) for m in (plain, *arms.values(), shadow)}
    meta = plane.metadata("fraud-prod")
    assert meta.name == "fraud-prod" and meta.versions == ("3", "4")
    assert plane.metadata("fraud-prod", "4").versions == ("4",)
    assert plane.get("fraud-prod").version == "3"  # the arm with the most traffic speaks for it
    assert plane.ready and plane.model_ready("fraud-prod")
    shadow.ready, shadow.unready_reason = False, "model 'fraud' version 5 is loading"
    assert plane.ready  # a shadow never answers: it does not hold readiness back
    arms["4"].ready, arms["4"].unready_reason = False, "model 'fraud' version 4 is loading"
    assert not plane.model_ready("fraud-prod")
    assert "version 4 is loading" in plane.model_unready_reason("fraud-prod")
    assert "version 4 is loading" in plane.unready_reason()
    assert plane.model_ready("fraud-prod", "3")


def test_a_deployment_may_not_take_a_served_model_name() -> None:
    with pytest.raises(ConfigError, match="fraud-prod"):
        _plane(_route({"3": 100}), models=[FakeVersion("1", name="fraud-prod")])
    with pytest.raises(ConfigError, match="no served model for version"):
        _route({"3": 50, "4": 50}, arms={"3": FakeVersion("3")})


def test_a_split_change_keeps_the_recorder_of_the_same_revision() -> None:
    recorder = Recorder(["3", "4"])
    plane = _plane(_route({"3": 95, "4": 5}, recorder=recorder))
    _serve(plane, [request()] * 20)
    plane.publish([], deployments=[_route({"3": 75, "4": 25}, recorder=recorder)])
    _serve(plane, [request()] * 20)
    assert sum(a.requests for a in recorder.stats.arms.values()) == 40


def test_outcomes_by_request_id_and_by_sticky_key() -> None:
    route = _route({"3": 50, "4": 50}, sticky_header="x-user-id")
    plane = _plane(route)
    answers = _serve(plane, [request(rid=f"r{i}") for i in range(20)])
    by_id = {a.id: a.model_version for a in answers}
    for rid in by_id:
        assert route.record_outcome(rid, None, 1.0) == "accepted"
    for rid in by_id:  # a client's retry: not counted twice
        assert route.record_outcome(rid, None, 1.0) == "duplicate"
    assert route.record_outcome("unknown", None, 1.0) == "unmatched"
    assert route.record_outcome(None, "alice", 2.5) == "accepted"
    arms = route.recorder.stats.arms
    alice = route.version_for_key("alice")
    expected = Counter(by_id.values())
    for version in ("3", "4"):
        extra = 1 if version == alice else 0
        assert arms[version].outcome_n == expected[version] + extra
    assert arms[alice].outcome_sum == expected[alice] + 2.5


def test_answers_are_remembered_by_x_request_id_when_they_have_no_id() -> None:
    route = _route({"3": 100})
    plane = _plane(route)

    async def go() -> None:
        token = logs.request_id.set("rid-1")
        try:
            await plane.infer(request(rows=3))
        finally:
            logs.request_id.reset(token)

    asyncio.run(go())
    assert route.recorder.answered("rid-1") == ("3", [3, 3, 3])


def test_labels_count_each_arms_accuracy() -> None:
    route = _route({"3": 100}, arms={"3": FakeVersion("3", answer=1)})
    plane = _plane(route)
    _serve(plane, [request(rows=2, rid="a")])
    recorder = route.recorder
    assert recorder.observe_label("a", 0, 1) and recorder.observe_label("a", 1, "0")
    assert not recorder.observe_label("a", 5, 1)  # no such row
    assert not recorder.observe_label("b", 0, 1)  # no such request
    arm = recorder.stats.arms["3"]
    assert (arm.labelled, arm.correct) == (2, 1)


def test_remembered_answers_are_bounded() -> None:
    recorder = Recorder(["3"], remember=3)
    for i in range(5):
        recorder.remember(f"r{i}", "3", np.array([1]))
    assert recorder.answered("r1") is None and recorder.answered("r4") == ("3", [1])
    # a long answer keeps its first rows only
    recorder.remember("big", "3", np.arange(1000))
    found = recorder.answered("big")
    assert found is not None and len(found[1]) == 16


@pytest.mark.parametrize(
    "first",
    [
        None,
        np.array([1]),
        np.array([2.5], dtype=np.float32),
        np.array(["cat"], dtype=object),
        np.array([b"dog"]),
        np.array([[0.2, 0.8]]),
        np.array([[7]]),
        np.array([4, 5, 6]),
    ],
)
def test_a_remembered_answer_comes_back_as_the_rows_it_held(first: Any) -> None:
    recorder = Recorder(["3"])
    expected = [] if first is None else first.tolist()
    recorder.remember("r", "3", first)
    if first is not None:
        first.fill(first.flat[-1])  # the answer's array changes later: what was kept stays
    found = recorder.answered("r")
    assert found == ("3", expected)
    assert [type(v) for v in found[1]] == [type(v) for v in expected]


def test_a_label_for_a_one_row_answer_counts_as_its_rows_do() -> None:
    recorder = Recorder(["3"])
    recorder.remember("label", "3", np.array(["cat"], dtype=object))
    recorder.remember("score", "3", np.array([2.5]))
    assert recorder.observe_label("label", 0, "cat") and recorder.observe_label("score", 0, 2.0)
    assert not recorder.observe_label("label", 1, "cat")
    arm = recorder.stats.arms["3"]
    assert (arm.labelled, arm.correct, arm.residual_n, arm.abs_err_sum) == (1, 1, 1, 0.5)


def test_bad_route_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="header or an input"):
        _route({"3": 100}, sticky_header="x", sticky_input="y")
    with pytest.raises(ConfigError, match="shadow fraction"):
        _route({"3": 100}, shadow=FakeVersion("5"), shadow_fraction=0)
    with pytest.raises(ConfigError, match="max_pending"):
        Recorder(["3"], max_pending=0)
    with pytest.raises(InvalidInputError, match="sum to 100"):
        Split((("3", 90.0),))


def test_a_replaced_version_is_replaced_in_its_deployments_too() -> None:
    arms = {"3": FakeVersion("3"), "4": FakeVersion("4")}
    shadow = FakeVersion("5")
    route = _route({"3": 50, "4": 50}, arms=arms, shadow=shadow)
    plane = _plane(route, models=[arms["3"]])
    fresh, fresh_shadow = FakeVersion("3"), FakeVersion("5")
    plane.replace(arms["3"], fresh)
    plane.replace(shadow, fresh_shadow)
    now = plane.deployment("fraud-prod")
    assert now is not None and now is not route
    assert now.arms == {"3": fresh, "4": arms["4"]} and now.shadow is fresh_shadow
    assert now.recorder is route.recorder  # the counts of the revision go on
    assert plane.get("fraud", "3") is fresh  # the plain model too
    plane.replace(FakeVersion("7"), FakeVersion("7"))  # not served: nothing changes
    assert plane.deployment("fraud-prod") is now
