"""The Ray engine: the local engine's job, its chunks scored by actors on a Ray cluster.

The driver reads chunks exactly as for the local engine (``job._chunks``) and sends each one to
one of ``workers`` scoring actors. An actor loads the model once, then scores and commits the
chunks it is sent with the local engine's own :func:`~seaway.batch.local.score_and_commit`, so the
part files, rejects and chunk markers have the same names and contents whichever engine wrote
them (and a job started by one engine can be resumed by the other). Only a chunk's
counts travel back; ``on_chunk`` runs in the driver, which keeps the job record and progress.
At most two chunks per actor are in flight (one scored, one queued), which bounds the object
store and the driver by chunk size and workers, whatever the input's size.

Why actors and not Ray Data (measured with ray 2.60 on 2 cores; the issue asked for Ray Data):

- A Dataset's source is a list planned up front: ``from_items``/``from_arrow``/``from_arrow_refs``
  take every item (every chunk) at once, and a ``Datasource`` returns all its read tasks from
  ``get_read_tasks`` before execution; those tasks then run on workers. None of them can pull
  from the driver's lazy ``chunks`` iterator (a generator cannot be shipped), so either every
  chunk is materialised before scoring starts (memory grows with the input), or the workers read
  the files themselves, where Ray Data's blocks do not fall on multiples of ``chunk_rows`` and
  carry no row numbers: part names, ``_row`` in the rejects and resumption would all differ from
  the local engine, and a chunk of a CSV file cannot be found without reading the file from the
  top (quadratic work).
- A Dataset's actor pool lives for one execution, so feeding the chunks window by window reloads
  the model each window; and each execution costs seconds: 8 one-row batches through
  ``map_batches(..., concurrency=2)`` took 4.0-5.1 s per run, against 2.1 s to start two actors
  and 6 ms for eight calls to them.
- A failing chunk arrives as ``RayTaskError(UserCodeException)``, the user's exception buried
  under the executor's frames; an exception that does not pickle made the run take 21 s before it
  failed. Ray Data also logs its execution plan at INFO on every run.

So this engine uses Ray core directly: actors, ``ray.wait`` over the chunks in flight, and
errors returned as values, re-raised in the driver as the same Seaway error with its message
(the worker's traceback attached as ``__cause__``). A dead actor (killed, out of memory, a lost
node) fails the job like a dead local worker: what was committed is kept, ``--resume`` continues.

The cluster: an initialised Ray is used as it is. Otherwise ``address`` is passed to
``ray.init`` (``auto``, ``HOST:PORT`` or ``ray://HOST:10001``); without one, a new local instance
is started with ``workers`` CPUs and no dashboard (``address="local"``, so ``RAY_ADDRESS`` or a
cluster started with ``ray start`` is never joined by accident) and shut down at the end, even
on errors. Each actor takes one CPU and caps its OpenMP/BLAS pools to one thread (the local
engine shares the driver machine's cores out instead: ``spec.threads`` says nothing about a
cluster's nodes). A cluster with fewer CPUs than ``workers`` gets one actor per CPU (with a
warning) instead of actors that would wait for ever.

On a cluster of several machines: Seaway (``pip install 'seaway[ray]'``, same version) must be
installed on every node; the input is read by the driver only; the output folder is written by
the actors and by the driver, so it must be one place for all of them: an fsspec URL the nodes
can write (``s3://...``, with credentials on each node) or a shared mount. The model package is
taken from ``spec.package_path`` where a node has that folder (the same machine, a shared mount);
an actor on a node without it says so, and the driver sends the package folder once through the
object store: each node unpacks it under ``$TMPDIR/seaway-ray-packages/MANIFEST_SHA256`` and
loads it with the usual checksum verification. (The package is not fetched by its artifact URI:
``WorkerSpec`` does not carry it, and a local-folder store would not be reachable anyway.)
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import hashlib
import importlib
import io
import logging
import os
import pickle
import shutil
import signal
import tarfile
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from seaway.batch.local import (
    Chunk,
    ChunkResult,
    WorkerSpec,
    build_limited,
    score_and_commit,
    usable_cores,
)
from seaway.batch.output import ChunkStats, OutputFolder
from seaway.batch.scoring import Scorer
from seaway.errors import BatchWorkerError, ConfigError, MissingDependencyError, SeawayError
from seaway.packaging.manifest import MANIFEST_NAME

log = logging.getLogger("seaway.batch")

#: Chunks in flight per actor: one being scored, one waiting (as the local engine).
IN_FLIGHT = 2
#: Where a node without the package folder unpacks the copy the driver sends.
PACKAGES_DIR = "seaway-ray-packages"
_DIED = (
    "a Ray worker died (killed, out of memory, a lost node, or the model crashed it); the chunks "
    "committed so far are kept: rerun with --resume to continue"
)


def run_ray(
    chunks: Iterator[Chunk],
    spec: WorkerSpec,
    workers: int | None,
    on_chunk: Callable[[int, int, ChunkStats], None],
    *,
    address: str | None = None,
) -> None:
    """Score every chunk with ``workers`` Ray actors (None: one per CPU of the cluster);
    ``on_chunk`` hears of each commit."""
    ray = _import_ray()
    started = not ray.is_initialized()
    sigterm = _sigterm_handler() if started else None
    actors: list[Any] = []
    try:
        if started:  # ray.init turns SIGTERM into SystemExit: cleanup runs
            _init(ray, address, workers or usable_cores())
        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
        actor_class = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(ScoringActor)
        for _ in range(_fit(ray, workers)):
            actors.append(actor_class.remote())
        _setup(ray, actors, spec)
        _drive(ray, actors, chunks, on_chunk)
    finally:
        for actor in actors:  # at once: a chunk cut short has no marker and is redone on resume
            with contextlib.suppress(Exception):
                ray.kill(actor, no_restart=True)
        if started:
            ray.shutdown()
        if sigterm is not None:
            signal.signal(signal.SIGTERM, sigterm)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise MissingDependencyError("ray", "ray", "The Ray engine") from exc
    return ray


def _sigterm_handler() -> Any:
    """The SIGTERM handler to put back after ``ray.init`` replaced it (None: leave it)."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.getsignal(signal.SIGTERM)


