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
between Python versions. The zygote is a small protocol of our own over a Unix socket.

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
import gc
import importlib
import io
import json
import logging
import multiprocessing
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

log = logging.getLogger("seaway.runtime.spawner")

#: Imported by every zygote: what every replica needs before it knows its model.
BASE_PRELOAD: tuple[str, ...] = ("numpy", "pandas", "seaway.runtime.replica")
#: Per flavor (the manifest's ``flavor``): ``module`` or ``module:function`` (called, no args).
FLAVOR_PRELOAD: dict[str, tuple[str, ...]] = {
    "sklearn": ("sklearn", "seaway.packaging.flavors.sklearn:skops_io"),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
}
#: ``spawn`` starts every replica from scratch, as before the zygote (a way out, and a baseline)
START_ENV = "SEAWAY_REPLICA_START"
_MAX_MESSAGE = 1 << 22
_STATUS = struct.Struct("i")
_UNKNOWN_EXIT = 255  # the zygote died before it could report a child's exit


class SpawnerError(RuntimeError):
    """The zygote could not be reached (the caller falls back to spawn)."""


# ---- server side ---------------------------------------------------------------------------------


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
                    data, got, flags, _ = socket.recv_fds(self._sock, _MAX_MESSAGE, 1)
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
                data = os.read(self.sentinel, _STATUS.size)
                if len(data) == _STATUS.size:
                    self._returncode = _STATUS.unpack(data)[0]
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


class _FdUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, fds: Sequence[int]) -> None:
        super().__init__(io.BytesIO(data))
        self._fds = fds

    def persistent_load(self, pid: Any) -> Any:
        _, index, readable, writable = pid
        return Connection(self._fds[index], readable=readable, writable=writable)


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


# ---- zygote side ---------------------------------------------------------------------------------

_BOOT = (
    "import sys; from seaway.runtime.spawner import _zygote_main; _zygote_main(int(sys.argv[1]))"
)


def preload(names: Iterable[str]) -> list[str]:
    """Import ``module`` / call ``module:function`` for each name; returns those that failed (a
    framework that is not installed is simply not preloaded)."""
    failed = []
    for name in names:
        module, _, function = name.partition(":")
        try:
            loaded = importlib.import_module(module)
            if function:
                getattr(loaded, function)()
        except Exception:
            failed.append(name)
    return failed


def flavor_of(package: str) -> str | None:
    """The flavor a package's manifest names, or None when it cannot be read."""
    try:
        data = json.loads((Path(package) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    flavor = data.get("flavor") if isinstance(data, dict) else None
    return flavor if isinstance(flavor, str) else None


def _zygote_main(fd: int) -> None:  # pragma: no cover - runs in the zygote (tested through it)
    for sig in (signal.SIGINT, signal.SIGTERM):  # the server's to handle; we go when it goes
        signal.signal(sig, signal.SIG_IGN)
    _set_name("seaway-zygote")
    sock = socket.socket(fileno=fd)
    data = sock.recv(_MAX_MESSAGE)
    if not data:
        return
    sys_path, base = pickle.loads(data)
    sys.path[:] = sys_path
    loaded: set[str] = set()
    _preload(base, loaded)
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, int] = {}  # pid -> write end of its status pipe
    while True:
        readable = select.select([sock.fileno(), wake_r], [], [])[0]
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(children)
        if sock.fileno() not in readable:
            continue
        try:
            data, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, 16)
        except OSError:
            data, fds = b"", []
        if not data:  # the server is gone (or closed us): so are its replicas
            for pid in children:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for pid in list(children):
                with contextlib.suppress(ChildProcessError):
                    _report(children, pid, os.waitpid(pid, 0)[1])
            return
        try:
            message = pickle.loads(data)
            if message[0] == "preload":  # a hint: nothing to answer
                _preload(message[1], loaded)
                continue
            _, payload, package, environ, cwd, path, name = message
            flavor = flavor_of(package) if package else None
            _preload(FLAVOR_PRELOAD.get(flavor or "", ()), loaded)
            status_r, status_w = os.pipe()
            with warnings.catch_warnings():  # 3.12+ warns on forking with threads; see above
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                sock.close()
                for end in (wake_r, wake_w, status_r, status_w, *children.values()):
                    os.close(end)
                _child(payload, fds, environ, cwd, path, name)
            children[pid] = status_w
            socket.send_fds(sock, [pickle.dumps(("ok", pid))], [status_r])
            os.close(status_r)
        except Exception as exc:
            with contextlib.suppress(OSError):
                sock.sendmsg([pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))])
        finally:
            for received in fds:
                os.close(received)


def _preload(names: Iterable[str], loaded: set[str]) -> None:  # pragma: no cover - in the zygote
    todo = [name for name in names if name not in loaded]
    if not todo:
        return
    preload(todo)
    loaded.update(todo)
    gc.collect()
    gc.freeze()  # children share these pages: their collections must not write to every object


def _reap(children: dict[int, int]) -> None:  # pragma: no cover - runs in the zygote
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _report(children, pid, status)


def _report(children: dict[int, int], pid: int, status: int) -> None:  # pragma: no cover
    end = children.pop(pid, None)
    if end is not None:
        with contextlib.suppress(OSError):
            os.write(end, _STATUS.pack(os.waitstatus_to_exitcode(status)))
        os.close(end)


def _set_name(name: str) -> None:  # pragma: no cover - runs in the zygote and its children
    """The process's name in ps and top (its command line stays the zygote's); the kernel keeps
    15 characters, so ``seaway-replica-12`` becomes ``replica-12``."""
    short = name if len(name) <= 15 else name.removeprefix("seaway-")[:15]
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(short)


def _child(  # pragma: no cover - runs in the child
    payload: bytes,
    fds: list[int],
    environ: dict[str, str],
    cwd: str,
    path: list[str],
    name: str | None,
) -> None:
    """In the forked child: become a clean process, run the target, exit with its status."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    if name:
        _set_name(name)
    code = 0
    try:
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        sys.path[:] = path
        target, args = _FdUnpickler(payload, fds).load()
        target(*args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)
