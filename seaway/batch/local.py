"""The local engine: the driver reads chunks, worker processes score and commit them.

Each worker loads the model once and writes its own parts, so predictions never travel back to the
driver; only a chunk's counts do. At most two chunks per worker are in flight (one being scored,
one waiting), which bounds memory by chunk size and workers, whatever the input's size.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from seaway.batch.output import ChunkStats, OutputFolder
from seaway.batch.scoring import RowRejectedError, Scorer, score
from seaway.errors import SeawayError


class BatchWorkerError(SeawayError):
    """A worker process died (killed, out of memory, a crashing model)."""


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
        )
        return scorer, OutputFolder(self.output_url, self.output_format)


@dataclass(frozen=True)
class Chunk:
    file_index: int
    file_url: str
    index: int
    first_row: int
    table: Any  # pyarrow.Table


_state: dict[str, Any] = {}


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def _init_worker(spec: WorkerSpec) -> None:
    # Ctrl-C and a service manager's SIGTERM reach the whole process group: the driver decides
    # (it stops handing out chunks; the ones being scored finish and commit)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    limit_threads(spec.threads)
    try:
        scorer, folder = spec.build()
    except Exception as exc:  # kept for the first chunk: an initializer error kills the pool
        _state["error"] = exc
        return
    _state.update(scorer=scorer, folder=folder, on_error=spec.on_error)
    gc.collect()
    gc.freeze()  # the model stays: full collections need not walk it


def limit_threads(threads: int) -> None:
    """Cap OpenMP and BLAS pools in this process (threadpoolctl comes with scikit-learn)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - without scikit-learn there is nothing to cap
        return
    _state["threads"] = threadpool_limits(limits=max(1, threads))


def score_and_commit(
    scorer: Scorer, folder: OutputFolder, on_error: str, chunk: Chunk
) -> tuple[int, int, ChunkStats]:
    result = score(scorer, chunk.table, file_url=chunk.file_url, first_row=chunk.first_row)
    if on_error == "fail" and result.rejects is not None:
        first = result.rejects.slice(0, 1).to_pylist()[0]
        raise RowRejectedError(
            f"row {first['_row']} of {chunk.file_url} was rejected: {first['_reason']} "
            "(--on-error fail; the default, skip, writes such rows to _rejects/ instead)"
        )
    stats = ChunkStats(result.rows_in, result.rows_out, result.rows_rejected)
    folder.commit(chunk.file_index, chunk.index, result.output, result.rejects, stats)
    return chunk.file_index, chunk.index, stats


def _work(chunk: Chunk) -> tuple[int, int, ChunkStats]:
    if "error" in _state:
        raise _state["error"]  # the model did not load: say why, not "a worker died"
    return score_and_commit(_state["scorer"], _state["folder"], _state["on_error"], chunk)


def run_local(
    chunks: Iterator[Chunk],
    spec: WorkerSpec,
    workers: int,
    on_chunk: Callable[[int, int, ChunkStats], None],
) -> None:
    """Score every chunk with ``workers`` processes; ``on_chunk`` hears of each commit."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(spec,)
    )
    pending: set[Future[tuple[int, int, ChunkStats]]] = set()
    try:
        for chunk in chunks:
            while len(pending) >= 2 * workers:
                pending = _collect(pending, on_chunk)
            pending.add(pool.submit(_work, chunk))
        while pending:
            pending = _collect(pending, on_chunk)
    except BaseException:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _collect(
    pending: set[Future[tuple[int, int, ChunkStats]]],
    on_chunk: Callable[[int, int, ChunkStats], None],
) -> set[Future[tuple[int, int, ChunkStats]]]:
    done, rest = wait(pending, return_when=FIRST_COMPLETED)
    for future in done:
        try:
            on_chunk(*future.result())
        except BrokenProcessPool as exc:
            raise BatchWorkerError(
                "a worker process died (killed, out of memory, or the model crashed it); the "
                "chunks committed so far are kept: rerun with --resume to continue"
            ) from exc
    return rest
