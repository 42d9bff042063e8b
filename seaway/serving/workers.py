"""Several front processes: ``seaway serve --workers N``.

One process parses every request (HTTP and gRPC run on its one event loop), so on a machine with
cores to spare it is the ceiling whatever ``--replicas`` says. With ``--workers N`` a *supervisor*
forks N front workers before any thread, event loop or replica zygote exists; each runs the whole
server of one process (controller, data plane, its own zygote and replicas) and listens on the
same HTTP and gRPC ports with ``SO_REUSEPORT``, so the kernel spreads new connections across them.

The supervisor:

- **holds the ports**: it resolves port 0 and checks the ports are free (a bind without
  ``SO_REUSEPORT``, so a second server cannot silently share them), then keeps a bound, not
  listening, ``SO_REUSEPORT`` socket on each for as long as it runs;
- **forwards signals**: SIGTERM or SIGINT to it is sent on to every worker as SIGTERM (each
  drains as one server does), a second one again (workers then stop waiting for requests). The
  workers live in their own process group, so a terminal's Ctrl-C reaches them once, through it.
  A worker whose supervisor is gone (SIGKILL) reads EOF on its channel and shuts down;
- **restarts a worker that dies** once all have been ready. The replacement loads its models
  before it listens, so it takes no connection it cannot serve. A worker that dies before it is
  ready while the server starts fails the whole server with the worker's own error (a bad model
  fails ``seaway serve`` at start as with one process); a replacement that keeps dying before it is
  ready is retried with backoff, and after :data:`MAX_FAILED_STARTS` in a row the server stops
  with an error;
- **keeps the metrics folder** where workers leave their counters (``seaway/serving/metrics.py``).

What each worker does alone: readiness (``/v2/health/ready`` answers for the worker that took the
connection), registry polling and hot swaps (each swaps on its own poll, so during a swap two
workers may briefly answer different versions), API keys and their rate limits (counted per
worker: a key may get up to N times its limit across N workers). Background services (the batch
scheduler) run in worker 0 only.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import select
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from seaway.errors import SeawayError, ServingError
from seaway.serving import logs, metrics

log = logging.getLogger("seaway.serving.workers")

#: Replacement starts in a row that die before ready, after which the server gives up.
MAX_FAILED_STARTS = 5
_BACKOFF_CAP = 30.0
_READY = b"ready"


@dataclass
class WorkerLink:
    """What a worker knows of its supervisor: its number, the ports, its channel."""

    index: int
    count: int
    http_port: int
    grpc_port: int
    channel: socket.socket
    metrics_folder: Path
    #: listen while the models load (worker 0's first start) or only once ready (the others, and
    #: every replacement)
    listen_early: bool

    def listening_socket(self, host: str) -> socket.socket:
        """This worker's own HTTP listening socket on the shared port."""
        return reuse_port_socket(host, self.http_port, listen=True)

    def ready(self) -> None:
        with contextlib.suppress(OSError):
            self.channel.send(_READY)

    def failed(self, exc: BaseException) -> None:
        try:
            message = pickle.dumps(exc)
            pickle.loads(message)
        except Exception:  # not picklable: keep its words
            message = pickle.dumps(ServingError(str(exc) or type(exc).__name__))
        with contextlib.suppress(OSError):
            self.channel.send(message)


