"""Whether a job's driver still runs: an ``flock`` it holds in the job's output folder.

A driver SIGKILLed (or its machine lost) cannot record that it stopped, so its record still says
``running``. While it scores, the driver holds an exclusive ``flock`` on ``_seaway_job.lock`` in
the output folder; the kernel lets go of it when the process dies however it dies (as the
hand-off folder's lock, ``handoff.py``). A reader (``seaway batch list``/``show``) that can take
the lock knows nobody holds it, so the job is shown as ``interrupted``. Worker processes forked
from the driver close their copy at once: an orphaned worker must not keep a dead driver's lock.

Only local output folders have the lock (object stores have no such lock); for them, and for
jobs written before the lock existed, the record's heartbeat still tells: a job that has not
beaten for a minute reads as interrupted (``registry/jobs.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from dataclasses import replace

from seaway.errors import ConflictError
from seaway.registry.jobs import BatchJob
from seaway.types import JobStatus

LOCK = "_seaway_job.lock"

#: the lock files this process holds, closed in every child it forks
_held: set[int] = set()


def _close_in_child() -> None:
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


def _local_path(output: str) -> str | None:
    """The lock file's path for a local output folder; None for any other file system."""
    import fsspec
    from fsspec.implementations.local import LocalFileSystem

    fs, root = fsspec.core.url_to_fs(output)
    return os.path.join(root, LOCK) if isinstance(fs, LocalFileSystem) else None


@contextlib.contextmanager
def holding(output: str, job_id: str) -> Iterator[None]:
    """Hold the job's lock while the body runs (nothing for a folder that is not local).
    Another process holding it is a driver of the same job still running: refused."""
    path = _local_path(output)
    if path is None:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ConflictError(
            f"job {job_id} is running already (another process holds {path}); wait for it, or "
            "stop it first"
        ) from None
    _held.add(fd)
    try:
        yield
    finally:
        _held.discard(fd)
        os.close(fd)  # the lock goes with it


def driver_gone(job: BatchJob) -> bool:
    """True when the job's local output folder has a lock file nobody holds: its driver died.
    False when it is held, or cannot tell (no lock file, a remote folder, unreadable)."""
    try:
        path = _local_path(job.output)
        if path is None:
            return False
        fd = os.open(path, os.O_RDONLY)
    except (OSError, ValueError):
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return False  # held: the driver runs
    finally:
        os.close(fd)  # also lets go of the shared lock, if taken
    return True


def observed(job: BatchJob) -> BatchJob:
    """The job as it is: a ``running`` record whose driver is gone reads ``interrupted``."""
    if job.status is JobStatus.RUNNING and driver_gone(job):
        return replace(
            job,
            status=JobStatus.INTERRUPTED,
            error=job.error
            or f"its driver stopped without a word (killed?); rerun with "
            f"'seaway batch run --resume {job.job_id}'",
        )
    return job
