"""A merged call that crashes, hangs or exhausts its replica is split in halves until the culprit is
alone: only the culprit's caller sees the failure, each innocent request gets its own rows.

The replica is a fake that fails any call holding a poison id with the error the pool raises for
that fault; runs are on a virtual clock (``virtual_clock.py``), so nothing depends on timing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from virtual_clock import run_virtual

from seaway.errors import (
    CallTimeoutError,
    InferenceTimeoutError,
    ModelCrashedError,
    ModelOutOfMemoryError,
    SeawayError,
)
from seaway.runtime.batcher import AdaptiveBatcher


class Faulty:
    """Echoes ids; a call holding a poison id fails with ``fault()`` after ``delay`` seconds
    (``delay`` stands for a call timeout: a hang is found out only when it runs out)."""

    def __init__(
        self, poison: set[int], fault: Callable[[], SeawayError], delay: float = 0.0
    ) -> None:
        self.poison = poison
        self.fault = fault
        self.delay = delay
        self.calls: list[list[int]] = []
        self.running = 0
        self.max_running = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self.gate.wait()
            ids = np.asarray(inputs)[:, 0]
            self.calls.append(ids.tolist())
            if self.poison & set(ids.tolist()):
                await asyncio.sleep(self.delay)
                raise self.fault()
            await asyncio.sleep(0)
            return {"id": ids.copy()}
        finally:
            self.running -= 1


async def merged_batch(
    batcher: AdaptiveBatcher, replica: Faulty, count: int, timeout: float | None = None
) -> list[Any]:
    """``count`` one-row requests (ids 0..count-1), all merged into one call: first requests
    hold every replica at its gate while the others queue."""
    replica.gate.clear()
    blockers = [
        asyncio.ensure_future(batcher.submit(np.array([[-1 - i]]), 1))
        for i in range(batcher.concurrency)
    ]
    await asyncio.sleep(0)
    tasks = [
        asyncio.ensure_future(batcher.submit(np.array([[i]]), 1, timeout)) for i in range(count)
    ]
    await asyncio.sleep(0)
    assert batcher.queued == count
    replica.calls.clear()
    replica.gate.set()
    await asyncio.gather(*blockers)
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def crashed() -> SeawayError:
    return ModelCrashedError("the model crashed on this input (its replica exited with code 1)")


def check_answers(results: list[Any], poison: set[int], error: type[Exception]) -> None:
    for i, result in enumerate(results):
        if i in poison:
            assert isinstance(result, error), (i, result)
        else:
            assert not isinstance(result, BaseException), (i, result)
            assert result["id"].tolist() == [i]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_a_crash_is_bisected_down_to_the_culprit(concurrency: int) -> None:
    async def main() -> None:
        replica = Faulty({11}, crashed)
        batcher = AdaptiveBatcher(replica, max_batch_size=16, concurrency=concurrency)
        results = await merged_batch(batcher, replica, 16)
        check_answers(results, {11}, ModelCrashedError)
        assert "exited with code 1" in str(results[11])
        calls = [c for c in replica.calls if min(c) >= 0]  # not the blockers
        # halves, not one request at a time: 16, then 8 + 8, 4 + 4, 2 + 2, 1 + 1
        assert sorted((len(c) for c in calls), reverse=True) == [16, 8, 8, 4, 4, 2, 2, 1, 1]
        assert calls.count([11]) == 1  # the culprit alone: once, never retried
        assert sum(11 in c for c in calls) == 5  # the calls that crashed: one per level
        # the halves ran side by side (the pool decides which replicas they may use)
        assert replica.max_running == 2
        await batcher.close()  # returns once no batch is left running
        assert (batcher.in_flight, batcher.queued) == (0, 0)

    run_virtual(main)


def test_several_culprits_are_each_found_and_the_rest_answered() -> None:
    async def main() -> None:
        poison = {0, 5, 6, 31}
        replica = Faulty(poison, crashed)
        batcher = AdaptiveBatcher(replica, max_batch_size=32, concurrency=2)
        results = await merged_batch(batcher, replica, 32)
        check_answers(results, poison, ModelCrashedError)
        assert all(replica.calls.count([p]) == 1 for p in poison)

    run_virtual(main)


def test_a_hang_is_bisected_and_innocent_requests_answered_within_their_deadline() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()

        def hung() -> SeawayError:
            return CallTimeoutError("the model did not answer within 2 s (its call timeout)")

        replica = Faulty({3}, hung, delay=2.0)  # each call holding id 3 hangs for 2 s
        batcher = AdaptiveBatcher(replica, max_batch_size=8, concurrency=2)
        started = loop.time()
        results = await merged_batch(batcher, replica, 8, timeout=10.0)
        check_answers(results, {3}, CallTimeoutError)
        assert isinstance(results[3], InferenceTimeoutError)  # a 504 to its caller
        # four levels of 2 s each hung on [3]'s part (8, 4, 2, then 1 alone): all within 10 s
        assert loop.time() - started == pytest.approx(8.0, abs=0.01)

    run_virtual(main)


def test_requests_past_their_deadline_are_not_sent_again() -> None:
    async def main() -> None:
        def hung() -> SeawayError:
            return CallTimeoutError("hung")

        replica = Faulty({0}, hung, delay=2.0)
        batcher = AdaptiveBatcher(replica, max_batch_size=8, concurrency=2)
        results = await merged_batch(batcher, replica, 8, timeout=3.0)
        # the first call hung for 2 s; the half holding 0 hung 2 s more, past the deadline of
        # requests 1-3, which were then never sent alone; the other half was answered at once
        assert all(isinstance(r, InferenceTimeoutError) for r in results[:4])
        assert [r["id"].tolist() for r in results[4:]] == [[4], [5], [6], [7]]
        assert all(len(c) != 1 or c[0] not in (1, 2, 3) for c in replica.calls)

    run_virtual(main)


def test_running_out_of_memory_on_a_large_batch_is_answered_from_its_halves() -> None:
    async def main() -> None:
        class Hungry(Faulty):
            async def __call__(self, inputs: Any) -> dict[str, np.ndarray[Any, Any]]:
                if len(inputs) > 4:  # the merged batch is what does not fit
                    self.calls.append(np.asarray(inputs)[:, 0].tolist())
                    raise ModelOutOfMemoryError("the model ran out of memory")
                return await super().__call__(inputs)

        replica = Hungry(set(), crashed)
        batcher = AdaptiveBatcher(replica, max_batch_size=16, concurrency=2)
        results = await merged_batch(batcher, replica, 16)
        check_answers(results, set(), ModelOutOfMemoryError)
        assert sorted(len(c) for c in replica.calls if min(c) >= 0) == [4, 4, 4, 4, 8, 8, 16]
        with pytest.raises(ModelOutOfMemoryError):  # one request alone: nothing to split (503)
            await batcher.submit(np.arange(8).reshape(8, 1), 8)

    run_virtual(main)
