"""The local engine: worker processes read, score and commit chunks; the driver hands them out.

Each worker loads the model once and writes its own parts, so predictions never travel back to the
driver; only a chunk's counts do. Parquet chunks are read by the workers themselves: the driver
sends a ``Span`` (a file and a range of chunk indices, planned from the file's metadata), and the
worker reads, scores and commits those chunks one by one, so the driver decodes nothing and no
table crosses between processes (with a cheap model, decoding and handing off every chunk in the
one driver was what the workers waited for). Chunks of CSV and JSON Lines files, which cannot be
found without reading the file from the top, are read by the driver and travel to the workers as
Arrow files in memory (``handoff.py``), not through the pool's pipe. At most two items per worker
are in flight (one being worked on, one waiting), which bounds memory by chunk size and workers,
whatever the input's size. Workers are forked from the driver with the model loaded where that is
safe, else spawned (``_start_pool``).

A job told to stop (Ctrl-C, SIGTERM, the scheduler) or failing hands out no more chunks and waits
for the ones being scored to commit, as long as one of them finishes every ``STOP_GRACE_S``
seconds; a worker in the middle of a span stops after the chunk it is scoring (the driver sets a
shared event). A worker stuck in its model (or a second signal) does not hold it up beyond that:
the workers are killed, and the chunks they held are scored again on resume (``_stop``).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    ALL_COMPLETED,
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from seaway.batch.handoff import Handoff, HandoffFolder
from seaway.batch.inputs import InputFile
from seaway.batch.output import ChunkStats, OutputFolder
from seaway.batch.predlog import BatchLogSpec, log_chunk
from seaway.batch.readers import read_span
from seaway.batch.scoring import Scorer, score
from seaway.errors import BatchWorkerError, RowRejectedError


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs to score and commit chunks on its own (picklable)."""

    package_path: str
    manifest_sha256: str | None
    trusted: bool
    model_name: str
    model_version: int
    keep: tuple[str, ...]
    proba: bool
    features: tuple[str, ...]
    #: the columns read from each file: the model's inputs, then the passthrough ones
    columns: tuple[str, ...]
    output_url: str
    output_format: str
    on_error: str
    #: native threads (OpenMP, BLAS) each worker may use: the cores shared out, so that N
    #: workers of a multi-threaded model do not fight over the same cores
    threads: int = 1
    #: the package's flavor: decides whether workers may be forked from the driver
    flavor: str = ""
    #: the prediction log's settings (seaway/batch/predlog.py); None: the job logs nothing
    log: BatchLogSpec | None = None

    def build(self) -> tuple[Scorer, OutputFolder]:
        from seaway.runtime.model import load_package

        model = load_package(
            self.package_path, trusted=self.trusted, manifest_sha256=self.manifest_sha256
        )
        scorer = Scorer(
            model,
            self.model_name,
            self.model_version,
            keep=self.keep,
            proba=self.proba,
            features=self.features,
            log=self.log.open(self.model_name, self.model_version) if self.log else None,
        )
        return scorer, OutputFolder(self.output_url, self.output_format)


@dataclass(frozen=True)
class Chunk:
    file_index: int
    file_url: str
    index: int
    first_row: int
    table: Any  # pyarrow.Table


@dataclass(frozen=True)
class Span:
    """Chunks ``first`` to ``stop - 1`` of a Parquet file, read by the worker that scores them."""

    file_index: int
    file: InputFile
    first: int
    stop: int
    chunk_rows: int
    columns: tuple[str, ...]
    #: let Arrow decode columns on several threads (a worker with more than one core's share)
    use_threads: bool = False


_state: dict[str, Any] = {}
ChunkResult = tuple[int, int, ChunkStats]
PR_SET_PDEATHSIG = 1  # prctl(2)
#: flavors whose loading starts no Python thread, so the driver may load them and fork
#: (_start_pool)
FORK_SAFE_FLAVORS = frozenset({"sklearn", "xgboost", "lightgbm"})
#: after a stop or a failure, how long to wait for one of the chunks being scored to finish
#: before killing the workers (read at each stop)
STOP_GRACE_S = 5.0
#: how often the driver calls ``on_idle`` while it waits for chunks
IDLE_S = 1.0


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(spec: WorkerSpec, stop: Any = None) -> None:
    """A spawned worker: a fresh interpreter that loads the model itself."""
    _ignore_stop_signals()
    _state["stop"] = stop
    try:
        scorer, folder = build_limited(spec, spec.threads)
    except Exception as exc:  # kept for the first chunk: an initializer error kills the pool
        _state["error"] = exc
        return
    _state.update(scorer=scorer, folder=folder, on_error=spec.on_error)
    gc.collect()
    gc.freeze()  # the model stays: full collections need not walk it


