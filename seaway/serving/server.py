"""Running the server: HTTP and gRPC listeners, the controller, and a graceful shutdown.

Start-up: the listeners come up first (live, not ready) while the controller loads and warms every
model; readiness turns true only when all are ready. A model that fails to load at start stops the
server with the reason (later failures, on a hot swap, keep the old version serving instead).

Shutdown on SIGTERM or SIGINT: readiness turns false, the listeners stop accepting, in-flight
requests finish (up to the request timeout), batchers drain, replicas stop, and the process exits
0. A second signal stops waiting for in-flight requests. Background services (the batch scheduler,
``--scheduler``) start once the server is ready and are closed, off the event loop, at shutdown;
so does the alert evaluator (``monitor.py``; worker 0 only), which also keeps the monitoring
gauges of ``/metrics``.

``workers`` above 1 (``seaway serve --workers N``): a supervisor forks N front processes, each
running :func:`serve` with a :class:`~seaway.serving.workers.WorkerLink` (see
``seaway/serving/workers.py``). One worker runs exactly the one-process path.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import os
import signal
from collections.abc import Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import grpc
import uvicorn

from seaway.errors import ConfigError
from seaway.monitoring.feedback import feedback_root
from seaway.registry import Registry
from seaway.runtime import spawner
from seaway.serving import predlog
from seaway.serving.auth import Authenticator
from seaway.serving.config import ServeConfig
from seaway.serving.controller import Controller
from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_admin import DeploymentAdminService
from seaway.serving.feedback import FeedbackWriter
from seaway.serving.grpc.servicer import InferenceServicer, add_to_server
from seaway.serving.http.app import HttpOptions, create_app
from seaway.serving.logs import set_worker
from seaway.serving.metrics import Metrics, SharedMetrics
from seaway.serving.monitor import build_evaluator
from seaway.serving.tracing import check_environment
from seaway.serving.tracing import from_environment as tracing_from_environment
from seaway.serving.workers import WorkerLink, supervise

log = logging.getLogger("seaway.serving")
#: How often a front worker leaves its metrics for the others (several workers only).
_PUBLISH_SECONDS = 1.0


class Background(Protocol):
    """Work beside the server in its own thread (the batch scheduler): ``start`` returns at once,
    ``close`` stops it and blocks until it has stopped (it runs in a worker thread)."""

    def start(self) -> None: ...

    def close(self) -> None: ...


def run(
    config: ServeConfig, registry: Registry | None, background: Sequence[Background] = ()
) -> None:
    """Serve until a signal, on uvloop where it is installed (it is with uvicorn[standard]); with
    ``workers`` above 1, from that many forked front processes."""
    count = config.worker_count
    if count == 1:
        _run_loop(config, registry, background, None)
        return
    if registry is not None:
        registry.close()  # no pooled database connection may be shared by the forked workers
    _drop_zygote()
    check_environment()  # a missing seaway[otel] is said once, not by every worker

    others = config.model_copy(update={"scheduler": False})  # background work: worker 0 only

    def worker(link: WorkerLink) -> None:  # pragma: no cover - in the forked worker
        if link.index == 0:
            _run_loop(config, registry, background, link)
        else:
            _run_loop(others, registry, (), link)

    supervise(count, config.host, (config.port, config.grpc_port if config.grpc else None), worker)


def _drop_zygote() -> None:
    """Stop the zygote the CLI may have started early: one zygote serves one process, so each
    worker starts its own once forked (a shared one would mix the workers' requests)."""
    zygote = spawner.default_spawner()
    if zygote.zygote_pid is not None:  # not waiting for its imports to finish
        with contextlib.suppress(ProcessLookupError):
            os.kill(zygote.zygote_pid, signal.SIGKILL)
    zygote.close()


def _run_loop(
    config: ServeConfig,
    registry: Registry | None,
    background: Sequence[Background],
    worker: WorkerLink | None,
) -> None:
    spawner.start_early(config.models)  # the replicas' zygote imports while we set up
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop does not build on Windows
        asyncio.run(serve(config, registry, background, worker=worker))
    else:
        uvloop.run(serve(config, registry, background, worker=worker))


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM/SIGINT are ours (see ``serve``), so
    shutdown drains the replicas too and the process exits 0 instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    config: ServeConfig,
    registry: Registry | None,
    background: Sequence[Background] = (),
    *,
    worker: WorkerLink | None = None,
) -> None:
    if config.auth and registry is None:
        raise ConfigError("--auth needs a registry, where the API keys are kept")
    if config.scheduler and not background:
        raise ConfigError("scheduler is on but no scheduler was given (seaway serve builds one)")
    if worker is not None:
        set_worker(worker.index)
    metrics = Metrics(SharedMetrics(worker.metrics_folder, worker.index) if worker else None)
    plane = DataPlane(request_timeout=config.request_timeout)
    metrics.watch(lambda: plane.models)
    prediction_log = predlog.open_log(config)  # its writer thread starts with a logged model
    # true labels, beside the prediction log (POST /v2/models/{name}/feedback)
    feedback = FeedbackWriter(feedback_root(prediction_log.config.root))
    plane.log_models = predlog.attacher(prediction_log, config)
    metrics.registry.register(predlog.LogCollector(prediction_log))
    plane.on_model_error = metrics.model_error
    # alert rules: evaluated by one process (worker 0 with --workers), started once ready
    alerting = (
        build_evaluator(config, plane, metrics, registry)
        if worker is None or worker.index == 0
        else None
    )
    authenticator = Authenticator(config.rate_limit) if config.auth else None
    tracing = tracing_from_environment()  # None unless the OTEL_* variables ask (tracing.py)
    controller = Controller(
        plane,
        config.serving_options,
        registry=registry,
        metrics=metrics,
        authenticator=authenticator,
        poll_interval=config.poll_interval,
        deployments=config.deployments,
        log_root=prediction_log.config.root,
        lease_seconds=config.lease_seconds,
    )
    # the deployments admin API: on wherever there is a registry to keep them in
    admin = (
        DeploymentAdminService(
            registry,
            controller.deployments_changed,
            trusted=config.trusted,
            served_models=controller.model_names,
        )
        if registry is not None
        else None
    )
    app = create_app(
        plane,
        controller=controller,
        options=HttpOptions(max_body_bytes=config.max_body_size, access_log=config.access_log),
        authenticator=authenticator,
        metrics=metrics,
        tracing=tracing,
        feedback=feedback,
        deployments=admin,
    )
    http = _HttpServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            access_log=False,
            lifespan="off",
            ssl_certfile=config.ssl_certfile,
            ssl_keyfile=config.ssl_keyfile,
            timeout_graceful_shutdown=max(math.ceil(config.request_timeout), 5),
        )
    )
    grpc_server = None
    grpc_port = config.grpc_port if worker is None else worker.grpc_port
    # a replacement worker listens only once ready: it takes no connection it cannot serve yet
    listen_early = worker is None or worker.listen_early

    def grpc_listener() -> grpc.aio.Server:
        servicer = InferenceServicer(
            plane,
            controller=controller,
            authenticator=authenticator,
            metrics=metrics,
            access_log=config.access_log,
            tracing=tracing,
        )
        return _grpc_server(config, servicer, grpc_port, reuse_port=worker is not None)

    if config.grpc and listen_early:
        grpc_server = grpc_listener()

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal() -> None:
        if stopping.is_set():  # a second signal: stop waiting for in-flight requests
            http.force_exit = True
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    if worker is not None:  # EOF: the supervisor is gone (killed), so we go too
        loop.add_reader(
            worker.channel, _once(lambda: loop.remove_reader(worker.channel), on_signal)
        )

    http_task: asyncio.Task[None] | None = None
    grpc_started = False

    async def listen() -> None:
        nonlocal http_task, grpc_server, grpc_started
        if config.grpc and grpc_server is None:
            grpc_server = grpc_listener()
        sockets = None if worker is None else [worker.listening_socket(config.host)]
        http_task = loop.create_task(http.serve(sockets=sockets))
        if grpc_server is not None:
            await grpc_server.start()
            grpc_started = True
            log.info("gRPC listening on %s:%s", config.host, grpc_port)

    poll_task: asyncio.Task[None] | None = None
    publish_task: asyncio.Task[None] | None = None
    started: list[Background] = []
    try:
        plane.loading()
        if listen_early:
            await listen()
        try:
            await _until_first(controller.start(config.models), stopping, http_task)
        finally:
            plane.loaded()
        if not listen_early and not stopping.is_set():
            await listen()
        if not stopping.is_set() and http_task is not None and not http_task.done():
            # Everything alive now (modules, models) lives as long as the server: keep it out of
            # the collector's view, or each full collection walks it, stalling every request.
            gc.collect()
            gc.freeze()
            log.info("ready: %s", ", ".join(f"{m.name}/{m.version}" for m in plane.models))
            poll_task = loop.create_task(controller.run())
            if worker is not None:
                publish_task = loop.create_task(_publish(metrics))
                worker.ready()
            for service in background:
                service.start()
                started.append(service)
            if alerting is not None:
                alerting.start()
            await _until_first(stopping.wait(), stopping, http_task)
    finally:
        plane.accepting = False
        log.info("shutting down: finishing in-flight requests")
        for task in (poll_task, publish_task):
            if task is not None:
                task.cancel()
        if alerting is not None:
            await alerting.stop()
        http.should_exit = True
        grace = float(max(math.ceil(config.request_timeout), 5))
        stops: list[Any] = [] if http_task is None else [http_task]
        if grpc_server is not None and grpc_started:
            stops.append(grpc_server.stop(grace))
        stops.extend(asyncio.to_thread(service.close) for service in started)
        await asyncio.gather(*stops, return_exceptions=True)
        await controller.stop()
        await asyncio.to_thread(prediction_log.close)  # writes what is buffered: nothing is lost
        await feedback.close()  # labels being written when the server was asked to stop
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        metrics.publish()  # a worker's last counts, for the others' scrapes
        if tracing is not None:
            await asyncio.to_thread(tracing.close)  # exports the spans still buffered
        log.info("stopped")
    failure = (
        http_task.exception()
        if http_task is not None and http_task.done() and not http_task.cancelled()
        else None
    )
    if failure is not None:
        raise ConfigError(f"the HTTP server failed: {failure}")


