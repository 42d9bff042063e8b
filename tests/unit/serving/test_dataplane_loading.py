"""A server process still loading its start-up models makes requests for them wait, not 404.

With ``--workers N`` worker 0 takes connections while it loads (to answer probes), and a balancer
may send traffic as soon as another worker says ready: such a request once got 404 "not served
here" from worker 0 (issue 9; test_workers and the alert tests met it under load)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from seaway.errors import ModelUnavailableError, NotFoundError
from seaway.serving.dataplane import DataPlane


class _Options:
    timeout = None


@dataclass
class _Served:
    name: str = "m"
    version: str = "1"
    logger: Any = None
    log_proba: bool = False
    ready: bool = True
    refusing: bool = False
    options: Any = _Options

    def native_data(self, data: Any) -> tuple[Any, int]:
        return np.asarray(data), len(data)

    def requested_outputs(self, requested: Any) -> list[str]:
        return list(requested) or ["predict"]

    async def predict(self, native: Any, rows: int, outputs: Any, timeout: Any) -> dict[str, Any]:
        return {"predict": np.ones(rows)}


def test_a_request_during_loading_waits_for_the_model_and_is_answered() -> None:
    async def scenario() -> tuple[bool, dict[str, Any]]:
        plane = DataPlane()
        plane.loading()
        waiting = asyncio.ensure_future(plane.predict_native("m", None, [[1.0]]))
        for _ in range(5):  # it has run as far as it can: waiting for the load
            await asyncio.sleep(0)
        waited = not waiting.done()
        plane.publish([_Served()])  # type: ignore[list-item]
        plane.loaded()
        return waited, (await waiting)[1]

    waited, answer = asyncio.run(scenario())
    assert waited
    assert answer["predict"].tolist() == [1.0]


def test_a_model_not_among_those_loaded_is_a_404_once_loading_ends() -> None:
    async def scenario() -> None:
        plane = DataPlane()
        plane.loading()
        waiting = asyncio.ensure_future(plane.predict_native("other", None, [[1.0]]))
        await asyncio.sleep(0)
        plane.publish([_Served()])  # type: ignore[list-item]
        plane.loaded()
        with pytest.raises(NotFoundError, match="not served here"):
            await waiting

    asyncio.run(scenario())


def test_without_loading_an_unknown_model_is_a_404_at_once() -> None:
    async def scenario() -> None:
        plane = DataPlane()
        plane.publish([_Served()])  # type: ignore[list-item]
        with pytest.raises(NotFoundError):
            await plane.predict_native("other", None, [[1.0]])

    asyncio.run(scenario())


def test_a_load_longer_than_the_request_timeout_is_a_503() -> None:
    async def scenario() -> None:
        plane = DataPlane(request_timeout=0.01)
        plane.loading()
        with pytest.raises(ModelUnavailableError, match="not loaded yet"):
            await plane.predict_native("m", None, [[1.0]])

    asyncio.run(scenario())


def test_route_as_the_transports_use_it_waits_for_the_load_too() -> None:
    """The REST and gRPC endpoints look the model up (``route``) before they read the body."""

    async def scenario() -> tuple[bool, str]:
        plane = DataPlane()
        plane.loading()
        waiting = asyncio.ensure_future(plane.route("m"))
        for _ in range(5):
            await asyncio.sleep(0)
        waited = not waiting.done()
        plane.publish([_Served()])  # type: ignore[list-item]
        plane.loaded()
        return waited, (await waiting).name

    assert asyncio.run(scenario()) == (True, "m")
    with pytest.raises(NotFoundError):  # not loading: the 404 at once
        asyncio.run(DataPlane().route("m"))
