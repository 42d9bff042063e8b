"""A traced replica call (the runtime's tracing hook installed): the child process times its own
prediction and the parent records it, for answers and failures alike; untraced calls are left
as they were. Real replica processes; the hook is a stub (the runtime knows no OpenTelemetry)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import seaway
from seaway.errors import ModelOutOfMemoryError, PredictionError
from seaway.runtime import tracing
from seaway.runtime.replica import Replica, ReplicaSpec


class Doubler(seaway.PythonModel):
    """Doubles its input; a first value of -3 raises ValueError, -5 MemoryError."""

    def predict(self, inputs: Any) -> Any:
        x = np.asarray(inputs)
        if x.ravel()[0] == -3:
            raise ValueError("minus three")
        if x.ravel()[0] == -5:
            raise MemoryError("cannot allocate 64 GiB")
        return x * 2


class StubHook:
    """Only its presence matters to the replica."""

    def queued(self) -> object | None:
        return None

    def model_call(self, run: Any, inputs: Any, traces: Any, rows: int) -> Any:
        return run(inputs)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("traced") / "pkg"
    seaway.save_model(Doubler(), path, sample_input=np.zeros((2, 2)))
    return path


@pytest.fixture
def hooked() -> Iterator[None]:
    previous = tracing.install(StubHook())
    yield
    tracing.install(previous)


async def _calls(replica: Replica, *inputs: np.ndarray[Any, Any]) -> list[Any]:
    """Each input as one traced call: its result (or error) and what the replica reported."""
    results = []
    for x in inputs:
        answers: list[tracing.ReplicaCall] = []
        token = tracing.replica_calls.set(answers)
        try:
            result: Any = await replica.call(x, ("predict",), timeout=60)
        except Exception as exc:
            result = exc
        finally:
            tracing.replica_calls.reset(token)
        results.append((result, answers))
    return results


def test_the_child_times_answers_and_failures(package: Path, hooked: None) -> None:
    async def go() -> list[Any]:
        replica = Replica(ReplicaSpec(str(package), trusted=True), 0)
        await replica.start()
        try:
            traced = await _calls(replica, np.ones((2, 2)), np.full((1, 2), -3.0))
            untraced = await replica.call(np.ones((1, 2)), ("predict",), timeout=60)
            oom = await _calls(replica, np.full((1, 2), -5.0))
            return [*traced, untraced, *oom, replica.pid]
        finally:
            replica.kill()

    ok, failed, untraced, oom, pid = asyncio.run(asyncio.wait_for(go(), 120))
    result, (answer,) = ok
    np.testing.assert_array_equal(result["predict"], np.full((2, 2), 2.0))
    assert (answer.index, answer.pid, answer.error) == (0, pid, None)
    assert 0 < answer.started_ns <= answer.ended_ns
    assert pid != os.getpid()

    error, (answer,) = failed
    assert isinstance(error, PredictionError) and "minus three" in str(error)
    assert answer.error == "ValueError: minus three"
    assert answer.started_ns <= answer.ended_ns

    # outside a traced model call (no list to report into) the call goes as it always did
    np.testing.assert_array_equal(untraced["predict"], np.full((1, 2), 2.0))

    error, (answer,) = oom
    assert isinstance(error, ModelOutOfMemoryError)  # answered, then the child left
    assert answer.error is not None and "MemoryError" in answer.error