def _init(ray: Any, address: str | None, workers: int) -> None:
    try:
        if address is None:
            ray.init(
                address="local",
                num_cpus=workers,
                include_dashboard=False,
                logging_level=logging.WARNING,
            )
        else:
            ray.init(address=address)
    except (ConnectionError, ValueError, RuntimeError) as exc:
        if address is None:
            raise ConfigError(f"cannot start a local Ray instance: {exc}") from exc
        raise ConfigError(
            f"cannot reach Ray at {address}: {exc}; check --address (a running cluster's "
            "HOST:PORT, ray://HOST:10001, or auto)"
        ) from exc


def _fit(ray: Any, workers: int) -> int:
    """``workers``, or the cluster's CPUs when it has fewer (actors take one CPU each)."""
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if 0 < cpus < workers:
        log.warning(
            "the Ray cluster has %d CPUs: scoring with %d actors, not %d", cpus, cpus, workers
        )
        return cpus
    return workers


def _setup(ray: Any, actors: list[Any], spec: WorkerSpec) -> None:
    """Load the model in every actor; send the package to those whose node lacks its folder."""
    ready = [_value(ray, ref) for ref in [actor.setup.remote(spec, None) for actor in actors]]
    lacking = [actor for actor, ok in zip(actors, ready, strict=True) if not ok]
    if lacking:
        package = ray.put(pack(spec.package_path))
        for ref in [actor.setup.remote(spec, package) for actor in lacking]:
            _value(ray, ref)


def _drive(
    ray: Any,
    actors: list[Any],
    chunks: Iterator[Chunk],
    on_chunk: Callable[[int, int, ChunkStats], None],
) -> None:
    # the chunk's result (an ObjectRef) -> (the actor scoring it, (file, chunk))
    pending: dict[Any, tuple[int, tuple[int, int]]] = {}
    load = [0] * len(actors)

    def collect() -> None:
        """As the local engine's: after a failure, the chunks in flight finish, are counted, and
        the earliest chunk's error is raised."""
        ready, _ = ray.wait(list(pending), num_returns=1)
        outcomes = {ref: _outcome(ray, ref) for ref in ready}
        if any(isinstance(outcome, Exception) for outcome in outcomes.values()):
            outcomes.update({ref: _outcome(ray, ref) for ref in pending if ref not in outcomes})
        failures = []
        for ref in sorted(outcomes, key=lambda ref: pending[ref][1]):
            load[pending.pop(ref)[0]] -= 1
            outcome = outcomes[ref]
            if isinstance(outcome, Exception):
                failures.append(outcome)
            else:
                on_chunk(*outcome)
        if failures:
            raise failures[0]

    for chunk in chunks:
        while min(load) >= IN_FLIGHT:
            collect()
        index = load.index(min(load))
        pending[actors[index].score.remote(chunk)] = (index, (chunk.file_index, chunk.index))
        load[index] += 1
        del chunk  # the object store holds it now
    while pending:
        collect()


def _outcome(ray: Any, ref: Any) -> ChunkResult | Exception:
    try:
        return _value(ray, ref)  # type: ignore[no-any-return]
    except Exception as exc:
        return exc


