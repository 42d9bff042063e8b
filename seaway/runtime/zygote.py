"""The replica zygote's side of ``spawner.py``: a process that imports once and forks on request.

Started by :class:`seaway.runtime.spawner.Spawner` as ``python -c`` with one end of a Unix
``SOCK_SEQPACKET`` socket pair. Its first message is ``(sys.path, preload)``; then each message is
either ``("preload", names)`` (import them now; no answer) or ``("spawn", payload, package,
environ, cwd, sys.path, name)`` with the child's pipes as file descriptors, answered
``("ok", pid)`` with the read end of the child's status pipe, or ``("error", message)``. When a
child exits, its exit code (``os.waitstatus_to_exitcode``) is written to its status pipe.

This module imports nothing but the standard library: what the zygote holds is what it preloads.
See ``spawner.py`` for the rules it keeps (never run model code; preload only frameworks that start
no thread pool at import).
"""

from __future__ import annotations

import contextlib
import gc
import importlib
import io
import json
import os
import pickle
import select
import signal
import socket
import struct
import sys
import traceback
import warnings
from collections.abc import Iterable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

#: Imported by every zygote: what every replica needs before it knows its model.
BASE_PRELOAD: tuple[str, ...] = ("numpy", "pandas", "seaway.runtime.replica")
#: Per flavor (the manifest's ``flavor``): ``module`` or ``module:function`` (called, no args).
FLAVOR_PRELOAD: dict[str, tuple[str, ...]] = {
    "sklearn": ("sklearn", "seaway.packaging.flavors.sklearn:skops_io"),
    "xgboost": ("xgboost",),
    "lightgbm": ("lightgbm",),
}
MAX_MESSAGE = 1 << 22
#: A child's exit code on its status pipe.
STATUS = struct.Struct("i")


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


def main(fd: int) -> None:  # pragma: no cover - runs in the zygote (tested through it)
    """The zygote's loop: preload, then fork a child per request and reap them."""
    for sig in (signal.SIGINT, signal.SIGTERM):  # the server's to handle; we go when it goes
        signal.signal(sig, signal.SIG_IGN)
    _set_name("seaway-zygote")
    sock = socket.socket(fileno=fd)
    data = sock.recv(MAX_MESSAGE)
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
            data, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 16)
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
            os.write(end, STATUS.pack(os.waitstatus_to_exitcode(status)))
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


class _FdUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, fds: Sequence[int]) -> None:
        super().__init__(io.BytesIO(data))
        self._fds = fds

    def persistent_load(self, pid: Any) -> Any:
        _, index, readable, writable = pid
        return Connection(self._fds[index], readable=readable, writable=writable)