def _init_forked(threads: int, driver: int, stop: Any = None) -> None:
    """A forked worker: the driver's copy, the model loaded already (and its objects frozen by
    the driver before the fork: collecting them here would write to, and so copy, every page
    that holds one)."""
    _ignore_stop_signals()
    _state["stop"] = stop
    _die_with(driver)
    limit_threads(threads)  # the OpenMP runtime is loaded: threadpoolctl reaches it


def _die_with(driver: int) -> None:
    """Be killed by the kernel when the driver dies (SIGKILL, a crash).

    A spawned worker sees its driver's death as the end of the pool's pipe; a forked one holds
    copies of the pipe's write ends itself, so it would wait for work for ever.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # pragma: no cover - fork is used on Linux only
        pass
    if os.getppid() != driver:  # it died before the line above
        os._exit(1)


def _ignore_stop_signals() -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the driver decides
    # (it stops handing out chunks; the ones being scored finish and commit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


#: read by OpenMP (libgomp, libomp) and the BLAS libraries when they load
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def build_limited(spec: WorkerSpec, threads: int) -> tuple[Scorer, OutputFolder]:
    """Load the model with this process's native thread pools capped to ``threads``.

    Both ways are needed: the environment for the libraries the model's framework loads as it is
    imported (scikit-learn's OpenMP runtime), threadpoolctl for those loaded already (numpy's
    BLAS) and again after loading. threadpoolctl alone, before loading, caps nothing the model
    uses: N workers of an OpenMP model each ran one thread per core.
    """
    threads = max(1, threads)
    for name in THREAD_VARIABLES:
        os.environ[name] = str(threads)
    limit_threads(threads)
    built = spec.build()
    limit_threads(threads)
    return built


def limit_threads(threads: int) -> None:
    """Cap the OpenMP and BLAS pools loaded in this process (threadpoolctl comes with
    scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - without scikit-learn there is nothing to cap
        return
    _state["threads"] = threadpool_limits(limits=max(1, threads))


def score_and_commit(
    scorer: Scorer, folder: OutputFolder, on_error: str, chunk: Chunk
) -> ChunkResult:
    result = score(scorer, chunk.table, file_url=chunk.file_url, first_row=chunk.first_row)
    if on_error == "fail" and result.rejects is not None:
        first = result.rejects.slice(0, 1).to_pylist()[0]
        raise RowRejectedError(
            f"row {first['_row']} of {chunk.file_url} was rejected: {first['_reason']} "
            "(--on-error fail; the default, skip, writes such rows to _rejects/ instead)"
        )
    stats = ChunkStats(result.rows_in, result.rows_out, result.rows_rejected)
    folder.commit(chunk.file_index, chunk.index, result.output, result.rejects, stats)
    log_chunk(scorer.log, scorer, chunk, result)  # after the commit: never fails the chunk
    return chunk.file_index, chunk.index, stats


@dataclass(frozen=True)
class SharedChunk:
    """A chunk on its way to a worker: its table waits in a handoff file (see handoff.py)."""

    file_index: int
    file_url: str
    index: int
    first_row: int
    table: Handoff


def _work(shared: SharedChunk) -> list[ChunkResult]:
    table = shared.table.take()  # first: the file is unlinked whatever happens next
    if "error" in _state:
        raise _state["error"]  # the model did not load: say why, not "a worker died"
    chunk = Chunk(shared.file_index, shared.file_url, shared.index, shared.first_row, table)
    return [score_and_commit(_state["scorer"], _state["folder"], _state["on_error"], chunk)]


def _work_span(span: Span) -> list[ChunkResult]:
    """Read, score and commit a span's chunks in order, until the driver says stop."""
    if "error" in _state:
        raise _state["error"]
    stop = _state.get("stop")
    results: list[ChunkResult] = []
    if stop is not None and stop.is_set():  # queued before the stop: never started
        return results
    tables = read_span(
        span.file,
        span.columns,
        span.chunk_rows,
        span.first,
        span.stop,
        use_threads=span.use_threads,
    )
    try:
        for index, table in tables:
            chunk = Chunk(span.file_index, span.file.url, index, index * span.chunk_rows, table)
            del table
            results.append(
                score_and_commit(_state["scorer"], _state["folder"], _state["on_error"], chunk)
            )
            del chunk
            if stop is not None and stop.is_set():
                break
    finally:
        tables.close()  # the file, when the span ends early
    return results


Work = Chunk | Span
Results = list[ChunkResult]


def run_local(
    chunks: Iterator[Work],
    spec: WorkerSpec,
    workers: int,
    on_chunk: Callable[[int, int, ChunkStats], None],
    on_idle: Callable[[], None] | None = None,
) -> None:
    """Score every chunk (a chunk read by the driver, or a span of chunks the worker reads) with
    ``workers`` processes; ``on_chunk`` hears of each commit, and ``on_idle`` is called every
    ``IDLE_S`` seconds while no chunk finishes (a heartbeat; what it raises, such as the
    scheduler's cancellation, stops the job as Ctrl-C does: a job whose worker is stuck still
    hears it)."""
    frozen = gc.get_freeze_count()
    pool, stop = _start_pool(spec, workers)
    pending: dict[Future[Results], tuple[int, int]] = {}  # -> (file, first chunk)
    handoff: HandoffFolder | None = None  # made for the first chunk read here, if any
    try:
        for chunk in chunks:
            while len(pending) >= 2 * workers:
                _collect(pending, on_chunk, on_idle, stop)
            if isinstance(chunk, Span):
                future = pool.submit(_work_span, chunk)
                pending[future] = (chunk.file_index, chunk.first)
                continue
            if handoff is None:
                handoff = HandoffFolder()
            shared = SharedChunk(
                chunk.file_index,
                chunk.file_url,
                chunk.index,
                chunk.first_row,
                handoff.put(chunk.table),
            )
            pending[pool.submit(_work, shared)] = (chunk.file_index, chunk.index)
            del chunk  # the handoff file holds it now
        while pending:
            _collect(pending, on_chunk, on_idle, stop)
        pool.shutdown(wait=True)
    except BaseException:
        _stop(pool, pending, stop)
        raise
    finally:
        if handoff is not None:
            handoff.close()
        _state.clear()  # a forking driver's copy of the model
        if not frozen and gc.get_freeze_count():
            gc.unfreeze()  # frozen for the fork (_start_pool): the driver may collect them again


def _stop(pool: Any, pending: dict[Future[Results], tuple[int, int]], stop: Any) -> None:
    """Stop after a failure or an interruption: no chunk starts any more; those being scored may
    finish and commit (the job's record counts them from the folder) while they make progress.
    A worker stuck in its model, or a second Ctrl-C or SIGTERM, gets the workers killed instead,
    so that the job always ends and can be resumed."""
    stop.set()  # a worker in a span stops after its chunk
    for future in pending:
        future.cancel()  # not started: never scored
    running = [future for future in pending if not future.done()]
    try:
        while running:
            done, _ = wait(running, timeout=STOP_GRACE_S, return_when=FIRST_COMPLETED)
            if not done:
                break  # no chunk finished for a while: stuck
            running = [future for future in running if future not in done]
    except BaseException:  # a second signal: stop now (the first one is raised)
        pass
    if any(not future.done() for future in running):
        _kill_workers(pool)
    pool.shutdown(wait=True, cancel_futures=True)


def _kill_workers(pool: Any) -> None:
    """SIGKILL every worker (they ignore SIGINT and SIGTERM, and one stuck in native code would
    not answer them anyway); a chunk left without its marker is scored again on resume."""
    processes = getattr(pool, "_processes", None) or {}
    for process in list(processes.values()):
        with contextlib.suppress(OSError, ValueError):
            process.kill()


def _start_pool(spec: WorkerSpec, workers: int) -> tuple[Any, Any]:
    """The pool (a ``ProcessPoolExecutor``, or a ``forked.ZygotePool``), and the event that tells
    its workers to stop after their current chunk.

    Where ``seaway batch run`` started the zygote before its own imports (``forked.py``), the
    workers are forked from it: it has imported the frameworks meanwhile, and the driver loads
    no model.

    Workers forked from the driver with the model loaded once, where that is safe; else
    spawned, each loading the model itself.

    A spawned worker spends over a second importing scikit-learn and skops and loading the model
    before its first chunk (see bench/batch.py); a forked one starts at once. Forking is safe
    only from a driver with no other Python thread (a lock held by another thread at the fork
    stays held in the child), after loading a framework that starts no Python thread as it
    loads (onnxruntime starts its pools with the session, and torch and Python models may run
    anything), and only for workers that run one native thread each. That last condition is
    GNU OpenMP's: its thread pool does not survive a fork once it has started, and a forked
    child that opens a parallel region of two threads or more waits for the lost threads for
    ever. The driver may well have started that pool: XGBoost and LightGBM run OpenMP loops
    while they load a model, and a driver that trained or predicted before (a notebook, a test)
    holds one too, which no API reveals. A worker capped to one thread never uses the pool, so
    forking is safe whatever the driver did; workers with more threads each (fewer workers than
    cores) are spawned. The other native pools (numpy's BLAS, Arrow's) reset themselves in a
    forked child. Elsewhere (not Linux, a driver with threads, such as a server running the
    scheduler, other flavors) the workers are spawned too.
    """
    from seaway.batch import forked

    if forked.available():
        zygote_pool = forked.ZygotePool(spec, workers)
        return zygote_pool, _PoolStop(zygote_pool)
    if _forkable(spec):
        scorer, folder = spec.build()  # a model that cannot load fails here, before any work
        if threading.active_count() == 1:  # loading started no thread after all
            _state.update(scorer=scorer, folder=folder, on_error=spec.on_error)
            # the workers share the driver's pages until one writes to them: a collection in
            # each would (it writes to every object it visits), so collect once, here
            gc.collect()
            gc.freeze()
            context = multiprocessing.get_context("fork")
            stop = context.Event()
            pool = ProcessPoolExecutor(
                max_workers=workers,
                mp_context=context,
                initializer=_init_forked,
                initargs=(spec.threads, os.getpid(), stop),
            )
            with warnings.catch_warnings():
                # Python 3.12+ warns of any thread, native ones too (BLAS, Arrow); see above
                warnings.filterwarnings("ignore", ".*fork", DeprecationWarning)
                pool.submit(int).result()  # fork every worker now, before the driver reads
            return pool, stop
        del scorer, folder
    spawn = multiprocessing.get_context("spawn")
    stop = spawn.Event()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=spawn,
        initializer=_init_worker,
        initargs=(spec, stop),
    )
    return pool, stop


