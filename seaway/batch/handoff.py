"""Handing chunks from the driver to local workers as Arrow files in memory, not through a pipe.

Sending a chunk's table through the process pool's pipe costs a pickle, a copy into the pipe in
64 KiB pieces (each a context switch between the two processes) and an unpickle: measured with
`bench/batch.py`, that was a quarter of the work besides the model. Instead the driver writes
each chunk once, as an Arrow IPC file, into a folder on a memory-backed file system
(``/dev/shm``), and only its path crosses the pipe; the worker maps the file (no copy: the table's
buffers are the file's pages) and unlinks it at once, so the pages go back to the system when the
worker drops the table.

The folder holds at most the chunks in flight (two per worker): its size is part of the job's
memory bound, counted by the benchmark. Where ``/dev/shm`` is missing or small (containers often
give it 64 MiB), or fills up, the system's temporary folder is used instead: the files are unlinked
within seconds, usually before the page cache writes them out. The memory folder is kept after a
fall back, since chunks written there before may still wait for their workers; every folder is
removed when the job's engine stops (``close``). Its driver holds an exclusive ``flock`` on a
file inside it for as long as it runs, and the kernel lets go of that lock when the process dies
however it dies: a later job on the machine that can take the lock removes the folder a killed
driver left behind (no process ids to compare, so a driver in another PID namespace is safe too).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("seaway.batch")

PREFIX = "seaway-batch-"
SHM = "/dev/shm"
#: /dev/shm is used when it has at least this much free space (Docker's default is 64 MiB)
MIN_SHM_BYTES = 1 << 30
#: held locked by the folder's driver while it runs
LOCK = ".lock"


@dataclass(frozen=True)
class Handoff:
    """Where a chunk's table waits for the worker that scores it."""

    path: str

    def take(self) -> Any:
        """The table, mapped from its file (zero-copy), which is unlinked at once."""
        import pyarrow as pa

        try:
            source = pa.memory_map(self.path)
            table = pa.ipc.open_file(source).read_all()
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
        return table


class HandoffFolder:
    """The driver's side: one folder per engine run, removed by ``close``."""

    def __init__(self, root: str | None = None) -> None:
        self._roots = [root] if root is not None else _roots()
        _remove_stale(self._roots)
        #: every folder made so far, with its lock: a folder given up for a fuller one still
        #: holds chunks queued for workers, so only ``close`` removes it
        self._made: list[tuple[str, int]] = []
        self._folder = self._make(self._roots[0])

    @property
    def folder(self) -> str:
        return self._folder

    def put(self, table: Any) -> Handoff:
        """Write ``table`` as an Arrow IPC file; fall back to disk when memory is full."""
        try:
            return self._write(table)
        except OSError as exc:
            if exc.errno != errno.ENOSPC or len(self._roots) < 2:
                raise
            log.warning(
                "%s is full: handing chunks to the workers through %s instead",
                self._roots[0],
                self._roots[1],
            )
            self._roots = self._roots[1:]
            self._folder = self._make(self._roots[0])
            return self._write(table)

    def close(self) -> None:
        """Remove every folder made (chunks never taken included) and let go of their locks."""
        while self._made:
            folder, lock = self._made.pop()
            shutil.rmtree(folder, ignore_errors=True)
            os.close(lock)

    def _write(self, table: Any) -> Handoff:
        import pyarrow as pa

        path = os.path.join(self._folder, f"{uuid.uuid4().hex}.arrow")
        try:
            with pa.OSFile(path, "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        return Handoff(path)

    def _make(self, root: str) -> str:
        folder = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=root)
        lock = os.open(os.path.join(folder, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        self._made.append((folder, lock))
        return folder


def _roots() -> list[str]:
    disk = tempfile.gettempdir()
    try:
        usage = shutil.disk_usage(SHM)
    except OSError:
        return [disk]
    if usage.free < MIN_SHM_BYTES or not os.access(SHM, os.W_OK):
        return [disk]
    return [SHM, disk]


def _remove_stale(roots: list[str]) -> None:
    """Folders whose driver is gone: their lock is free (see the module docstring)."""
    for root in roots:
        with contextlib.suppress(OSError):
            for entry in Path(root).glob(f"{PREFIX}*"):
                if _abandoned(entry):
                    shutil.rmtree(entry, ignore_errors=True)


def _abandoned(folder: Path) -> bool:
    try:
        fd = os.open(folder / LOCK, os.O_RDWR)
    except FileNotFoundError:  # being made (the lock comes right after), or not ours
        return False
    except OSError:  # another user's
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # releases the lock if it was taken
    return True
