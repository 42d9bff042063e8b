"""Adaptive batching in front of model replicas: an explicit wrapper, never a patched ``predict``.

Each request keeps its own future and its own row range of the merged batch, so an answer can only
ever reach the caller whose rows produced it. Batches grow with load rather than with a timer:

- a request that finds the model idle goes at once: nothing waits at low load;
- while every replica is busy, requests pile up and leave together when one frees;
- under load (requests were queued when a replica freed, or the last batch merged several), the
  freed replica first *gathers*: it waits while requests keep arriving, until ``quiet_ms`` pass
  with no new one, the batch is full, or ``max_latency_ms`` have passed. Without this, N clients
  that each send again as soon as they are answered split into two groups of N/2 that alternate
  forever (one group is answered while the other's batch runs), and each model call carries half
  the rows it could.

A fault belongs to the request that caused it. When a merged call fails with a model exception,
each request is retried alone (only the culprit's caller sees the error). When a merged call
crashes its replica, hangs it past the call timeout or exhausts its memory, every retry costs a
replica restart or a call timeout, so the batch is instead split in halves, run side by side
while replicas allow, and halves that fail again are split again, until the culprit is alone and
answered with the failure; the innocent requests are answered from the halves that succeed.

There is no dispatcher task to start, crash or cancel: dispatching is a plain function called when
a request arrives, a batch finishes, a timer fires or the replica count changes. That saves a task
switch per request, and a cancelled caller cannot break anything but its own wait.

Tracing (``tracing.py``): with a hook installed, a queued request keeps its trace context and
every model call runs through the hook, which times it for each request it carries; with none
(the default), one ``is None`` test per request and per call is all it costs.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any

import numpy as np

from seaway.errors import (
    BatcherClosedError,
    CallTimeoutError,
    InferenceTimeoutError,
    ModelCrashedError,
    ModelOutOfMemoryError,
    ModelUnavailableError,
    PredictionError,
    SeawayError,
    ServerBusyError,
)
from seaway.runtime import tracing
from seaway.runtime.deadlines import Deadlines
from seaway.runtime.merging import merge, merge_key

logger = logging.getLogger(__name__)

Outputs = dict[str, np.ndarray[Any, Any]]
RunBatch = Callable[[Any], Awaitable[Mapping[str, np.ndarray[Any, Any]]]]

#: Errors about the replica rather than the rows: retrying each request alone would only multiply
#: the load on a replica that is already down, saturated or too slow.
_REPLICA_ERRORS = (ServerBusyError, ModelUnavailableError, InferenceTimeoutError)
#: Errors that say a merged call hurt its replica (crashed it, hung it, ran it out of memory): a
#: request in it is the likely cause, so the batch is split until it is alone (``_split``).
#: Checked before ``_REPLICA_ERRORS``, which holds two of them by inheritance.
_BATCH_FAULTS = (ModelCrashedError, CallTimeoutError, ModelOutOfMemoryError)
_UNKNOWN: Any = object()  # a merge key not computed yet


class _Request:
    __slots__ = ("dispatched", "future", "inputs", "key", "rows", "timeout", "trace")

    def __init__(self, inputs: Any, rows: int, future: asyncio.Future[Outputs]):
        self.inputs = inputs
        self.rows = rows
        self.future = future
        self.dispatched = False
        self.key: Hashable | None = _UNKNOWN
        self.timeout = 0.0
        self.trace: object | None = None  # tracing.hook.queued(), when tracing is on

    def merge_key(self) -> Hashable | None:
        """Computed once, and only when another request could join this one's batch."""
        if self.key is _UNKNOWN:
            self.key = merge_key(self.inputs, self.rows)
        return self.key


class _Expiry:
    """A lone request's deadline: it cancels the request's task (see ``_alone``)."""

    __slots__ = ("fired", "task")

    def __init__(self, task: asyncio.Task[Any] | None) -> None:
        assert task is not None, "submit runs in a task"
        self.task = task
        self.fired = False

    def fire(self) -> None:
        self.fired = True
        self.task.cancel()


