"""One timer for many deadlines: each fires once, on time within the resolution, unless discarded."""

from __future__ import annotations

import asyncio
import logging

import pytest

from seaway.runtime.deadlines import Deadlines


def test_deadlines_fire_in_time_and_discarded_ones_never() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(resolution=0.02)
        fired: dict[str, float] = {}
        start = loop.time()

        def note(name: str) -> None:
            fired[name] = loop.time() - start

        deadlines.add(0.15, note, "late")
        deadlines.add(0.05, note, "soon")
        dropped = deadlines.add(0.05, note, "dropped")
        deadlines.discard(dropped)
        deadlines.discard(dropped)  # twice is harmless
        await asyncio.sleep(0.3)
        assert set(fired) == {"soon", "late"}
        assert 0.05 <= fired["soon"] < 0.05 + 0.1
        assert 0.15 <= fired["late"] < 0.15 + 0.1
        assert len(deadlines) == 0 and deadlines._timer is None  # no timer while nothing waits
        deadlines.add(0.01, note, "again")  # and it starts again
        await asyncio.sleep(0.1)
        assert "again" in fired

    asyncio.run(main())


def test_a_failing_callback_does_not_stop_the_others(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> list[int]:
        deadlines = Deadlines(resolution=0.01)
        got: list[int] = []

        def boom(_: object) -> None:
            raise RuntimeError("boom")

        deadlines.add(0.02, boom, None)
        deadlines.add(0.02, got.append, 1)
        await asyncio.sleep(0.1)
        return got

    with caplog.at_level(logging.ERROR):
        assert asyncio.run(main()) == [1]
    assert "deadline callback failed" in caplog.text
