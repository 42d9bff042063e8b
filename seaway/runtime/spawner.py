"""How replica processes are started: forked from a preloaded zygote, not spawned from scratch.

A spawned replica is a fresh interpreter that imports Seaway's runtime, numpy, pandas and the
model's framework before it loads its model: seconds per replica, and every replica holds its own
copy of all of it. Here one helper process, the *zygote*, imports all that once, then forks a
child per replica on request: a replica starts in the time its model takes to load, and the pages
the zygote filled (code, modules, the frameworks' data) are shared by every replica, copy-on-write.

Why not ``multiprocessing``'s "forkserver" context, which does the same: its server is one per
interpreter with a preload list fixed at its first start (a hot swap to another framework could not
add it), it does not freeze the collector's view of the preloaded objects (a child's first full
collection would write to, and so copy, every page holding one), every child re-runs the parent's
``__main__`` script (for ``seaway serve``, the whole CLI), and its protocol is private and changes
between Python versions. The zygote is a small protocol of our own over a Unix socket; its side
is ``zygote.py``.

Rules the zygote keeps:

- **It never runs model code.** GNU OpenMP's thread pool (XGBoost, LightGBM, scikit-learn's
  compiled loops) does not survive a fork once it has started: a child forked after a predict
  hangs in its first parallel loop. The zygote only imports; models load and predict in children.
- **It preloads only frameworks whose import starts no native thread pool**: scikit-learn (with
  skops), XGBoost, LightGBM. PyTorch and onnxruntime are not preloaded (their runtimes may start
  threads at import and are heavy); their replicas import them in the child, as before.
- **What to preload follows the models served**: a start request names the package; the zygote
  reads its flavor from the manifest and imports that flavor's modules before forking, once.
- **Exit codes reach the parent**: the zygote is the children's parent; it reaps them and writes
  each exit code (``os.waitstatus_to_exitcode``: -9 for SIGKILL) into a per-child status pipe
  whose read end the server holds, so ``exitcode`` tells a kill from a crash as with spawn.
- **It lives as long as the server**: it ignores SIGINT and SIGTERM (a Ctrl-C or a signal to the
  process group is the server's to handle); at EOF on its socket, when the server has exited or
  closed it, it kills its remaining children and exits. It is named ``seaway-zygote`` in ``ps -o
  comm`` and its children after their process (``replica-N``).
- **A dead zygote is restarted** on the next start; if it cannot be, the replica is spawned.

Each child also takes the parent's current environment variables, working directory and
``sys.path`` (sent with every request), as a spawned child would. ``SEAWAY_REPLICA_START=spawn``
(read when a replica starts) spawns replicas from scratch instead, as Seaway did before.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import io
import logging
import multiprocessing
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from seaway.runtime.zygote import BASE_PRELOAD, FLAVOR_PRELOAD, MAX_MESSAGE, STATUS, flavor_of

log = logging.getLogger("seaway.runtime.spawner")

#: ``spawn`` starts every replica from scratch, as before the zygote (a way out, and a baseline)
START_ENV = "SEAWAY_REPLICA_START"
_UNKNOWN_EXIT = 255  # the zygote died before it could report a child's exit


class SpawnerError(RuntimeError):
    """The zygote could not be reached (the caller falls back to spawn)."""


class Spawner:
    """The server's end of one zygote; thread-safe (starts may run in worker threads)."""

    def __init__(
        self, preload: Sequence[str] = BASE_PRELOAD, *, executable: str | None = None
    ) -> None:
        self.preload = tuple(preload)
        self.executable = executable or sys.executable
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._zygote: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    @property
    def zygote_pid(self) -> int | None:
        return None if self._zygote is None else self._zygote.pid

    def start(self, also: Iterable[str] = ()) -> None:
        """Start the zygote now (it preloads in the background) unless it runs. ``also``: more to
        preload, from now on; a running zygote is told at once, without waiting for it."""
        with self._lock:
            new = [name for name in also if name not in self.preload]
            self.preload = (*self.preload, *new)
            running = self._zygote is not None and self._zygote.poll() is None
            self._ensure_running()
            if running and new and self._sock is not None:
                with contextlib.suppress(OSError):  # a dead zygote is restarted on next use
                    self._sock.sendmsg([pickle.dumps(("preload", new))])

    def _ensure_running(self) -> None:
        if self._zygote is not None and self._zygote.poll() is None and self._sock is not None:
            return
        if self._zygote is not None:
            log.warning("the replica zygote exited (%s); starting a new one", self._zygote.poll())
            self.restarts += 1
            self._close()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._zygote = subprocess.Popen(
                [self.executable, "-c", _BOOT, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            ours.close()
            raise SpawnerError(f"cannot start the replica zygote: {exc}") from exc
        finally:
            theirs.close()
        self._sock = ours
        ours.sendmsg([pickle.dumps((list(sys.path), self.preload))])

    def request(
        self, payload: bytes, fds: Sequence[int], package: str | None, name: str | None = None
    ) -> tuple[int, int]:
        """Fork a child running ``payload``; returns (pid, read end of its status pipe)."""
        message = pickle.dumps(
            ("spawn", payload, package, dict(os.environ), os.getcwd(), list(sys.path), name)
        )
        with self._lock:
            for attempt in (1, 2):  # a zygote that died is restarted once
                self._ensure_running()
                assert self._sock is not None
                try:
                    socket.send_fds(self._sock, [message], list(fds))
                    data, got, flags, _ = socket.recv_fds(self._sock, MAX_MESSAGE, 1)
                except OSError as exc:
                    data, got, flags = b"", [], 0
                    error = f"{type(exc).__name__}: {exc}"
                else:
                    error = "it closed the connection"
                if data and not flags & socket.MSG_TRUNC and len(got) == 1:
                    status, pid = pickle.loads(data)
                    if status == "ok":
                        return int(pid), got[0]
                    error = str(pid)
                for fd in got:
                    os.close(fd)
                if attempt == 1:
                    log.warning("the replica zygote failed a start (%s); restarting it", error)
                    self._kill_zygote()
                    self._close()
                    self.restarts += 1
            raise SpawnerError(f"the replica zygote cannot start processes: {error}")

    def process(
        self,
        target: Callable[..., Any],
        args: Sequence[Any] = (),
        *,
        name: str | None = None,
        package: str | None = None,
    ) -> ForkedProcess:
        """A process (not yet started) that runs ``target(*args)``. ``Connection`` objects in
        ``args`` travel as file descriptors; ``package`` lets the zygote preload its framework."""
        return ForkedProcess(self, target, tuple(args), name=name, package=package)

    def _kill_zygote(self) -> None:
        if self._zygote is not None and self._zygote.poll() is None:
            with contextlib.suppress(OSError):
                self._zygote.kill()

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()  # the zygote reads EOF: it kills its children and exits
            self._sock = None
        if self._zygote is not None:
            try:
                self._zygote.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._zygote.kill()
                self._zygote.wait()
            self._zygote = None

    def close(self) -> None:
        """Stop the zygote and every replica it started."""
        with self._lock:
            self._close()


class ForkedProcess:
    """The parent's handle of one child: the part of ``multiprocessing.Process`` replicas use
    (``start``, ``pid``, ``is_alive``, ``exitcode``, ``join``). Falls back to a spawned
    ``multiprocessing`` process when the zygote cannot start it."""

    def __init__(
        self,
        spawner: Spawner | None,
        target: Callable[..., Any],
        args: tuple[Any, ...],
        *,
        name: str | None,
        package: str | None,
    ) -> None:
        self._spawner = spawner
        self._target = target
        self._args = args
        self.name = name
        self._package = package
        self.pid: int | None = None
        self.sentinel: int | None = None
        self._returncode: int | None = None
        self._spawned: Any = None  # the fallback
        self._lock = threading.Lock()  # the loop polls while worker threads join

    def start(self) -> None:
        """Start the child (blocks until the zygote has forked it; off the event loop, use
        :meth:`launch`)."""
        if self.pid is not None:
            raise RuntimeError("a process can be started only once")
        fds: list[int] = []
        try:
            if self._spawner is None:
                raise SpawnerError("no zygote on this platform")
            payload = _dumps((self._target, self._args), fds)
            self.pid, self.sentinel = self._spawner.request(payload, fds, self._package, self.name)
        except SpawnerError as exc:
            if self._spawner is not None:
                log.warning("starting %s by spawn instead: %s", self.name or "a process", exc)
            context = multiprocessing.get_context("spawn")
            self._spawned = context.Process(
                target=self._target, args=self._args, name=self.name, daemon=True
            )
            self._spawned.start()
            self.pid = self._spawned.pid
            self.sentinel = self._spawned.sentinel

    async def launch(self) -> None:
        """:meth:`start` in a worker thread, so the event loop never waits for the zygote; when
        cancelled, the child (started or about to be) is killed before the cancellation goes on."""
        task = asyncio.ensure_future(asyncio.to_thread(self.start))
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await task
            self.kill()
            raise

    def poll(self) -> int | None:
        with self._lock:
            if self._returncode is not None or self.sentinel is None:
                return self._returncode
            if self._spawned is not None:
                self._returncode = self._spawned.exitcode
            elif select.select([self.sentinel], [], [], 0)[0]:
                data = os.read(self.sentinel, STATUS.size)
                if len(data) == STATUS.size:
                    self._returncode = STATUS.unpack(data)[0]
                else:  # the zygote died first: the child is an orphan now
                    self._returncode = _orphan_status(self.pid)
            return self._returncode

    @property
    def exitcode(self) -> int | None:
        return self.poll()

    def is_alive(self) -> bool:
        return self.pid is not None and self.poll() is None

    def join(self, timeout: float | None = None) -> None:
        if self._spawned is not None:
            self._spawned.join(timeout)
            return
        if self.sentinel is not None and self.poll() is None:
            select.select([self.sentinel], [], [], timeout)
            self.poll()

    def kill(self) -> None:
        if self.is_alive() and self.pid is not None:
            with contextlib.suppress(OSError):
                os.kill(self.pid, signal.SIGKILL)

    def __del__(self) -> None:
        if self.sentinel is not None and self._spawned is None:
            with contextlib.suppress(OSError):
                os.close(self.sentinel)


def _orphan_status(pid: int | None) -> int | None:
    """Exit code of a child whose zygote died: None while it still runs, else unknown (255)."""
    if pid is None:
        return _UNKNOWN_EXIT
    try:
        reaped, status = os.waitpid(pid, os.WNOHANG)  # we are its parent when we are pid 1
    except ChildProcessError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return _UNKNOWN_EXIT
        except PermissionError:
            return None
        return None
    return os.waitstatus_to_exitcode(status) if reaped else None


class _FdPickler(pickle.Pickler):
    """Pickles ``Connection`` objects as indexes into a list of descriptors sent beside."""

    def __init__(self, file: io.BytesIO, fds: list[int]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._fds = fds

    def persistent_id(self, obj: Any) -> Any:
        if isinstance(obj, Connection):
            self._fds.append(obj.fileno())
            return ("fd", len(self._fds) - 1, obj.readable, obj.writable)
        return None


def _dumps(obj: Any, fds: list[int]) -> bytes:
    buffer = io.BytesIO()
    _FdPickler(buffer, fds).dump(obj)
    return buffer.getvalue()


_DEFAULT: Spawner | None = None
_DEFAULT_LOCK = threading.Lock()


def default_spawner() -> Spawner:
    """The process-wide spawner replicas use (its zygote starts on first use, or at
    :func:`start_early`)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None:
            _DEFAULT = Spawner()
            atexit.register(_DEFAULT.close)
        return _DEFAULT


def start_early(references: Iterable[str] = ()) -> None:
    """Start the default zygote now, so its imports run while the server sets itself up, with
    the frameworks of the models about to be served: a package folder's flavor is read from its
    manifest; a registry reference's is not known yet, and scikit-learn is assumed (the default
    flavor, and XGBoost's and LightGBM's scikit-learn wrappers import it too)."""
    if sys.platform != "linux" or os.environ.get(START_ENV, "fork") == "spawn":
        return
    flavors = {
        (flavor_of(ref) if not ref.startswith("models:/") else None) or "sklearn"
        for ref in references
    }
    also = [name for flavor in sorted(flavors) for name in FLAVOR_PRELOAD.get(flavor, ())]
    with contextlib.suppress(SpawnerError):
        default_spawner().start(also)


def process(
    target: Callable[..., Any],
    args: Sequence[Any] = (),
    *,
    name: str | None = None,
    package: str | None = None,
) -> ForkedProcess:
    """A replica process (not yet started): forked by the default zygote on Linux, spawned
    elsewhere (fork is not safe on macOS) or where ``SEAWAY_REPLICA_START=spawn`` says so."""
    forked = sys.platform == "linux" and os.environ.get(START_ENV, "fork") != "spawn"
    spawner = default_spawner() if forked else None
    return ForkedProcess(spawner, target, tuple(args), name=name, package=package)


_BOOT = "import sys; from seaway.runtime.zygote import main; main(int(sys.argv[1]))"