def reuse_port_socket(host: str, port: int, *, listen: bool) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        if listen:
            sock.listen(2048)
            sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def check_port(host: str, port: int, flag: str) -> int:
    """Raise ``ServingError`` naming ``flag`` unless ``host:port`` can be bound now; the port
    (port 0: a free one the system picked). ``seaway serve`` checks its ports this way before it
    starts anything, whatever the number of workers."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except OSError as exc:  # socket.gaierror: a host name that does not resolve
        raise ServingError(f"cannot listen on {host}:{port} (--host): {exc}") from exc
    with socket.socket(family, kind, proto) as probe:
        # as the server's own sockets: a port whose only sockets are a killed server's
        # connections in TIME_WAIT is free (a listener on it still refuses the bind)
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise ServingError(
                f"cannot listen on {host}:{port} ({flag}): {exc.strerror or exc}; "
                "the port is taken or the address is not this machine's"
            ) from exc
        return int(probe.getsockname()[1])


def _reserve(host: str, port: int, flag: str) -> tuple[int, socket.socket]:
    """Check ``port`` is free, and hold it (port 0: a free one) for the workers."""
    port = check_port(host, port, flag)
    try:
        return port, reuse_port_socket(host, port, listen=False)
    except OSError as exc:
        raise ServingError(f"cannot hold {host}:{port} ({flag}): {exc.strerror or exc}") from exc


@dataclass
class _Worker:
    index: int
    pid: int
    channel: socket.socket
    ready: bool = False
    error: BaseException | None = None


@dataclass
class _State:
    count: int
    workers: dict[int, _Worker] = field(default_factory=dict)
    restarts: dict[int, float] = field(default_factory=dict)  # index -> when
    failed_starts: dict[int, int] = field(default_factory=dict)
    signals: int = 0
    started: bool = False  # every worker has been ready once
    fatal: BaseException | None = None
    unclean: list[str] = field(default_factory=list)


def supervise(
    count: int,
    host: str,
    ports: tuple[int, int | None],
    target: Callable[[WorkerLink], None],
) -> None:
    """Run ``target`` in ``count`` forked workers until a signal; raises the error a worker failed
    its start with. ``ports``: HTTP and gRPC (None: no gRPC)."""
    http_port, http_hold = _reserve(host, ports[0], "--port")
    holds = [http_hold]
    grpc_port = 0
    if ports[1] is not None:
        try:
            grpc_port, grpc_hold = _reserve(host, ports[1], "--grpc-port")
        except BaseException:
            http_hold.close()
            raise
        holds.append(grpc_hold)
    folder = Path(tempfile.mkdtemp(prefix="seaway-workers-"))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    state = _State(count)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        state.signals += 1

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    old_wakeup = signal.set_wakeup_fd(wake_w)

    def start(index: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        link = WorkerLink(
            index,
            count,
            http_port,
            grpc_port,
            theirs,
            folder,
            # one worker is live at once; the others take connections only once they can serve
            # them (with every worker early, one still loading answered "not served here")
            listen_early=not state.started and index == 0,
        )
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the worker (tested through a real server)
            code = 1
            try:
                ours.close()
                for other in state.workers.values():  # or they would outlive us in this one
                    other.channel.close()
                for hold in holds:
                    hold.close()
                os.close(wake_r)
                os.close(wake_w)
                code = _worker_main(link, target)
            finally:
                os._exit(code)
        theirs.close()
        state.workers[index] = _Worker(index, pid, ours)
        log.info("worker %d started (pid %d)", index, pid)

    log.info(
        "starting %d workers on %s: HTTP port %d%s",
        count,
        host,
        http_port,
        f", gRPC port {grpc_port}" if ports[1] is not None else "",
    )
    try:
        for index in range(count):
            start(index)
        forwarded = 0
        while state.workers:
            if state.signals > forwarded:
                forwarded = state.signals
                _stop_all(state, "a signal")
            now = time.monotonic()
            if state.signals == 0 and state.fatal is None:
                for index, when in sorted(state.restarts.items()):
                    if when <= now:
                        del state.restarts[index]
                        start(index)
            _wait(state, wake_r)
            _read_channels(state)
            _reap(state, folder)
        if state.fatal is not None:
            raise state.fatal
        if state.unclean:
            raise ServingError("; ".join(state.unclean))
    finally:
        for worker in state.workers.values():  # only after an error of our own
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGKILL)
            os.waitpid(worker.pid, 0)
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)
        for hold in holds:
            hold.close()
        shutil.rmtree(folder, ignore_errors=True)
        log.info("stopped")


def _worker_main(link: WorkerLink, target: Callable[[WorkerLink], None]) -> int:  # pragma: no cover
    """In the forked worker: its own process group and signals, its number in every log line."""
    os.setpgid(0, 0)  # a terminal's Ctrl-C reaches the supervisor only, which forwards it
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    logs.set_worker(link.index)
    try:
        target(link)
    except SeawayError as exc:
        link.failed(exc)
        log.error("%s", exc)
        return 1
    except BaseException as exc:
        link.failed(exc)
        log.exception("the worker failed")
        return 1
    return 0


def _stop_all(state: _State, why: str) -> None:
    log.info("stopping %d worker(s) after %s", len(state.workers), why)
    state.restarts.clear()
    for worker in state.workers.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker.pid, signal.SIGTERM)


def _wait(state: _State, wake_r: int) -> None:
    timeout = 1.0
    if state.restarts and not state.signals:
        timeout = max(0.0, min(timeout, min(state.restarts.values()) - time.monotonic()))
    fds = [wake_r, *(worker.channel.fileno() for worker in state.workers.values())]
    with contextlib.suppress(InterruptedError):
        select.select(fds, [], [], timeout)
    with contextlib.suppress(BlockingIOError):
        while os.read(wake_r, 512):
            pass


def _read_channels(state: _State) -> None:
    for worker in state.workers.values():
        while True:
            try:
                message = worker.channel.recv(1 << 20, socket.MSG_DONTWAIT)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                message = b""
            if not message:
                break
            if message == _READY:
                worker.ready = True
                state.failed_starts.pop(worker.index, None)
                log.info("worker %d ready (pid %d)", worker.index, worker.pid)
                if not state.started and all(w.ready for w in state.workers.values()):
                    state.started = len(state.workers) == state.count
            else:
                with contextlib.suppress(Exception):
                    worker.error = pickle.loads(message)


def _reap(state: _State, folder: Path) -> None:
    while state.workers:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        worker = next((w for w in state.workers.values() if w.pid == pid), None)
        if worker is None:
            continue
        _read_channels(state)  # what it said before it went
        del state.workers[worker.index]
        worker.channel.close()
        metrics.retire(folder, worker.index)
        code = os.waitstatus_to_exitcode(status)
        _gone(state, worker, code)


def _gone(state: _State, worker: _Worker, code: int) -> None:
    what = f"worker {worker.index} (pid {worker.pid}) exited with code {code}"
    if state.signals or state.fatal is not None:
        # a worker still starting may take the forwarded SIGTERM before it handles signals
        if code not in (0, -signal.SIGTERM) and state.fatal is None:
            state.unclean.append(what)
        return
    if not state.started:
        log.error("%s before it was ready: stopping the server", what)
        state.fatal = worker.error or ServingError(f"{what} before it was ready; see its log")
        _stop_all(state, "a failed start")
        return
    if worker.ready:
        log.warning("%s; starting a new one", what)
        state.restarts[worker.index] = time.monotonic()
        return
    failures = state.failed_starts.get(worker.index, 0) + 1
    state.failed_starts[worker.index] = failures
    if failures >= MAX_FAILED_STARTS:
        log.error("%s before it was ready, %d times in a row: stopping the server", what, failures)
        reason = worker.error or ServingError(f"{what} before it was ready")
        state.fatal = ServingError(
            f"worker {worker.index} failed to start {failures} times in a row: {reason}"
        )
        _stop_all(state, "repeated failed starts")
        return
    delay = min(_BACKOFF_CAP, 0.5 * 2**failures)
    log.warning("%s before it was ready (%s); trying again in %.1f s", what, worker.error, delay)
    state.restarts[worker.index] = time.monotonic() + delay
