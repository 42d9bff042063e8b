"""The adaptive batcher: every caller gets exactly its own rows, whatever the load or the failures.

Each test runs its own event loop on a virtual clock (``virtual_clock.py``): timers fire exactly
when due, whatever the machine's load, so gathering windows are asserted to the millisecond without
a wall clock. Model calls yield with ``sleep(0)`` a seeded random number of times instead of
sleeping, so interleavings vary but runs repeat exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from virtual_clock import run_virtual

from seaway.errors import (
    InferenceTimeoutError,
    InvalidInputError,
    ModelUnavailableError,
    PredictionError,
    ServerBusyError,
)
from seaway.runtime.batcher import AdaptiveBatcher

KINDS = ["frame", "array", "dict"]


def make_input(kind: str, ids: np.ndarray[Any, Any]) -> Any:
    if kind == "frame":
        return pd.DataFrame({"id": ids, "x": ids * 0.5})
    if kind == "array":
        return np.stack([ids, ids * 2], axis=1)
    return {"id": ids, "x": np.stack([ids * 0.5, ids * 0.25], axis=1)}


def ids_of(inputs: Any) -> np.ndarray[Any, Any]:
    if isinstance(inputs, pd.DataFrame):
        return inputs["id"].to_numpy()
    if isinstance(inputs, dict):
        return np.asarray(inputs["id"])
    return np.asarray(inputs)[:, 0]


class Echo:
    """A replica that echoes row ids; records batch sizes and how many calls overlap."""

    def __init__(self, seed: int = 0, poison: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.poison = poison
        self.batches: list[list[int]] = []
        self.running = 0
        self.max_running = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self, inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            if self.gate is not None:
                await self.gate.wait()
            for _ in range(self.rng.randint(0, 3)):
                await asyncio.sleep(0)
            ids = ids_of(inputs)
            self.batches.append(ids.tolist())
            if self.poison is not None and self.poison in ids:
                raise ValueError(f"row {self.poison} is poison")
            return {"id": ids.copy(), "double": ids * 2}
        finally:
            self.running -= 1


def run(main: Callable[[], Awaitable[None]]) -> None:
    run_virtual(main, timeout=10)


async def submit_ids(batcher: AdaptiveBatcher, kind: str, ids: list[int]) -> list[int]:
    array = np.array(ids, dtype=np.int64)
    outputs = await batcher.submit(make_input(kind, array), len(ids))
    assert (outputs["double"] == outputs["id"] * 2).all()
    return list(outputs["id"].tolist())


def id_groups(count: int, seed: int = 1) -> list[list[int]]:
    """``count`` requests of 1-5 rows each, every row a unique id."""
    rng = random.Random(seed)
    groups, next_id = [], 0
    for _ in range(count):
        size = rng.randint(1, 5)
        groups.append(list(range(next_id, next_id + size)))
        next_id += size
    return groups


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("concurrency", [1, 3])
def test_each_caller_gets_exactly_its_rows_under_heavy_concurrency(
    kind: str, concurrency: int
) -> None:
    async def main() -> None:
        echo = Echo(seed=concurrency)
        sizes: list[tuple[int, int]] = []
        batcher = AdaptiveBatcher(
            echo,
            max_batch_size=16,
            max_queue=5000,
            concurrency=concurrency,
            on_batch=lambda rows, requests: sizes.append((rows, requests)),
        )
        groups = id_groups(2000)
        results = await asyncio.gather(*(submit_ids(batcher, kind, g) for g in groups))
        assert results == groups
        assert max(len(batch) for batch in echo.batches) <= 16
        assert max(rows for rows, _ in sizes) <= 16
        assert echo.max_running == concurrency
        assert sum(requests for _, requests in sizes) / len(sizes) > 2  # batches did form
        assert batcher.queued == 0
        assert batcher.in_flight == 0

    run(main)


def test_a_lone_request_at_an_idle_model_goes_at_once() -> None:
    async def started_after_yields(max_latency_ms: float) -> bool:
        echo = Echo()
        batcher = AdaptiveBatcher(echo, max_batch_size=8, max_latency_ms=max_latency_ms)
        task = asyncio.ensure_future(submit_ids(batcher, "array", [1]))
        for _ in range(3):
            await asyncio.sleep(0)
        started = echo.max_running > 0
        assert await task == [1]
        return started

    async def main() -> None:
        assert await started_after_yields(0)
        assert await started_after_yields(50)  # no load: nothing to gather, no wait

    run(main)


async def _gated_first(batcher: AdaptiveBatcher, echo: Echo) -> asyncio.Future[list[int]]:
    """Request [1] running on the (only) replica, held there until ``echo.gate`` is set."""
    echo.gate = asyncio.Event()
    first = asyncio.ensure_future(submit_ids(batcher, "array", [1]))
    while not echo.running:
        await asyncio.sleep(0)
    return first


def test_a_freed_replica_gathers_while_requests_keep_arriving() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        echo = Echo()
        batcher = AdaptiveBatcher(echo, max_batch_size=8, max_latency_ms=2_000, quiet_ms=60)
        first = await _gated_first(batcher, echo)
        queued = [asyncio.ensure_future(submit_ids(batcher, "array", [i])) for i in (2, 3)]
        await asyncio.sleep(0.01)
        assert echo.gate is not None
        echo.gate.set()  # [1] is answered; [2] and [3] waited for the replica: we are under load
        assert await first == [1]
        freed = loop.time()
        for i in (4, 5):  # each arrives within the quiet period, so the gathering goes on
            await asyncio.sleep(0.04)
            queued.append(asyncio.ensure_future(submit_ids(batcher, "array", [i])))
        assert await asyncio.gather(*queued) == [[2], [3], [4], [5]]
        assert echo.batches == [[1], [2, 3, 4, 5]]
        # two arrivals 40 ms apart, then a lull of quiet_ms (virtual time: exact)
        assert loop.time() - freed == pytest.approx(0.04 + 0.04 + 0.06, abs=1e-6)

        # the last batch merged several requests: a request to the idle model gathers too
        late = asyncio.ensure_future(submit_ids(batcher, "array", [6]))
        await asyncio.sleep(0.02)
        assert echo.batches[-1] == [2, 3, 4, 5]  # [6] is waiting for company
        assert await submit_ids(batcher, "array", [7]) == [7]
        assert await late == [6]
        assert echo.batches[-1] == [6, 7]

    run(main)


def test_gathering_stops_at_a_full_batch_or_at_max_latency() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        # a full batch leaves at once, however long the quiet period
        echo = Echo()
        full = AdaptiveBatcher(echo, max_batch_size=4, max_latency_ms=60_000, quiet_ms=60_000)
        first = await _gated_first(full, echo)
        waiting = [asyncio.ensure_future(submit_ids(full, "array", [i])) for i in (2, 3)]
        await asyncio.sleep(0)
        assert echo.gate is not None
        echo.gate.set()
        await first
        waiting += [asyncio.ensure_future(submit_ids(full, "array", [i])) for i in (4, 5)]
        assert await asyncio.wait_for(asyncio.gather(*waiting), 2) == [[2], [3], [4], [5]]
        assert echo.batches == [[1], [2, 3, 4, 5]]

        # requests that never stop arriving cannot hold a batch past max_latency_ms
        echo = Echo()
        busy = AdaptiveBatcher(echo, max_batch_size=1000, max_latency_ms=150, quiet_ms=60_000)
        first = await _gated_first(busy, echo)
        waiting = [asyncio.ensure_future(submit_ids(busy, "array", [2]))]
        await asyncio.sleep(0)
        echo.gate.set()
        await first
        freed = loop.time()
        while len(echo.batches) < 2:
            waiting.append(asyncio.ensure_future(submit_ids(busy, "array", [len(waiting) + 2])))
            await asyncio.sleep(0.01)
        # it left at max_latency_ms, seen at the next 10 ms step (virtual time: exact)
        assert 0.15 - 1e-6 <= loop.time() - freed <= 0.16 + 1e-6
        assert len(echo.batches[1]) == 1 + 15  # [2], and arrivals at 0, 10, ..., 140 ms
        await asyncio.gather(*waiting)

    run(main)


def test_no_gathering_when_max_latency_is_zero() -> None:
    async def main() -> None:
        echo = Echo()
        batcher = AdaptiveBatcher(echo, max_batch_size=8, max_latency_ms=0)
        first = await _gated_first(batcher, echo)
        queued = [asyncio.ensure_future(submit_ids(batcher, "array", [i])) for i in (2, 3)]
        await asyncio.sleep(0)
        assert echo.gate is not None
        echo.gate.set()
        await first
        for _ in range(5):
            await asyncio.sleep(0)
        assert echo.batches == [[1], [2, 3]]  # dispatched as soon as the replica freed
        await asyncio.gather(*queued)

    run(main)


def test_batch_size_one_disables_batching_and_big_requests_go_alone() -> None:
    async def main() -> None:
        echo = Echo()
        single = AdaptiveBatcher(echo, max_batch_size=1, concurrency=1)
        groups = [[i] for i in range(20)]
        assert await asyncio.gather(*(submit_ids(single, "array", g) for g in groups)) == groups
        assert all(len(batch) == 1 for batch in echo.batches)

        echo = Echo()
        batcher = AdaptiveBatcher(echo, max_batch_size=4)
        groups = [[0], list(range(1, 11)), [11], [12]]
        assert await asyncio.gather(*(submit_ids(batcher, "frame", g) for g in groups)) == groups
        assert list(range(1, 11)) in echo.batches  # larger than max_batch_size: alone, unsplit

    run(main)


def test_full_queue_sheds_load_with_retry_after() -> None:
    async def main() -> None:
        echo = Echo()
        echo.gate = asyncio.Event()
        batcher = AdaptiveBatcher(echo, max_batch_size=2, max_queue=3)
        tasks = [asyncio.ensure_future(submit_ids(batcher, "array", [i])) for i in range(4)]
        await asyncio.sleep(0)
        assert (batcher.in_flight, batcher.queued) == (1, 3)
        with pytest.raises(ServerBusyError) as caught:
            await batcher.submit(make_input("array", np.array([9])), 1)
        assert caught.value.retry_after > 0
        assert "limit" in str(caught.value)
        echo.gate.set()
        assert await asyncio.gather(*tasks) == [[0], [1], [2], [3]]

    run(main)


def test_a_poison_row_fails_only_its_caller() -> None:
    async def main() -> None:
        echo = Echo(poison=13)
        batcher = AdaptiveBatcher(echo, max_batch_size=32, concurrency=2)
        groups = id_groups(300)
        results = await asyncio.gather(
            *(submit_ids(batcher, "dict", g) for g in groups), return_exceptions=True
        )
        for group, result in zip(groups, results, strict=True):
            if 13 in group:
                assert isinstance(result, PredictionError)
                assert "ValueError: row 13 is poison" in str(result)
            else:
                assert result == group

    run(main)


def test_seaway_errors_pass_unchanged_and_replica_errors_are_not_retried() -> None:
    async def main() -> None:
        calls = []

        async def failing(inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
            calls.append(len(inputs))
            await asyncio.sleep(0)
            raise error

        error: Exception = InvalidInputError("bad value in column x")
        batcher = AdaptiveBatcher(failing, max_batch_size=8)
        results = await asyncio.gather(
            *(submit_ids(batcher, "array", [i]) for i in range(5)), return_exceptions=True
        )
        assert all(result is error for result in results)
        assert calls == [1, 4, 1, 1, 1, 1]  # the merged batch was retried one by one

        calls.clear()
        error = ModelUnavailableError("replica 1 died")
        results = await asyncio.gather(
            *(submit_ids(batcher, "array", [i]) for i in range(5)), return_exceptions=True
        )
        assert all(result is error for result in results)
        assert calls == [1, 4]  # a dead replica is not hammered with retries

    run(main)


def test_cancelled_and_timed_out_callers_leave_the_others_correct() -> None:
    async def main() -> None:
        echo = Echo()
        echo.gate = asyncio.Event()
        batcher = AdaptiveBatcher(echo, max_batch_size=4, max_queue=100)
        groups = [[i] for i in range(40)]
        tasks = [asyncio.ensure_future(submit_ids(batcher, "frame", g)) for g in groups]
        timed = asyncio.ensure_future(asyncio.wait_for(submit_ids(batcher, "frame", [100]), 0.01))
        for _ in range(3):  # wait_for starts its own inner task
            await asyncio.sleep(0)
        assert (batcher.in_flight, batcher.queued) == (1, 40)
        # the first went alone, in its own task: its model call is cancelled with it (a replica
        # keeps its slot until the child answers, see test_pool), and the next batch goes
        tasks[0].cancel()
        for task in tasks[5::3]:  # queued: removed before reaching the model
            task.cancel()
        await asyncio.sleep(0)
        with pytest.raises(TimeoutError):
            await timed
        assert batcher.in_flight == 1
        assert batcher.queued == 40 - 1 - len(tasks[5::3]) - 4  # timed out, cancelled, [1-4]
        echo.gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        cancelled = {0} | set(range(5, 40, 3))
        for i, result in enumerate(results):
            if i in cancelled:
                assert isinstance(result, asyncio.CancelledError)
            else:
                assert result == [i]
        sent = {row for batch in echo.batches for row in batch}
        assert sent.isdisjoint(cancelled - {0}) and 100 not in sent
        assert await submit_ids(batcher, "frame", [7, 8]) == [7, 8]  # still serving
        assert (batcher.in_flight, batcher.queued) == (0, 0)

    run(main)


def test_the_deadline_fails_queued_and_dispatched_requests_and_spares_the_rest() -> None:
    async def main() -> None:
        echo = Echo()
        first, second = asyncio.Event(), asyncio.Event()
        echo.gate = first
        batcher = AdaptiveBatcher(echo, max_batch_size=2, max_queue=100, name="model 'm' version 3")

        def submit(row: int, timeout: float | None) -> asyncio.Future[Any]:
            return asyncio.ensure_future(batcher.submit(np.array([[row, 0]]), 1, timeout))

        blocker = submit(0, None)  # alone, at once
        dispatched, patient, queued, last = (
            submit(1, 0.2),
            submit(2, None),
            submit(9, 0.05),
            submit(3, None),
        )
        await asyncio.sleep(0)
        assert (batcher.in_flight, batcher.queued) == (1, 4)
        echo.gate = second
        first.set()
        assert (await blocker)["id"].tolist() == [0]
        await asyncio.sleep(0)
        assert echo.running == 1 and batcher.queued == 2  # [1, 2] went together
        message = r"model 'm' version 3 did not answer within (0.05|0.2) s \(its timeout\)"
        with pytest.raises(InferenceTimeoutError, match=message):
            await queued
        assert batcher.queued == 1  # it left the queue when its deadline passed
        with pytest.raises(InferenceTimeoutError, match=message):
            await dispatched  # its batch is still running
        second.set()
        assert (await patient)["id"].tolist() == [2]
        assert (await last)["id"].tolist() == [3]
        assert echo.batches == [[0], [1, 2], [3]]
        assert (await submit(5, 5.0))["id"].tolist() == [5]  # answered in time, alone
        echo.gate = asyncio.Event()
        with pytest.raises(InferenceTimeoutError, match=message):  # alone and hung: the same
            await submit(6, 0.05)
        assert (batcher.in_flight, batcher.queued) == (0, 0)

    run(main)


def test_many_cancellations_keep_the_queue_compact() -> None:
    async def main() -> None:
        echo = Echo()
        echo.gate = asyncio.Event()
        batcher = AdaptiveBatcher(echo, max_batch_size=8, max_queue=10)
        blocker = asyncio.ensure_future(submit_ids(batcher, "array", [0]))
        for _ in range(100):  # a storm of timeouts while the replica hangs
            tasks = [asyncio.ensure_future(submit_ids(batcher, "array", [i])) for i in range(10)]
            await asyncio.sleep(0)
            assert batcher.queued == 10  # cancelled requests no longer count against the limit
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert batcher.queued == 0
        assert len(batcher._queue) <= 65
        echo.gate.set()
        assert await blocker == [0]
        assert await submit_ids(batcher, "array", [5]) == [5]

    run(main)


def test_unmergeable_requests_go_in_separate_batches() -> None:
    async def main() -> None:
        calls: list[tuple[Any, ...]] = []

        async def echo(inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
            await asyncio.sleep(0)
            if isinstance(inputs, pd.DataFrame):
                calls.append((*inputs.columns, len(inputs)))
                return {"out": inputs.iloc[:, 0].to_numpy()}
            calls.append((inputs.dtype.name, inputs.shape))
            return {"out": inputs[:, 0]}

        batcher = AdaptiveBatcher(echo, max_batch_size=64)
        ints = np.arange(6, dtype=np.int64).reshape(3, 2)
        requests: list[tuple[Any, int]] = [
            (ints, 3),  # finds the replica idle: goes alone
            (ints + 10, 3),
            (ints + 20, 3),
            (ints.astype(np.float32), 3),  # another dtype
            (ints.astype(np.float32), 3),
            (np.arange(9).reshape(3, 3), 3),  # another trailing shape
            (pd.DataFrame({"a": [1, 2]}), 2),
            (pd.DataFrame({"a": [3]}), 1),
            (pd.DataFrame({"b": [4]}), 1),  # another column set
            (ints[:2], 3),  # claims 3 rows but has 2: alone, so it shifts nobody's rows
            (ints + 30, 3),
        ]
        results = await asyncio.gather(*(batcher.submit(x, n) for x, n in requests))
        assert [r["out"].tolist() for r in results] == [
            [0, 2, 4],
            [10, 12, 14],
            [20, 22, 24],
            [0, 2, 4],
            [0, 2, 4],
            [0, 3, 6],
            [1, 2],
            [3],
            [4],
            [0, 2],
            [30, 32, 34],
        ]
        assert results[3]["out"].dtype == np.float32
        assert calls == [
            ("int64", (3, 2)),
            ("int64", (6, 2)),
            ("float32", (6, 2)),
            ("int64", (3, 3)),
            ("a", 3),
            ("b", 1),
            ("int64", (2, 2)),
            ("int64", (3, 2)),
        ]

    run(main)


def test_aggregate_outputs_fall_back_to_one_request_per_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        calls: list[int] = []

        async def total(inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
            calls.append(len(inputs))
            await asyncio.sleep(0)
            return {"sum": np.asarray(inputs.sum())}

        batcher = AdaptiveBatcher(total, max_batch_size=32, name="summer")
        groups = [[i, i + 1] for i in range(0, 20, 2)]
        for _ in range(2):
            results = await asyncio.gather(*(batcher.submit(np.array(g), 2) for g in groups))
            assert [int(r["sum"]) for r in results] == [sum(g) for g in groups]
        assert calls[:2] == [2, 18]  # one merged attempt, then never again
        assert all(rows == 2 for rows in calls[2:])
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1 and "summer" in warnings[0].getMessage()

    with caplog.at_level(logging.WARNING, logger="seaway.runtime.batcher"):
        run(main)


@pytest.mark.parametrize("drain", [True, False])
def test_close_drains_or_fails_queued_requests(drain: bool) -> None:
    async def main() -> None:
        echo = Echo()
        echo.gate = asyncio.Event()
        batcher = AdaptiveBatcher(echo, max_batch_size=2)
        tasks = [asyncio.ensure_future(submit_ids(batcher, "array", [i])) for i in range(5)]
        await asyncio.sleep(0)
        closing = asyncio.ensure_future(batcher.close(drain=drain))
        await asyncio.sleep(0)
        with pytest.raises(ModelUnavailableError):
            await batcher.submit(make_input("array", np.array([9])), 1)
        assert not closing.done()  # waits for the batch already on the replica
        echo.gate.set()
        await closing
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert results[0] == [0]
        if drain:
            assert results[1:] == [[1], [2], [3], [4]]
        else:
            assert all(isinstance(r, ModelUnavailableError) for r in results[1:])
        assert (batcher.in_flight, batcher.queued) == (0, 0)

    run(main)


def test_concurrency_follows_replica_scaling() -> None:
    async def main() -> None:
        echo = Echo()
        echo.gate = asyncio.Event()
        batcher = AdaptiveBatcher(echo, max_batch_size=2, concurrency=0)
        tasks = [asyncio.ensure_future(submit_ids(batcher, "array", [i])) for i in range(12)]
        await asyncio.sleep(0)
        assert (batcher.in_flight, batcher.queued) == (0, 12)  # no replica yet: requests wait
        batcher.set_concurrency(1)
        assert (batcher.in_flight, batcher.queued) == (1, 10)
        batcher.set_concurrency(3)
        assert (batcher.in_flight, batcher.queued) == (3, 6)
        batcher.set_concurrency(1)  # scaled down: running batches finish, then one at a time
        echo.gate.set()
        assert await asyncio.gather(*tasks) == [[i] for i in range(12)]
        assert echo.max_running == 3
        echo.max_running = 0
        assert await asyncio.gather(*(submit_ids(batcher, "array", [i]) for i in range(9)))
        assert echo.max_running == 1
        with pytest.raises(ValueError, match="concurrency"):
            batcher.set_concurrency(-1)

    run(main)
