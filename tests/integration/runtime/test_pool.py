"""Replica processes: isolation, restarts, retries, timeouts, with real child processes."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import seaway
from seaway.errors import (
    InferenceTimeoutError,
    InvalidInputError,
    ModelCrashedError,
    ModelLoadError,
    PredictionError,
)
from seaway.runtime.pool import PoolState, ReplicaPool
from seaway.runtime.replica import ReplicaSpec


class Sleepy(seaway.PythonModel):
    """Echoes its input; a first column of -1 makes it sleep, of -2 makes it crash the process, of
    -4 makes it take half a second."""

    def predict(self, inputs: Any) -> Any:
        x = np.asarray(inputs)
        if (x[:, 0] == -1).any():
            time.sleep(30)
        if (x[:, 0] == -4).any():
            time.sleep(0.5)
        if (x[:, 0] == -2).any():
            os._exit(7)
        if (x[:, 0] == -3).any():
            raise ValueError("bad row")
        return x * 2


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pool") / "pkg"
    seaway.save_model(Sleepy(), path, sample_input=np.ones((2, 2)))
    return path


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


def test_calls_are_answered_by_replicas_in_other_processes(package: Path) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=2)
        await pool.start()
        try:
            assert pool.state is PoolState.READY
            assert os.getpid() not in pool.pids and len(set(pool.pids)) == 2
            results = await asyncio.gather(
                *(pool.call(np.full((1, 2), float(i)), ["predict"]) for i in range(20))
            )
            for i, result in enumerate(results):
                np.testing.assert_array_equal(result["predict"], np.full((1, 2), 2.0 * i))
        finally:
            await pool.stop()
        assert pool.state is PoolState.STOPPED

    run(main())


def test_a_crash_costs_one_restart_and_is_not_retried(package: Path) -> None:
    async def main() -> None:
        restarts: list[int] = []
        pool = ReplicaPool(
            ReplicaSpec(str(package)), replicas=2, on_restart=lambda: restarts.append(1)
        )
        await pool.start()
        try:
            before = set(pool.pids)
            victim = before.pop()
            os.kill(victim, signal.SIGKILL)  # dies idle: the monitor restarts it
            for _ in range(200):
                await asyncio.sleep(0.05)
                if pool.healthy == 2 and victim not in pool.pids:
                    break
            assert victim not in pool.pids and pool.healthy == 2
            # a request that crashes its replica by itself: a clear error, never a second replica
            survivors = set(pool.pids)
            with pytest.raises(ModelCrashedError, match="exited with code 7.*not retried"):
                await pool.call(np.array([[-2.0, 0.0]]), ["predict"])
            for _ in range(200):
                await asyncio.sleep(0.05)
                if pool.healthy == 2 and set(pool.pids) != survivors:
                    break
            assert pool.healthy == 2
            assert len(survivors & set(pool.pids)) == 1  # the other replica was never touched
            assert len(restarts) == 2  # the idle death, then the crash: one restart each
            np.testing.assert_array_equal(
                (await pool.call(np.ones((1, 2)), ["predict"]))["predict"], 2 * np.ones((1, 2))
            )
        finally:
            await pool.stop()

    run(main())


def test_a_hung_call_times_out_and_its_replica_is_replaced(package: Path) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=1, timeout=1.0)
        await pool.start()
        try:
            [hung] = pool.pids
            with pytest.raises(InferenceTimeoutError, match="within 1 s"):
                await pool.call(np.array([[-1.0, 0.0]]), ["predict"])
            result = await pool.call(np.ones((1, 2)), ["predict"])  # waits for the restart
            np.testing.assert_array_equal(result["predict"], 2 * np.ones((1, 2)))
            assert pool.pids != [hung]
        finally:
            await pool.stop()

    run(main())


async def cancel_while_predicting(pool: ReplicaPool, row: list[float]) -> None:
    """Start a call of ``row``, then cancel its caller while the child is predicting."""
    call = asyncio.ensure_future(pool.call(np.array([row]), ["predict"]))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


def test_a_cancelled_callers_answer_never_reaches_the_next_call(package: Path) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=1)
        await pool.start()
        try:
            [pid] = pool.pids
            await cancel_while_predicting(pool, [-4.0, 1.0])  # takes half a second
            started = time.monotonic()
            result = await pool.call(np.array([[5.0, 5.0]]), ["predict"])
            np.testing.assert_array_equal(result["predict"], [[10.0, 10.0]])  # not [[-8, 2]]
            assert time.monotonic() - started > 0.2  # it waited for the child to finish
            assert pool.pids == [pid] and pool.restarts == 0  # nothing was killed
            again = await pool.call(np.array([[1.0, 2.0]]), ["predict"])
            np.testing.assert_array_equal(again["predict"], [[2.0, 4.0]])
        finally:
            await pool.stop()

    run(main())


def test_a_hung_call_whose_caller_left_is_still_killed_at_its_timeout(package: Path) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=1, timeout=1.0)
        await pool.start()
        try:
            [hung] = pool.pids
            await cancel_while_predicting(pool, [-1.0, 0.0])  # hangs
            result = await pool.call(np.ones((1, 2)), ["predict"])  # waits for the restart
            np.testing.assert_array_equal(result["predict"], 2 * np.ones((1, 2)))
            assert pool.pids != [hung] and pool.restarts == 1
        finally:
            await pool.stop()

    run(main())


def test_model_errors_are_reported_not_fatal(package: Path) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=1)
        await pool.start()
        try:
            [pid] = pool.pids
            with pytest.raises(PredictionError, match="ValueError: bad row"):
                await pool.call(np.array([[-3.0, 0.0]]), ["predict"])
            with pytest.raises(InvalidInputError, match="unknown output"):
                await pool.call(np.ones((1, 2)), ["nope"])
            assert pool.pids == [pid]
        finally:
            await pool.stop()

    run(main())


def test_a_package_that_cannot_load_fails_start_with_the_reason(
    tmp_path: Path, package: Path
) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(tmp_path / "missing")), replicas=2)
        with pytest.raises(ModelLoadError, match="not a folder holding a Seaway package"):
            await pool.start()
        assert pool.state is PoolState.STOPPED

    run(main())
