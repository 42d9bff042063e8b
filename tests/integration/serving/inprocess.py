"""A REST and gRPC server in this process, over a data plane the test builds by hand.

``seaway serve`` builds its routing table from the registry; a test of the data plane and its
adapters builds one itself (real versions with real replicas, deployments of them) and serves it
on free ports from a thread with its own event loop, so real clients can call it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

import grpc
import uvicorn
from servers import free_port

from seaway.serving.dataplane import DataPlane
from seaway.serving.deployment_route import DeploymentRoute
from seaway.serving.feedback import FeedbackWriter
from seaway.serving.grpc.servicer import InferenceServicer, add_to_server
from seaway.serving.http.app import create_app
from seaway.serving.model import ServedModel

T = TypeVar("T")
#: what a test gives: the versions to serve as models, and the deployments (built once started)
Build = Callable[[], Awaitable[tuple[Sequence[ServedModel], Sequence[DeploymentRoute]]]]


@dataclass
class InProcessServer:
    plane: DataPlane
    port: int
    grpc_port: int
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def call(self, work: Callable[[], Awaitable[T]], timeout: float = 60) -> T:
        """Run ``work`` on the server's loop (where its data plane lives) and wait for it."""

        async def run() -> T:
            return await work()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout)


class Serving:
    """Start with :meth:`start`, stop with :meth:`stop` (in a fixture's teardown)."""

    def __init__(self, build: Build, feedback_root: str | None = None) -> None:
        self._build = build
        self._feedback_root = feedback_root
        self._started: Future[InProcessServer] = Future()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self, timeout: float = 180) -> InProcessServer:
        self._thread.start()
        return self._started.result(timeout)

    def stop(self) -> None:
        server = self._started.result(0) if self._started.done() else None
        if server is not None and self._stop is not None:
            server.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(60)

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        plane = DataPlane(request_timeout=60)
        try:
            models, routes = await self._build()
            plane.publish(models, deployments=routes)
            writer = FeedbackWriter(self._feedback_root) if self._feedback_root else None
            port, grpc_port = free_port(), free_port()
            http = uvicorn.Server(
                uvicorn.Config(
                    create_app(plane, feedback=writer),
                    host="127.0.0.1",
                    port=port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                )
            )
            rpc = grpc.aio.server()
            add_to_server(InferenceServicer(plane), rpc)
            rpc.add_insecure_port(f"127.0.0.1:{grpc_port}")
            await rpc.start()
            serving = asyncio.create_task(http.serve())
            while not http.started:
                if serving.done():
                    serving.result()
                await asyncio.sleep(0.01)
        except BaseException as exc:
            self._started.set_exception(exc)
            await plane.stop(drain=False)
            return
        self._started.set_result(
            InProcessServer(plane, port, grpc_port, asyncio.get_running_loop())
        )
        try:
            await self._stop.wait()
        finally:
            http.should_exit = True
            await asyncio.gather(serving, rpc.stop(1), return_exceptions=True)
            await plane.stop(drain=False)
