"""An event loop on virtual time, for tests of code that waits on timers (``call_later``,
``asyncio.sleep``, ``loop.time()``).

When nothing is ready to run, the loop does not sleep until its next timer: its clock jumps there.
Timers fire in the same order as on a real loop, never early and never late, however loaded the
machine is, so a test can assert what happens at 60 ms without being at the mercy of the scheduler.
Only waits on real I/O (a worker thread's answer, the loop's shutdown) still wait for real.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0


class _JumpingSelector(selectors.DefaultSelector):  # type: ignore[misc,valid-type]
    """Answers ready I/O at once; with none, moves the clock by the wait instead of waiting."""

    def __init__(self, clock: _Clock) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        events: list[Any] = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:  # no timer at all: only I/O can wake the loop
            return list(super().select(None))
        self._clock.now += timeout
        return events


class VirtualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._clock = _Clock()
        super().__init__(selector=_JumpingSelector(self._clock))

    def time(self) -> float:
        return self._clock.now


def run_virtual(main: Callable[[], Awaitable[T]], timeout: float = 60.0) -> T:
    """Run ``main()`` on a virtual clock; past ``timeout`` virtual seconds it fails (a test that
    waits for something that never comes fails at once instead of hanging)."""

    async def bounded() -> T:
        return await asyncio.wait_for(main(), timeout)  # type: ignore[arg-type]

    with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
        return runner.run(bounded())