async def _publish(metrics: Metrics) -> None:
    """Leave this worker's counts for the other workers' scrapes, once a second."""
    while True:
        metrics.publish()
        await asyncio.sleep(_PUBLISH_SECONDS)


def _once(*calls: Callable[[], object]) -> Callable[[], None]:
    def run() -> None:
        for call in calls:
            call()

    return run


async def _until_first(
    work: Awaitable[Any], stop: asyncio.Event, server: asyncio.Task[Any] | None
) -> None:
    """Await ``work`` unless a signal comes or the HTTP server ends first (then cancel it)."""
    main = asyncio.ensure_future(work)
    stop_wait = asyncio.ensure_future(stop.wait())
    waits = [main, stop_wait] if server is None else [main, stop_wait, server]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_wait.cancel()
    if main.done():
        main.result()  # raises what the work raised
        return
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main


def _grpc_server(
    config: ServeConfig, servicer: InferenceServicer, port: int, *, reuse_port: bool = False
) -> grpc.aio.Server:
    """``reuse_port``: front workers share the port (the supervisor checked it was free)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", config.max_body_size),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ]
    )
    add_to_server(servicer, server)
    address = f"{config.host}:{port}"
    if config.ssl_certfile and config.ssl_keyfile:
        try:
            pair = (Path(config.ssl_keyfile).read_bytes(), Path(config.ssl_certfile).read_bytes())
        except OSError as exc:
            raise ConfigError(f"cannot read the TLS files: {exc}") from exc
        credentials = grpc.ssl_server_credentials([pair])
        bound = server.add_secure_port(address, credentials)
    else:
        bound = server.add_insecure_port(address)
    if not bound:
        raise ConfigError(f"cannot listen for gRPC on {address}: the port is taken or invalid")
    return server
