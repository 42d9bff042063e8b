"""A pool of replicas of one model version: routing, restarts, retries and timeouts.

- A call goes to an idle healthy replica (the batcher never has more calls in flight than there
  are replicas, so one is idle whenever a batch is dispatched, unless a replica is still finishing
  a call whose caller was cancelled: then the call waits for it).
- A replica that dies is restarted in the background. What happens to the call it held depends on
  whose fault the death was (see ``replica.py``):
  - killed from outside (SIGKILL) or gone before the call reached it: the call is retried once on
    another replica, so such a death costs latency, not answers. If the retry is killed too, the
    caller gets ``ModelUnavailableError`` (503): never silence, never a hang;
  - exited on its own while predicting (an exit code, SIGSEGV, SIGABRT): the inputs crashed it and
    would crash the next replica too, so the call is not retried: ``ModelCrashedError``. For a
    merged batch the batcher then splits it until the culprit is alone (``batcher.py``). Those
    parts are *suspect* calls (``call(..., suspect=True)``): one runs only while another healthy
    replica is left to serve everyone else, so a poison request never takes down the whole pool
    (a pool of one replica has no other to spare).
- A call that outlives ``timeout`` (the *call* timeout, shorter than a request's deadline) kills
  its replica (it is hung or far too slow) and fails with ``CallTimeoutError``; the replica is
  restarted. A ``MemoryError`` in the model fails with ``ModelOutOfMemoryError`` and recycles the
  replica too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Sequence
from enum import StrEnum
from typing import Any

import numpy as np

from seaway.errors import (
    CallTimeoutError,
    ModelCrashedError,
    ModelLoadError,
    ModelOutOfMemoryError,
    ModelUnavailableError,
    ReplicaCrashedError,
    ReplicaDiedError,
    ReplicaTimeoutError,
)
from seaway.runtime.deadlines import Deadlines
from seaway.runtime.replica import Replica, ReplicaSpec

log = logging.getLogger("seaway.runtime.pool")

#: Restarts in a row that fail to load before the pool stops trying.
MAX_FAILED_RESTARTS = 5


class PoolState(StrEnum):
    LOADING = "loading"
    READY = "ready"
    DEGRADED = "degraded"  # some replicas are down and restarting
    FAILED = "failed"
    STOPPED = "stopped"


class ReplicaPool:
    def __init__(
        self,
        spec: ReplicaSpec,
        replicas: int = 1,
        *,
        timeout: float | None = 30.0,
        on_restart: Callable[[], None] | None = None,
    ) -> None:
        if replicas < 1:
            raise ValueError("a pool needs at least one replica")
        self.spec = spec
        self.timeout = timeout
        self._deadlines = Deadlines()
        self._replicas = [self._new_replica(index) for index in range(replicas)]
        #: Callers waiting for a replica to free up (woken in order; each looks again).
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._restarting: set[int] = set()
        #: Replica indexes handed to a caller and not yet released.
        self._reserved: set[int] = set()
        #: Suspect calls running, and those waiting for a replica that may be risked on them.
        self._suspects = 0
        self._suspect_waiters: list[asyncio.Future[None]] = []
        self._failed_restarts = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_restart = on_restart
        self.restarts = 0
        self.state = PoolState.LOADING
        self.error: str | None = None

    def _new_replica(self, index: int) -> Replica:
        replica = Replica(self.spec, index, self._deadlines)
        replica.on_idle = self._on_replica_idle
        replica.on_hung = lambda: self._hung(replica)
        return replica

    def _on_replica_idle(self) -> None:
        """A replica dropped the answer of a call whose caller left: it can take another."""
        self._wake(1)

    @property
    def size(self) -> int:
        return len(self._replicas)

    @property
    def healthy(self) -> int:
        return sum(1 for r in self._replicas if r.alive and r.index not in self._restarting)

    @property
    def pids(self) -> list[int | None]:
        return [r.pid for r in self._replicas]

    async def start(self) -> None:
        """Start every replica; raises ``ModelLoadError`` (and stops them) if any fails."""
        results = await asyncio.gather(*(r.start() for r in self._replicas), return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            self.state = PoolState.FAILED
            self.error = str(errors[0])
            await self.stop()
            raise (
                errors[0]
                if isinstance(errors[0], ModelLoadError)
                else ModelLoadError(str(errors[0]))
            )
        self.state = PoolState.READY
        monitor = asyncio.get_running_loop().create_task(self._monitor())
        self._tasks.add(monitor)
        monitor.add_done_callback(self._tasks.discard)

    async def _monitor(self, interval: float = 0.5) -> None:
        """Restart replicas that died while idle (a crash with no call in flight)."""
        while self.state is not PoolState.STOPPED:
            for replica in self._replicas:
                if not replica.alive and replica.index not in self._reserved:
                    self._schedule_restart(replica)
            await asyncio.sleep(interval)

    async def call(
        self, inputs: Any, outputs: Sequence[str], *, suspect: bool = False
    ) -> dict[str, np.ndarray[Any, Any]]:
        """``suspect``: a part of a batch that crashed or hung its replica (see the docstring)."""
        for attempt in (1, 2):
            risky = suspect and attempt == 1
            replica = await self._acquire_suspect() if risky else None
            replica = replica or self._take_free() or await self._acquire()
            try:
                return await replica.call(inputs, outputs, self.timeout)
            except ReplicaTimeoutError:
                self._hung(replica)
                raise CallTimeoutError(
                    f"the model did not answer within {self.timeout:g} s (its call timeout): it "
                    "hung or is far too slow on this input; its replica was restarted"
                ) from None
            except ReplicaCrashedError as exc:
                self._schedule_restart(replica)
                log.warning("replica %s crashed during a call: %s", replica.index, exc)
                raise ModelCrashedError(
                    f"the model crashed on this input ({exc}); it was not retried, since it "
                    "would crash the next replica too"
                ) from exc
            except ModelOutOfMemoryError:
                self._schedule_restart(replica)
                raise
            except ReplicaDiedError as exc:
                self._schedule_restart(replica)
                if attempt == 2:
                    raise ModelUnavailableError(
                        f"the model's replicas went away twice during this request ({exc}); "
                        "it was not answered, retry later"
                    ) from exc
                log.warning("replica %s died during a call (%s); retrying once", replica.index, exc)
            finally:
                if risky:
                    self._suspects -= 1
                self._release(replica)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _acquire_suspect(self) -> Replica:
        """A free replica for a suspect call, once running it leaves another healthy replica to
        serve everyone else (in a pool of one: at once)."""
        while True:
            spare = 1 if self.size == 1 else self.healthy - 1
            if self._suspects < spare:
                chosen = self._take_free()
                if chosen is not None:
                    self._suspects += 1
                    return chosen
            elif self.state in (PoolState.FAILED, PoolState.STOPPED):
                self._take_free()  # raises ModelUnavailableError with the reason
            waiter = asyncio.get_running_loop().create_future()
            self._suspect_waiters.append(waiter)
            try:
                await waiter
            finally:
                if waiter in self._suspect_waiters:
                    self._suspect_waiters.remove(waiter)

    def _hung(self, replica: Replica) -> None:
        """A call outlived the timeout, whether its caller waited or left: kill and replace."""
        log.warning(
            "a model call ran past %g s on replica %s: killing it (hung or too slow)",
            self.timeout,
            replica.index,
        )
        replica.kill()
        self._schedule_restart(replica)

    def _take_free(self) -> Replica | None:
        """Reserve the least-used free replica, if any (no ``await``: the common case).

        Checking and reserving happen with no ``await`` in between, so no lock is needed on the
        one event loop; a replica that died is seen by its closed pipe (``connected``), which
        costs no system call, unlike ``Process.is_alive``.
        """
        if self.state in (PoolState.FAILED, PoolState.STOPPED):
            raise ModelUnavailableError(
                f"the model is unavailable: {self.error or self.state.value}"
            )
        chosen: Replica | None = None
        for replica in self._replicas:
            if (
                replica.connected
                and not replica.busy  # still answering a call whose caller left
                and replica.index not in self._reserved
                and replica.index not in self._restarting
                and (chosen is None or replica.calls < chosen.calls)
            ):
                chosen = replica
        if chosen is not None:
            self._reserved.add(chosen.index)
        return chosen

    async def _acquire(self) -> Replica:
        """A free replica, waiting while all are busy or restarting."""
        while True:
            chosen = self._take_free()
            if chosen is not None:
                return chosen
            if self.error is not None and self.healthy == 0:
                # restarts are failing: waiting would only end in a timeout (see _restart)
                raise ModelUnavailableError(f"the model has no healthy replica: {self.error}")
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                elif waiter.done() and not waiter.cancelled():
                    self._wake(1)  # we were woken but leave: pass the turn on
                raise

    def _release(self, replica: Replica) -> None:
        self._reserved.discard(replica.index)
        self._wake(1)

    def _wake(self, count: int | None = None) -> None:
        """Wake ``count`` waiters (all when None): each looks for a free replica again. Suspect
        calls waiting are all woken: each looks whether it may go now."""
        if self._suspect_waiters:
            for waiter in self._suspect_waiters:
                if not waiter.done():
                    waiter.set_result(None)
            self._suspect_waiters.clear()
        while self._waiters and (count is None or count > 0):
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if count is not None:
                    count -= 1

    async def _wake_all(self) -> None:
        """Replica set or pool state changed: let every waiter look again."""
        self._wake()

    def _schedule_restart(self, replica: Replica) -> None:
        if replica.index in self._restarting or self.state is PoolState.STOPPED:
            return
        self._restarting.add(replica.index)
        self.state = PoolState.DEGRADED
        task = asyncio.get_running_loop().create_task(self._restart(replica))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _restart(self, old: Replica) -> None:
        old.kill()
        self.restarts += 1
        if self._on_restart is not None:
            self._on_restart()
        fresh = self._new_replica(old.index)
        try:
            await fresh.start()
        except ModelLoadError as exc:
            self._failed_restarts += 1
            log.error("replica %s failed to restart: %s", old.index, exc)
            # Set before anyone is woken: callers waiting for a replica now fail at once (503
            # with this reason) instead of waiting through the backoff to their deadline.
            self.error = str(exc)
            if self._failed_restarts >= MAX_FAILED_RESTARTS:
                self.state = PoolState.FAILED
                await self._wake_all()
            else:
                await self._wake_all()
                await asyncio.sleep(min(2.0**self._failed_restarts, 30.0))
                self._restarting.discard(old.index)
                self._schedule_restart(old)
            return
        self._failed_restarts = 0
        self.error = None
        self._replicas[old.index] = fresh
        self._restarting.discard(old.index)
        if not self._restarting and self.state is PoolState.DEGRADED:
            self.state = PoolState.READY
        log.info("replica %s restarted (pid %s)", old.index, fresh.pid)
        await self._wake_all()

    async def stop(self) -> None:
        self.state = PoolState.STOPPED
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(r.stop() for r in self._replicas), return_exceptions=True)
        await self._wake_all()
