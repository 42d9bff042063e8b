"""Batch workers forked from the zygote (``runtime/spawner.py``) that ``seaway batch run`` starts
before the CLI's own imports.

The zygote imports numpy, pandas, pyarrow, scikit-learn and skops on the second core while the
driver imports the CLI and checks the job; the workers are then forked from it, each loading its
model (which no longer needs any import) and starting at once. The driver never loads the model.
Without the zygote, the driver loads the model itself and forks its workers after (or spawns
them: ``local._start_pool``), one import after the other on one core.

``ZygotePool`` is the part of ``ProcessPoolExecutor`` the local engine uses (``submit`` returning
futures, ``shutdown``, ``_processes`` to kill), over one pipe per worker: the zygote forks a
child from a pickled target and its ``Connection`` objects only. Each worker holds one item at a
time; the rest wait in the driver, so cancelling one that has not started always works. A worker
that dies fails its item and every later one with ``BrokenProcessPool``, as the executor does.
``stop()`` tells the workers to end their span after the chunk they are scoring: a message on
their pipe, which a worker reads only while it works on a span (``_PipeStop``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import Pipe
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from seaway.errors import BatchWorkerError
from seaway.runtime import spawner

if TYPE_CHECKING:  # imported where used: start_early runs before the CLI's imports
    from seaway.batch.local import WorkerSpec

#: what the zygote imports for batch workers, beside its base list (numpy, pandas)
PRELOAD = (
    "pyarrow.parquet",
    "sklearn",
    "seaway.packaging.flavors.sklearn:skops_io",
    "seaway.batch.local",
)
_STOP = "stop"


def start_early() -> None:
    """Start the default zygote now with the batch workers' imports (``seaway batch run``, from
    ``seaway/cli/__init__.py``): they run while the driver imports the CLI."""
    if not _enabled():
        return
    with contextlib.suppress(spawner.SpawnerError):
        spawner.default_spawner().start(PRELOAD)
    _early.set()


_early = threading.Event()


def available() -> bool:
    """Whether this driver's workers come from the zygote: it was started early for them."""
    return _early.is_set() and _enabled()


def _enabled() -> bool:
    return sys.platform.startswith("linux") and os.environ.get(spawner.START_ENV) != "spawn"