class AdaptiveBatcher:
    """Merges concurrent requests for one model into batches of at most ``max_batch_size`` rows.

    ``run_batch`` sends one native input (DataFrame, array or dict of arrays) to a replica and
    returns arrays whose first dimension is the merged row count. ``concurrency`` is how many
    batches may run at once, normally the number of replicas (``set_concurrency`` follows
    scaling; 0 holds requests until replicas come). ``on_batch(rows, requests)`` sees every model
    call. Callers get views into the batch's output arrays, sliced by their row offsets.
    ``max_latency_ms`` bounds a gathering wait (0 turns gathering off); ``quiet_ms`` is the lull
    that ends one.
    """

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_size: int,
        max_latency_ms: float = 0.0,
        quiet_ms: float = 0.2,
        max_queue: int = 1024,
        concurrency: int = 1,
        on_batch: Callable[[int, int], None] | None = None,
        name: str = "model",
        run_suspect: RunBatch | None = None,
    ) -> None:
        if max_batch_size < 1 or max_queue < 1 or max_latency_ms < 0 or quiet_ms <= 0:
            raise ValueError(
                "max_batch_size and max_queue must be >= 1, max_latency_ms >= 0, quiet_ms > 0"
            )
        self._run_batch = run_batch
        #: runs the parts of a batch that crashed or hung its replica (``_split``): the pool lets
        #: them on a replica only while another healthy one is left for everyone else
        self._run_suspect = run_suspect or run_batch
        self._max_rows = max_batch_size
        self._max_latency = max_latency_ms / 1000
        self._quiet = quiet_ms / 1000
        self._max_queue = max_queue
        self._on_batch = on_batch
        self._name = name
        self._queue: deque[_Request] = deque()
        self._queued = 0  # live requests in _queue; cancelled ones stay there until skipped
        self._queued_rows = 0
        self._dead = 0
        self._in_flight = 0
        self._batchable = max_batch_size > 1
        self._batch_seconds = 0.1  # moving average, for retry_after
        self._loop: asyncio.AbstractEventLoop | None = None
        #: set while a freed replica gathers a batch; no dispatch happens meanwhile
        self._timer: asyncio.TimerHandle | None = None
        self._gather_until = 0.0
        self._last_arrival = 0.0
        self._last_batch_requests = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._deadlines = Deadlines()
        self._closing = False
        self._idle: asyncio.Event | None = None
        self._concurrency = 0
        self.set_concurrency(concurrency)

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return self._queued

    @property
    def in_flight(self) -> int:
        """Batches running on replicas now."""
        return self._in_flight

    @property
    def concurrency(self) -> int:
        return self._concurrency

    def set_concurrency(self, concurrency: int) -> None:
        """Follow replica scaling; running batches finish, only new dispatches see the limit."""
        if concurrency < 0:
            raise ValueError(f"concurrency must be >= 0, got {concurrency}")
        self._concurrency = concurrency
        if self._loop is not None:
            self._pump()

    async def submit(self, inputs: Any, rows: int, timeout: float | None = None) -> Outputs:
        """Queue ``inputs`` (``rows`` rows) and return exactly these rows of every output.

        ``timeout`` bounds queueing and predicting: past it the caller gets
        ``InferenceTimeoutError`` (a request still queued leaves the queue; a dispatched one's
        rows are dropped when its batch returns). Deadlines share one timer (deadlines.py).
        """
        if self._closing:
            raise BatcherClosedError(f"{self._name} is shutting down; send the request again")
        if self._queued >= self._max_queue:
            raise ServerBusyError(
                f"{self._name} has {self._queued} requests waiting, its limit; retry later or "
                f"add replicas",
                retry_after=self._retry_after(),
            )
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        self._last_arrival = loop.time()
        if (
            self._timer is None
            and not self._queued
            and self._in_flight < self._concurrency
            and self._last_batch_requests <= 1
        ):
            return await self._alone(inputs, rows, timeout)
        request = _Request(inputs, rows, loop.create_future())
        if (hook := tracing.hook) is not None:
            request.trace = hook.queued()
        self._queue.append(request)
        self._queued += 1
        self._queued_rows += rows
        if self._timer is not None:  # gathering: leave as soon as the batch is full
            if self._queued_rows >= self._max_rows:
                self._stop_gathering()
                self._pump()
        elif self._in_flight < self._concurrency:
            if self._last_batch_requests > 1:
                self._gather()  # under load, though a replica is free: let the batch fill
            else:
                self._pump()
        token = None
        if timeout is not None:
            request.timeout = timeout
            token = self._deadlines.add(timeout, self._expire, request)
        try:
            return await request.future
        except asyncio.CancelledError:
            if not request.dispatched:
                self._forget(request)
            raise
        finally:
            if token is not None:
                self._deadlines.discard(token)

    async def _alone(self, inputs: Any, rows: int, timeout: float | None) -> Outputs:
        """A request that finds the model idle and nobody waiting goes at once, in its caller's
        task: no future, no batch task, one loop turn less (the replica drops the answer of a
        caller cancelled meanwhile, see ``Replica.call``). What ``_call_alone`` does otherwise."""
        loop = self._loop
        assert loop is not None
        self._in_flight += 1
        started = loop.time()
        try:
            self._report(rows, 1)
            expiry = token = None
            if timeout is not None:
                expiry = _Expiry(asyncio.current_task(loop))
                token = self._deadlines.add(timeout, _Expiry.fire, expiry)
            try:
                if (hook := tracing.hook) is None:
                    return dict(await self._run_batch(inputs))
                return dict(await hook.model_call(self._run_batch, inputs, None, rows))
            except asyncio.CancelledError:
                # our deadline cancelled the task, and nobody else did: a timeout
                if expiry is not None and expiry.fired and expiry.task.uncancel() == 0:
                    raise self._timed_out(timeout or 0.0) from None
                raise
            except Exception as exc:
                error = _translate(exc)
                if error is exc:
                    raise
                raise error from exc
            finally:
                if token is not None:
                    self._deadlines.discard(token)
        finally:
            self._finished(started)

    def _timed_out(self, timeout: float) -> InferenceTimeoutError:
        return InferenceTimeoutError(
            f"{self._name} did not answer within {timeout:g} s (its timeout)"
        )

    def _expire(self, request: _Request) -> None:
        if request.future.done():
            return
        request.future.set_exception(self._timed_out(request.timeout))
        if not request.dispatched:
            self._forget(request)

    async def close(self, drain: bool = True) -> None:
        """Refuse new requests; finish queued ones (``drain``) or fail them, then wait for batches.

        Running batches are never cancelled: the replica is busy with them either way.
        """
        self._closing = True
        self._stop_gathering()
        if not drain or self._concurrency == 0:
            while self._queue:
                request = self._queue.popleft()
                _fail(request, ModelUnavailableError(f"{self._name} was shut down; retry later"))
            self._queued = self._queued_rows = self._dead = 0
        elif self._loop is not None:
            self._pump()
        if self._queued or self._in_flight:
            self._idle = self._idle or asyncio.Event()
            await self._idle.wait()

    def _forget(self, request: _Request) -> None:
        """A caller gave up before dispatch: uncount it now, skip it later, compact if many."""
        self._queued -= 1
        self._queued_rows -= request.rows
        self._dead += 1
        request.inputs = None
        if self._dead > 64 and self._dead > self._queued:
            self._queue = deque(r for r in self._queue if not r.future.done())
            self._dead = 0
        self._check_idle()

    def _pump(self) -> None:
        """Start batches while a slot is free (not while gathering)."""
        loop = self._loop
        assert loop is not None
        while self._queued and self._in_flight < self._concurrency and self._timer is None:
            batch = self._take()
            self._in_flight += 1
            task = loop.create_task(self._run(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _gather(self) -> None:
        """Hold dispatches while requests keep coming (see the module docstring)."""
        if (
            not self._max_latency
            or not self._batchable
            or self._closing
            or self._queued_rows >= self._max_rows
        ):
            self._pump()
            return
        if self._timer is None:
            loop = self._loop
            assert loop is not None
            self._gather_until = loop.time() + self._max_latency
            self._timer = loop.call_later(min(self._quiet, self._max_latency), self._on_timer)

    def _on_timer(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        lull = now - self._last_arrival
        if self._queued_rows < self._max_rows and now < self._gather_until and lull < self._quiet:
            wait = min(self._quiet - lull, self._gather_until - now)
            self._timer = loop.call_later(wait, self._on_timer)
            return
        self._timer = None
        self._pump()

    def _stop_gathering(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head(self) -> _Request:
        queue = self._queue
        while queue[0].future.done():
            queue.popleft()
            self._dead -= 1
        return queue[0]

    def _take(self) -> list[_Request]:
        """Pop the oldest request and those behind it that fit and merge with it (FIFO)."""
        head = self._head()
        batch = [head]
        rows = head.rows
        queue = self._queue
        queue.popleft()
        if self._batchable and rows < self._max_rows:
            key = _UNKNOWN
            while queue:
                nxt = queue[0]
                if nxt.future.done():
                    queue.popleft()
                    self._dead -= 1
                    continue
                if rows + nxt.rows > self._max_rows:
                    break
                if key is _UNKNOWN:
                    key = head.merge_key()
                if key is None or nxt.merge_key() != key:
                    break
                queue.popleft()
                batch.append(nxt)
                rows += nxt.rows
        for request in batch:
            request.dispatched = True
        self._queued -= len(batch)
        self._queued_rows -= rows
        return batch

    async def _run(self, batch: list[_Request]) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        try:
            live = [r for r in batch if not r.future.done()]
            if len(live) == 1:
                await self._call_alone(live[0])
            elif live:
                await self._call_merged(live)
        except asyncio.CancelledError:  # the loop is shutting down: no new batches
            for request in batch:
                _fail(request, ModelUnavailableError(f"{self._name} stopped mid-request; retry"))
            self._in_flight -= 1
            self._check_idle()
            raise
        except Exception as exc:  # a bug here must neither strand callers nor leak a slot
            logger.exception("batch for %s failed", self._name)
            for request in batch:
                _fail(request, _translate(exc))
        self._finished(started)

    def _finished(self, started: float) -> None:
        """A model call ended: its slot frees, and requests that waited for it go."""
        assert self._loop is not None
        self._batch_seconds += 0.2 * (self._loop.time() - started - self._batch_seconds)
        self._in_flight -= 1
        if self._queued:
            self._gather()  # requests waited for this replica: we are under load
        self._check_idle()

    async def _call_alone(self, request: _Request, suspect: bool = False) -> None:
        """A request on its own: handed over and returned unchanged, aggregates included."""
        self._report(request.rows, 1)
        try:
            run = self._run_suspect if suspect else self._run_batch
            if (hook := tracing.hook) is None:
                outputs = await run(request.inputs)
            else:
                outputs = await hook.model_call(run, request.inputs, (request.trace,), request.rows)
        except Exception as exc:
            _fail(request, _translate(exc))
        else:
            _resolve(request, dict(outputs))

    async def _call_merged(self, batch: list[_Request], suspect: bool = False) -> None:
        total = sum(r.rows for r in batch)
        try:
            merged = merge([r.inputs for r in batch])
        except Exception:  # keys matched yet concatenation failed: never fail callers for it
            return await self._one_by_one(batch)
        self._report(total, len(batch))
        run = self._run_suspect if suspect else self._run_batch
        try:
            if (hook := tracing.hook) is None:
                outputs = await run(merged)
            else:
                outputs = await hook.model_call(run, merged, [r.trace for r in batch], total)
        except _BATCH_FAULTS as exc:
            logger.warning(
                "a merged call of %d requests to %s failed (%s); splitting it to find the culprit",
                len(batch),
                self._name,
                exc,
            )
            return await self._split(batch)
        except _REPLICA_ERRORS as exc:
            for request in batch:
                _fail(request, exc)
            return
        except Exception:  # isolate the culprit: only its caller should see the error
            return await self._one_by_one(batch)
        if not all(np.ndim(v) >= 1 and len(v) == total for v in outputs.values()):
            if self._batchable:
                self._batchable = False
                logger.warning(
                    "%s returned outputs whose first dimension is not the row count (an aggregate"
                    " or a scalar); its requests will no longer be batched",
                    self._name,
                )
            return await self._one_by_one(batch)
        start = 0
        for request in batch:
            end = start + request.rows
            _resolve(request, {name: value[start:end] for name, value in outputs.items()})
            start = end

    async def _split(self, batch: list[_Request]) -> None:
        """Run the two halves of ``batch`` side by side as suspects (``run_suspect``: the pool runs
        them as replicas allow, never on the last healthy one). A half that crashes or hangs again
        is split again (``_call_merged``); a request alone is answered with what it does alone.
        Requests answered meanwhile (their deadline passed) are left out. The batch keeps its one
        slot: fresh requests go on being dispatched to the other replicas."""
        live = [r for r in batch if not r.future.done()]
        if len(live) <= 1:
            if live:
                await self._call_alone(live[0], suspect=True)
            return
        half = len(live) // 2
        await asyncio.gather(self._call_part(live[:half]), self._call_part(live[half:]))

    async def _call_part(self, part: list[_Request]) -> None:
        live = [r for r in part if not r.future.done()]
        if len(live) == 1:
            await self._call_alone(live[0], suspect=True)
        elif live:
            await self._call_merged(live, suspect=True)

    async def _one_by_one(self, batch: list[_Request]) -> None:
        for request in batch:
            if not request.future.done():
                await self._call_alone(request)

    def _report(self, rows: int, requests: int) -> None:
        self._last_batch_requests = requests
        if self._on_batch is not None:
            try:
                self._on_batch(rows, requests)
            except Exception:
                logger.exception("on_batch hook of %s failed", self._name)

    def _retry_after(self) -> float:
        """Seconds until today's queue has likely drained, from the recent batch duration."""
        batches = math.ceil(self._queued_rows / self._max_rows) if self._batchable else self._queued
        return min(max(batches / max(self._concurrency, 1) * self._batch_seconds, 0.01), 60.0)

    def _check_idle(self) -> None:
        if self._idle is not None and not self._queued and not self._in_flight:
            self._idle.set()


def _translate(exc: Exception) -> SeawayError:
    """Seaway errors already say what is wrong; anything else becomes a PredictionError."""
    if isinstance(exc, SeawayError):
        return exc
    error = PredictionError(f"the model failed to predict: {type(exc).__name__}: {exc}")
    error.__cause__ = exc
    return error


def _resolve(request: _Request, outputs: Outputs) -> None:
    if not request.future.done():  # a caller that gave up after dispatch: result dropped
        request.future.set_result(outputs)


def _fail(request: _Request, error: BaseException) -> None:
    if not request.future.done():
        request.future.set_exception(error)