@dataclass(frozen=True)
class _PoolStop:
    """``stop.set()`` for a pool whose workers hear it through their pipes."""

    pool: Any

    def set(self) -> None:
        self.pool.stop()


def _forkable(spec: WorkerSpec) -> bool:
    return (
        sys.platform.startswith("linux")
        and spec.flavor in FORK_SAFE_FLAVORS
        and spec.threads <= 1  # see _start_pool: a forked OpenMP pool hangs
        and threading.active_count() == 1
    )


def _wait(
    futures: Iterable[Future[Results]],
    on_idle: Callable[[], None] | None,
    *,
    every: bool = False,
) -> set[Future[Results]]:
    """The first futures done (every one, with ``every``), calling ``on_idle`` meanwhile."""
    futures = list(futures)
    while True:
        done, waiting = wait(
            futures, timeout=IDLE_S, return_when=ALL_COMPLETED if every else FIRST_COMPLETED
        )
        if (not waiting) if every else done:
            return done
        if on_idle is not None:
            on_idle()


def _collect(
    pending: dict[Future[Results], tuple[int, int]],
    on_chunk: Callable[[int, int, ChunkStats], None],
    on_idle: Callable[[], None] | None = None,
    stop: Any = None,
) -> None:
    """Hand on what is done. After a failure, wait for the chunks being scored (they commit
    anyway: their counts belong in the job record; a span stops after its current chunk) and
    raise the earliest chunk's error, so ``--on-error fail`` names the first rejected row in
    input order among those scored, whichever worker was quicker."""
    done = _wait(pending, on_idle)
    if any(future.exception() is not None for future in done):
        if stop is not None:
            stop.set()
        for future in pending:
            future.cancel()  # not started: never scored
        done = _wait(pending, on_idle, every=True)
    failed = sorted(
        (f for f in done if not f.cancelled() and f.exception() is not None),
        key=pending.__getitem__,
    )
    for future in sorted(done, key=pending.__getitem__):
        del pending[future]
        if not future.cancelled() and future.exception() is None:
            for result in future.result():
                on_chunk(*result)
    if failed:
        error = failed[0].exception()
        if isinstance(error, BrokenProcessPool):
            raise BatchWorkerError(
                "a worker process died (killed, out of memory, or the model crashed it); the "
                "chunks committed so far are kept: rerun with --resume to continue"
            ) from error
        assert error is not None
        raise error