class _PipeStop:
    """A worker's view of the driver's stop: a message on its pipe while it works on a span."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._set = False

    def is_set(self) -> bool:
        if not self._set and self._conn.poll():
            self._set = self._conn.recv() == _STOP
        return self._set

    def clear(self) -> None:
        self._set = False


def worker_main(spec: WorkerSpec, conn: Connection) -> None:
    """A forked worker: load the model, then run each item the driver sends until it sends None
    or goes away."""
    from seaway.batch import local

    local._ignore_stop_signals()
    try:
        scorer, folder = local.build_limited(spec, spec.threads)
    except Exception as exc:  # said with the first item, as a spawned worker does
        local._state["error"] = exc
    else:
        local._state.update(scorer=scorer, folder=folder, on_error=spec.on_error)
    stop = _PipeStop(conn)
    local._state["stop"] = stop
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        if message == _STOP:  # heard between items: nothing to stop
            continue
        function, item = message
        stop.clear()
        try:
            reply: tuple[str, Any] = ("ok", function(item))
        except BaseException as exc:  # sent back, raised in the driver
            reply = ("error", exc)
        try:
            conn.send(reply)
        except Exception as exc:  # an exception that does not pickle
            conn.send(("error", BatchWorkerError(f"{type(exc).__name__}: {reply[1]}")))


class ZygotePool:
    """Workers forked from the zygote; see the module docstring."""

    def __init__(self, spec: WorkerSpec, workers: int) -> None:
        self._lock = threading.Lock()
        self._queue: deque[tuple[Future[Any], Callable[[Any], Any], Any]] = deque()
        self._busy: dict[int, Future[Any]] = {}  # worker index -> its item's future
        self._broken: BaseException | None = None
        self._closing = False
        self._stopping = False
        self._conns: list[Connection] = []
        self._processes: dict[int, spawner.ForkedProcess] = {}
        self._wake_r, self._wake_w = os.pipe()
        default = spawner.default_spawner()
        try:
            for index in range(workers):
                ours, theirs = Pipe(duplex=True)
                process = default.process(
                    worker_main,
                    (spec, theirs),
                    name=f"seaway-batch-{index}",
                    package=spec.package_path,
                )
                process.start()
                theirs.close()
                self._conns.append(ours)
                assert process.pid is not None
                self._processes[process.pid] = process
        except BaseException:
            self._kill()
            raise
        self._workers = list(self._processes.values())
        self._thread = threading.Thread(target=self._run, name="seaway-batch-pool", daemon=True)
        self._thread.start()

    def submit(self, function: Callable[[Any], Any], item: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._broken is not None:
                raise BrokenProcessPool(str(self._broken))
            self._queue.append((future, function, item))
        self._wake()
        return future

    def stop(self) -> None:
        """Workers in a span end it after their current chunk; no item starts any more (the
        driver cancels those waiting)."""
        with self._lock:
            self._stopping = True
            busy = list(self._busy)
            waiting = [entry[0] for entry in self._queue]
            self._queue.clear()
        for future in waiting:
            _cancel(future)
        for index in busy:
            with contextlib.suppress(OSError, ValueError):
                self._conns[index].send(_STOP)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closing = True
            if cancel_futures:
                while self._queue:
                    _cancel(self._queue.popleft()[0])
        self._wake()
        if wait:
            self._thread.join()
            for process in self._workers:
                process.join()

    # ---- the pool's thread ----------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # pragma: no cover - a bug here must not hang the driver
            self._fail(exc)
        finally:
            for conn in self._conns:
                with contextlib.suppress(OSError, ValueError):
                    conn.send(None)
                conn.close()
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _loop(self) -> None:
        sentinels: dict[int, int] = {}
        for i, process in enumerate(self._workers):
            assert process.sentinel is not None  # started
            sentinels[process.sentinel] = i
        conns = {conn: i for i, conn in enumerate(self._conns)}
        while True:
            self._dispatch()
            with self._lock:
                if self._closing and not self._busy and (self._stopping or not self._queue):
                    return
                if self._broken is not None:
                    return
            ready = wait([*conns, *sentinels, self._wake_r])
            if self._wake_r in ready:
                os.read(self._wake_r, 4096)
            for conn in [r for r in ready if isinstance(r, Connection)]:
                index = conns[conn]
                try:
                    status, value = conn.recv()
                except (EOFError, OSError):
                    self._fail(BrokenProcessPool(f"batch worker {index} died"))
                    return
                with self._lock:
                    future = self._busy.pop(index)
                if status == "ok":
                    future.set_result(value)
                else:
                    future.set_exception(value)
            for sentinel in [r for r in ready if r in sentinels]:
                if self._workers[sentinels[sentinel]].poll() is not None:
                    self._fail(BrokenProcessPool(f"batch worker {sentinels[sentinel]} died"))
                    return

    def _dispatch(self) -> None:
        with self._lock:
            if self._stopping:
                return
            for index, conn in enumerate(self._conns):
                if index in self._busy:
                    continue
                while self._queue:
                    future, function, item = self._queue.popleft()
                    if future.set_running_or_notify_cancel():
                        conn.send((function, item))
                        self._busy[index] = future
                        break
                if not self._queue:
                    break

    def _fail(self, error: BaseException) -> None:
        with self._lock:
            self._broken = error
            futures = [*self._busy.values(), *(entry[0] for entry in self._queue)]
            self._busy.clear()
            self._queue.clear()
        for future in futures:
            if not future.done() and (future.running() or future.set_running_or_notify_cancel()):
                future.set_exception(error)

    def _kill(self) -> None:
        for process in self._processes.values():
            process.kill()


def _cancel(future: Future[Any]) -> None:
    """Cancel a future that never started, as an executor does: ``wait`` counts it as done only
    once it is also notified."""
    if future.cancel():
        future.set_running_or_notify_cancel()
