"""Whose fault a replica's death is, and what the loop never waits for: real replica processes.

- a replica killed from outside (SIGKILL) while holding a call: the call is retried elsewhere;
- a MemoryError in the model: 503 and the replica recycled, not a 400;
- an answer and a cancellation in the same loop turn: the replica is free, not orphaned;
- a start cancelled midway (a pool stopped during a restart) leaves no process behind;
- large frames and killed processes are handled off the event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import seaway
from seaway.errors import ModelCrashedError, ModelOutOfMemoryError
from seaway.runtime.deadlines import Deadlines
from seaway.runtime.pool import ReplicaPool
from seaway.runtime.replica import Replica, ReplicaSpec


class Faulty(seaway.PythonModel):
    """Doubles its input. A first value of -5 raises MemoryError, -7 exits; a second value of 100 or more
    makes it wait until that file exists (a gate the test opens); SEAWAY_TEST_LOAD_GATE, when set,
    makes loading wait for that file."""

    def load(self, context: seaway.ModelContext) -> None:
        gate = os.environ.get("SEAWAY_TEST_LOAD_GATE")
        while gate and not os.path.exists(gate):
            time.sleep(0.05)

    def predict(self, inputs: Any) -> Any:
        x = np.asarray(inputs)
        if x.size and x.ravel()[0] == -5:
            raise MemoryError("cannot allocate 64 GiB")
        if x.size and x.ravel()[0] == -7:
            os._exit(3)
        if x.ndim == 2 and x.shape[1] > 1 and x[0, 1] >= 100:
            gate = Path(os.environ["SEAWAY_TEST_GATE_DIR"]) / str(int(x[0, 1]))
            while not gate.exists():
                time.sleep(0.01)
        return x * 2


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "pkg"
    seaway.save_model(Faulty(), path, sample_input=np.zeros((2, 2)))
    return path


@pytest.fixture
def gates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEAWAY_TEST_GATE_DIR", str(tmp_path))
    return tmp_path


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 120))


async def until(condition: Any, what: str) -> None:
    """Poll ``condition`` (an event: a process state) for up to 60 s."""
    for _ in range(6000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


def test_a_replica_killed_from_outside_mid_call_has_its_call_retried(
    package: Path, gates: Path
) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=2)
        await pool.start()
        try:
            call = asyncio.ensure_future(pool.call(np.array([[1.0, 100.0]]), ["predict"]))
            await until(lambda: any(r.busy for r in pool._replicas), "a replica took the call")
            [victim] = [r for r in pool._replicas if r.busy]
            os.kill(victim.pid, signal.SIGKILL)  # while it waits at the gate: mid-call
            (gates / "100").touch()  # then the retry, on the other replica, may go through
            result = await call
            np.testing.assert_array_equal(result["predict"], [[2.0, 200.0]])
            assert pool.restarts == 1
        finally:
            await pool.stop()

    run(main())


def test_memory_error_is_a_server_failure_and_recycles_the_replica(package: Path) -> None:
    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=1)
        await pool.start()
        try:
            [pid] = pool.pids
            with pytest.raises(ModelOutOfMemoryError, match="MemoryError: cannot allocate"):
                await pool.call(np.array([[-5.0, 0.0]]), ["predict"])
            result = await pool.call(np.ones((1, 2)), ["predict"])  # on a fresh replica
            np.testing.assert_array_equal(result["predict"], 2 * np.ones((1, 2)))
            assert pool.pids != [pid] and pool.restarts == 1
        finally:
            await pool.stop()

    run(main())


def test_an_answer_and_a_cancellation_in_the_same_turn_leave_the_replica_free(
    package: Path,
) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        hung: list[int] = []
        replica = Replica(ReplicaSpec(str(package)), 0, Deadlines())
        replica.on_hung = lambda: hung.append(1)
        await replica.start()
        try:
            call = asyncio.ensure_future(replica.call(np.ones((1, 2)), ["predict"], 0.5))
            await asyncio.sleep(0)  # the call is sent
            fd = replica._channel.read_fd  # type: ignore[union-attr]
            deliver = replica._on_readable

            def answer_then_cancel() -> None:  # both in one loop turn, in that order
                deliver()
                call.cancel()

            loop.remove_reader(fd)
            loop.add_reader(fd, answer_then_cancel)
            with pytest.raises(asyncio.CancelledError):
                await call
            loop.remove_reader(fd)
            loop.add_reader(fd, deliver)
            assert not replica.busy  # it answered: free for the next call, not orphaned
            again = await replica.call(np.full((1, 2), 3.0), ["predict"], 5.0)
            np.testing.assert_array_equal(again["predict"], [[6.0, 6.0]])
            await asyncio.sleep(1.0)  # past the first call's timeout: no hung verdict
            assert hung == [] and replica.alive
        finally:
            await replica.stop()

    run(main())


def test_a_cancelled_start_leaves_no_process_behind(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEAWAY_TEST_LOAD_GATE", str(tmp_path / "never"))

    async def main() -> int:
        replica = Replica(ReplicaSpec(str(package)), 0, Deadlines())
        start = asyncio.ensure_future(replica.start())
        await until(lambda: replica.pid is not None and replica.alive, "the process started")
        start.cancel()  # as a pool stopped during a restart does
        with pytest.raises(asyncio.CancelledError):
            await start
        pid = replica.pid
        assert pid is not None
        return pid

    pid = run(main())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    assert not _running(pid), "the replica of a cancelled start is still running"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def test_kill_reaps_off_the_loop_and_large_frames_round_trip(package: Path) -> None:
    async def main() -> None:
        replica = Replica(ReplicaSpec(str(package)), 0, Deadlines())
        await replica.start()
        try:
            big = np.random.default_rng(0).standard_normal((100_000, 4))  # 3.2 MB each way
            for _ in range(2):  # the second reuses the cached frame start
                result = await replica.call(big, ["predict"], 60.0)
                np.testing.assert_array_equal(result["predict"], big * 2)
            joined: list[threading.Thread] = []
            process = replica._process
            join = process.join

            def recording_join(timeout: float | None = None) -> None:
                joined.append(threading.current_thread())
                join(timeout)

            process.join = recording_join
            replica.kill()
            await until(lambda: bool(joined) and not process.is_alive(), "the process was reaped")
            assert threading.main_thread() not in joined  # never on the loop's thread
        finally:
            await replica.stop()

    run(main())


def test_suspect_calls_never_take_down_the_last_healthy_replica(package: Path) -> None:
    """Parts of a batch that crashed a replica are suspects: each runs only while another healthy
    replica is left, so a poison request never leaves the pool with none (readiness stays true and
    other requests are served meanwhile)."""

    async def main() -> None:
        pool = ReplicaPool(ReplicaSpec(str(package)), replicas=2)
        await pool.start()
        others_healthy: list[int] = []
        schedule = pool._schedule_restart

        def recording(replica: Replica) -> None:  # at each crash: how many others can serve?
            others_healthy.append(
                sum(r.alive and r.index not in pool._restarting for r in pool._replicas)
                - (replica.alive and replica.index not in pool._restarting)
            )
            schedule(replica)

        pool._schedule_restart = recording  # type: ignore[method-assign]
        try:
            poison = np.array([[-7.0, 0.0]])
            crashes = [pool.call(poison, ["predict"], suspect=True) for _ in range(3)]
            served = [pool.call(np.full((1, 2), float(i)), ["predict"]) for i in range(20)]
            results = await asyncio.gather(*crashes, *served, return_exceptions=True)
            assert all(isinstance(r, ModelCrashedError) for r in results[:3])
            for i, result in enumerate(results[3:]):
                np.testing.assert_array_equal(result["predict"], np.full((1, 2), 2.0 * i))
            assert len(others_healthy) == 3 and min(others_healthy) >= 1, others_healthy
        finally:
            await pool.stop()

    run(main())
