"""A deployment's shadow: copies after the answer, bounded, compared, never seen by a client."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from deployfakes import FakeVersion, request

from seaway.errors import NotFoundError
from seaway.routing.policy import Split
from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_route import DeploymentRoute


def _plane(primary: FakeVersion, shadow: FakeVersion, **kwargs: Any) -> tuple[DataPlane, Any]:
    route = DeploymentRoute(
        "fraud-prod",
        model="fraud",
        split=Split((("3", 100.0),)),
        arms={"3": primary},
        shadow=shadow,
        rng=random.Random(3),
        **kwargs,
    )
    plane = DataPlane()
    plane.publish([], deployments=[route])
    return plane, route


async def _settle() -> None:
    """Let every task that can run, run (the copies are tasks of their own)."""
    for _ in range(20):
        await asyncio.sleep(0)


def _unhandled(loop: asyncio.AbstractEventLoop) -> list[Any]:
    """What the loop would log as an error nobody handled (a copy's exception leaking)."""
    found: list[Any] = []
    loop.set_exception_handler(lambda _loop, context: found.append(context))
    return found


def test_a_shadow_that_cannot_keep_up_never_delays_the_answer_and_drops_copies() -> None:
    async def scenario() -> tuple[list[Any], Any, int, Any]:
        gate = asyncio.Event()  # the shadow answers only once the gate opens
        shadow = FakeVersion("5", answer=3, gate=gate)
        plane, route = _plane(FakeVersion("3"), shadow, shadow_max_pending=2)
        # every answer comes back while the shadow has answered nothing
        answers = [await plane.infer(request()) for _ in range(5)]
        await _settle()
        pending = route.recorder.pending
        before = route.recorder.stats.shadow.merge(type(route.recorder.stats.shadow)())
        gate.set()
        await _settle()
        return answers, before, pending, route.recorder.stats.shadow

    answers, before, pending, after = asyncio.run(scenario())
    assert [(a.model_version, a.outputs[0].data.tolist()) for a in answers] == [("3", [3])] * 5
    assert pending == 2
    assert (before.copies, before.dropped, before.compared) == (2, 3, 0)
    assert (after.copies, after.dropped, after.errors) == (2, 3, 0)
    assert (after.compared, after.agreed) == (2, 2)  # the shadow answered as the primary did


def test_a_failing_shadow_never_reaches_the_client() -> None:
    async def scenario() -> tuple[list[Any], Any, list[Any]]:
        leaks = _unhandled(asyncio.get_running_loop())
        plane, route = _plane(FakeVersion("3"), FakeVersion("5", fails=True))
        answers = [await plane.infer(request()) for _ in range(4)]
        await _settle()
        return answers, route.recorder.stats.shadow, leaks

    answers, stats, leaks = asyncio.run(scenario())
    assert [a.model_version for a in answers] == ["3"] * 4
    assert (stats.copies, stats.errors, stats.compared) == (4, 4, 0)
    assert leaks == []


def test_shadow_answers_are_compared_with_the_primarys() -> None:
    async def scenario(primary: Any, shadow: Any) -> Any:
        plane, route = _plane(FakeVersion("3", answer=primary), FakeVersion("5", answer=shadow))
        for _ in range(3):
            await plane.infer(request(rows=2))
        await _settle()
        return route.recorder.stats.shadow

    labels = asyncio.run(scenario(1, 0))  # labels that differ
    assert (labels.compared, labels.agreed, labels.agreement) == (6, 0, 0.0)
    scores = asyncio.run(scenario(0.25, 0.75))  # numbers: how far apart
    assert scores.abs_diff_n == 6 and scores.mean_abs_diff == pytest.approx(0.5)


def test_a_fraction_of_the_traffic_is_copied() -> None:
    async def scenario() -> Any:
        plane, route = _plane(FakeVersion("3"), FakeVersion("5"), shadow_fraction=0.25)
        for _ in range(2000):
            await plane.infer(request())
        await _settle()
        return route.recorder.stats.shadow

    stats = asyncio.run(scenario())
    taken = stats.copies + stats.dropped  # (the loop never waited: most found 64 pending)
    assert 400 < taken < 600  # binomial(2000, 0.25): about 5 standard deviations either side


def test_the_shadow_version_cannot_be_asked_for_and_closing_cancels_its_copies() -> None:
    async def scenario() -> int:
        shadow = FakeVersion("5", gate=asyncio.Event())
        plane, route = _plane(FakeVersion("3"), shadow)
        with pytest.raises(NotFoundError, match="no version '5'"):
            await plane.infer(request(version="5"))
        await plane.infer(request())
        await _settle()
        assert route.recorder.pending == 1
        await route.recorder.close()
        return route.recorder.pending

    assert asyncio.run(scenario()) == 0


def test_a_shadow_with_another_signature_converts_the_request_itself() -> None:
    class Converting(FakeVersion):
        conversions = 0

        def native_inputs(self, tensors: Any) -> tuple[Any, int]:
            Converting.conversions += 1
            return super().native_inputs(tensors)

    async def scenario(signature: Any) -> int:
        Converting.conversions = 0
        shadow = Converting("5", signature=signature)
        plane, _ = _plane(FakeVersion("3"), shadow)
        await plane.infer(request())
        await _settle()
        return Converting.conversions

    assert asyncio.run(scenario(None)) == 0  # the primary's inputs, as they are
    assert asyncio.run(scenario("another")) == 1