def _value(ray: Any, ref: Any) -> Any:
    """An actor's answer; its failure raised as the error the actor hit."""
    try:
        value = ray.get(ref)
    except ray.exceptions.RayTaskError as exc:  # outside our code: e.g. an argument not unpickled
        cause = exc.cause
        if isinstance(cause, SeawayError):
            raise cause from None
        raise BatchWorkerError(
            f"a Ray worker failed: {type(cause).__name__}: {cause}; rerun with --resume to continue"
        ) from exc
    except ray.exceptions.RayError as exc:
        raise BatchWorkerError(f"{_DIED} ({type(exc).__name__})") from exc
    if isinstance(value, Failure):
        raise value.error()
    return value


class ScoringActor:
    """One per worker (wrapped by ``ray.remote``): loads the model once, scores chunks."""

    def __init__(self) -> None:
        self._state: tuple[Scorer, OutputFolder, str] | None = None

    def setup(self, spec: WorkerSpec, package: bytes | None) -> bool | Failure:
        """Load the model; False when this node lacks the package folder and no copy came."""
        try:
            if package is not None:
                path = install(package, spec.manifest_sha256)
                spec = dataclasses.replace(spec, package_path=path)
            elif not Path(spec.package_path, MANIFEST_NAME).is_file():
                return False
            scorer, folder = build_limited(spec, 1)  # the one CPU the actor holds
        except Exception as exc:
            return Failure.of(exc)
        self._state = (scorer, folder, spec.on_error)
        gc.collect()
        gc.freeze()  # the model stays: full collections need not walk it
        return True

    def score(self, chunk: Chunk) -> ChunkResult | Failure:
        if self._state is None:
            raise RuntimeError("ScoringActor.score called before setup")
        try:
            return score_and_commit(*self._state, chunk)
        except Exception as exc:
            return Failure.of(exc)


# -- errors as values -----------------------------------------------------------------------------


class RemoteTraceback(Exception):
    """The traceback of an error raised in a Ray actor, attached as the error's ``__cause__``."""

    def __str__(self) -> str:
        return f'\n"""\n{self.args[0]}"""'


@dataclasses.dataclass(frozen=True)
class Failure:
    """An exception raised in an actor, in a form that always crosses back to the driver."""

    kind: str  # module:qualname
    message: str
    pickled: bytes | None  # None when the exception does not survive pickling
    remote_traceback: str

    @classmethod
    def of(cls, exc: Exception) -> Failure:
        pickled: bytes | None
        try:
            pickled = pickle.dumps(exc)
            pickle.loads(pickled)
        except Exception:
            pickled = None
        kind = f"{type(exc).__module__}:{type(exc).__qualname__}"
        text = "".join(traceback.format_exception(exc))
        return cls(kind, str(exc), pickled, text)

    def error(self) -> Exception:
        """The same exception type with the same message (a BatchWorkerError at worst)."""
        error = self._unpickled() or self._rebuilt()
        if error is None:
            name = self.kind.rpartition(":")[2]
            error = BatchWorkerError(f"a Ray worker failed: {name}: {self.message}")
        error.__cause__ = RemoteTraceback(self.remote_traceback)
        return error

    def _unpickled(self) -> Exception | None:
        if self.pickled is None:
            return None
        try:
            error = pickle.loads(self.pickled)
        except Exception:
            return None
        return error if isinstance(error, Exception) else None

    def _rebuilt(self) -> Exception | None:
        """An instance of the type, made without its ``__init__`` (which may take other args)."""
        module, _, qualname = self.kind.partition(":")
        try:
            found: Any = importlib.import_module(module)
            for part in qualname.split("."):
                found = getattr(found, part)
        except (ImportError, AttributeError):
            return None
        if not (isinstance(found, type) and issubclass(found, Exception)):
            return None
        error: Exception = found.__new__(found)
        error.args = (self.message,)
        return error


# -- the package, for nodes without its folder ----------------------------------------------------


def pack(path: str) -> bytes:
    """A package folder as an uncompressed tar (model files seldom compress)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for child in sorted(Path(path).iterdir()):
            archive.add(child, arcname=child.name)
    return buffer.getvalue()


def install(package: bytes, manifest_sha256: str | None) -> str:
    """Unpack ``package`` once per node (actors on one node share it); its folder's path."""
    root = Path(tempfile.gettempdir()) / PACKAGES_DIR
    target = root / (manifest_sha256 or hashlib.sha256(package).hexdigest())
    if (target / MANIFEST_NAME).is_file():
        return str(target)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        with tarfile.open(fileobj=io.BytesIO(package)) as archive:
            archive.extractall(staging, filter="data")
        try:
            os.replace(staging, target)
        except OSError:  # another actor of this node got there first
            if not (target / MANIFEST_NAME).is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(target)
