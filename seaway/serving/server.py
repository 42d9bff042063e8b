"""Running the server: HTTP and gRPC listeners, the controller, and a graceful shutdown.

Start-up: the listeners come up first (live, not ready) while the controller loads and warms every
model; readiness turns true only when all are ready. A model that fails to load at start stops the
server with the reason (later failures, on a hot swap, keep the old version serving instead).

Shutdown on SIGTERM or SIGINT: readiness turns false, the listeners stop accepting, in-flight
requests finish (up to the request timeout), batchers drain, replicas stop, and the process exits
0. A second signal stops waiting for in-flight requests. Background services (the batch scheduler,
``--scheduler``) start once the server is ready and are closed, off the event loop, at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import signal
from collections.abc import Awaitable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import grpc
import uvicorn

from seaway.errors import ConfigError
from seaway.registry import Registry
from seaway.runtime import spawner
from seaway.serving.auth import Authenticator
from seaway.serving.config import ServeConfig
from seaway.serving.controller import Controller
from seaway.serving.dataplane import DataPlane
from seaway.serving.grpc.servicer import InferenceServicer, add_to_server
from seaway.serving.http.app import HttpOptions, create_app
from seaway.serving.metrics import Metrics

log = logging.getLogger("seaway.serving")


class Background(Protocol):
    """Work beside the server in its own thread (the batch scheduler): ``start`` returns at once,
    ``close`` stops it and blocks until it has stopped (it runs in a worker thread)."""

    def start(self) -> None: ...

    def close(self) -> None: ...


def run(
    config: ServeConfig, registry: Registry | None, background: Sequence[Background] = ()
) -> None:
    """Serve until a signal, on uvloop where it is installed (it is with uvicorn[standard])."""
    spawner.start_early(config.models)  # the replicas' zygote imports while we set up
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop does not build on Windows
        asyncio.run(serve(config, registry, background))
    else:
        uvloop.run(serve(config, registry, background))


class _HttpServer(uvicorn.Server):
    """uvicorn without its own signal handling: SIGTERM/SIGINT are ours (see ``serve``), so
    shutdown drains the replicas too and the process exits 0 instead of re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(
    config: ServeConfig, registry: Registry | None, background: Sequence[Background] = ()
) -> None:
    if config.auth and registry is None:
        raise ConfigError("--auth needs a registry, where the API keys are kept")
    if config.scheduler and not background:
        raise ConfigError("scheduler is on but no scheduler was given (seaway serve builds one)")
    metrics = Metrics()
    plane = DataPlane(request_timeout=config.request_timeout)
    metrics.watch(lambda: plane.models)
    authenticator = Authenticator(config.rate_limit) if config.auth else None
    controller = Controller(
        plane,
        config.serving_options,
        registry=registry,
        metrics=metrics,
        authenticator=authenticator,
        poll_interval=config.poll_interval,
    )
    app = create_app(
        plane,
        controller=controller,
        options=HttpOptions(max_body_bytes=config.max_body_size, access_log=config.access_log),
        authenticator=authenticator,
        metrics=metrics,
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
    if config.grpc:
        servicer = InferenceServicer(
            plane,
            controller=controller,
            authenticator=authenticator,
            metrics=metrics,
            access_log=config.access_log,
        )
        grpc_server = _grpc_server(config, servicer)

    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()

    def on_signal() -> None:
        if stopping.is_set():  # a second signal: stop waiting for in-flight requests
            http.force_exit = True
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)

    http_task = loop.create_task(http.serve())
    poll_task: asyncio.Task[None] | None = None
    started: list[Background] = []
    try:
        if grpc_server is not None:
            await grpc_server.start()
            log.info("gRPC listening on %s:%s", config.host, config.grpc_port)
        await _until_first(controller.start(config.models), stopping, http_task)
        if not stopping.is_set() and not http_task.done():
            # Everything alive now (modules, models) lives as long as the server: keep it out of
            # the collector's view, or each full collection walks it, stalling every request.
            gc.collect()
            gc.freeze()
            log.info("ready: %s", ", ".join(f"{m.name}/{m.version}" for m in plane.models))
            poll_task = loop.create_task(controller.run())
            for service in background:
                service.start()
                started.append(service)
            await _until_first(stopping.wait(), stopping, http_task)
    finally:
        plane.accepting = False
        log.info("shutting down: finishing in-flight requests")
        if poll_task is not None:
            poll_task.cancel()
        http.should_exit = True
        grace = float(max(math.ceil(config.request_timeout), 5))
        stops: list[Any] = [http_task]
        if grpc_server is not None:
            stops.append(grpc_server.stop(grace))
        stops.extend(asyncio.to_thread(service.close) for service in started)
        await asyncio.gather(*stops, return_exceptions=True)
        await controller.stop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        log.info("stopped")
    if http_task.done() and not http_task.cancelled() and http_task.exception() is not None:
        raise ConfigError(f"the HTTP server failed: {http_task.exception()}")


async def _until_first(
    work: Awaitable[Any], stop: asyncio.Event, server: asyncio.Task[Any]
) -> None:
    """Await ``work`` unless a signal comes or the HTTP server ends first (then cancel it)."""
    main = asyncio.ensure_future(work)
    stop_wait = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([main, stop_wait, server], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stop_wait.cancel()
    if main.done():
        main.result()  # raises what the work raised
        return
    main.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await main


def _grpc_server(config: ServeConfig, servicer: InferenceServicer) -> grpc.aio.Server:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", config.max_body_size),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ]
    )
    add_to_server(servicer, server)
    address = f"{config.host}:{config.grpc_port}"
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
