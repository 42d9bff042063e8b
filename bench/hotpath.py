"""Seaway's request path taken apart, in process: what one single-row request costs at each stage.

    .venv/bin/python bench/hotpath.py [rf|lr]      # default lr; pinned to core 0 with its replica

No network and no load generator: each stage is called in a loop on one core (the replica process
inherits the pin, as under ``seaway serve`` in bench/serving.py) and timed as the best of three
rounds, on uvloop as ``seaway serve`` runs. The ASGI apps are called directly with a prepared
scope, so uvicorn and the sockets are left out. The floor (bench/floor.py) runs the same way for
comparison. This reaches into Seaway's internals (ServedModel, DataPlane, create_app, the
replica's ``_predict``, the pool's replicas): it may need updating when they change.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import pickle
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import floor
import numpy as np
import orjson
import serving

ROUNDS = 3
REPLICA_CALL = "seaway: Replica.call (framed arrays, pipe, child predicts, back)"


def timed(fn: Callable[[], Any], n: int) -> float:
    for _ in range(min(n, 200)):
        fn()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


async def timed_async(fn: Callable[[], Awaitable[Any]], n: int) -> float:
    for _ in range(min(n, 200)):
        await fn()
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(n):
            await fn()
        best = min(best, (time.perf_counter() - started) / n)
    return best * 1e6


def asgi_call(app: Any, path: str, body: bytes, method: str = "POST") -> Callable[[], Any]:
    headers = [(b"host", b"127.0.0.1"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": headers, "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8080), "state": {},
    }  # fmt: skip

    async def call() -> None:
        messages = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop() if messages else {"type": "http.disconnect"}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(dict(scope), receive, send)
        if status != [200]:
            raise RuntimeError(f"{path} answered {status}")

    return call


def _echo(inbox: Connection, outbox: Connection) -> None:
    """A replica that does nothing: the cost of the process hop alone."""
    from seaway.runtime.channel import Channel

    channel = Channel(inbox.fileno(), outbox.fileno())
    reply = {"predict": np.zeros(1, dtype=np.int64)}
    while channel.recv()[0] is not None:
        channel.send("ok", reply)


async def pipe_round_trip(native: Any, n: int) -> float:
    """Parent side as in seaway.runtime.replica: send, then wait on the loop's reader callback."""
    from seaway.runtime.channel import Channel

    context = multiprocessing.get_context("spawn")
    child_in, to_child = context.Pipe(duplex=False)
    from_child, child_out = context.Pipe(duplex=False)
    process = context.Process(target=_echo, args=(child_in, child_out), daemon=True)
    process.start()
    channel = Channel(from_child.fileno(), to_child.fileno())
    loop = asyncio.get_running_loop()
    waiter: list[asyncio.Future[Any]] = []
    loop.add_reader(from_child.fileno(), lambda: waiter.pop().set_result(channel.recv()))

    async def once() -> Any:
        future = loop.create_future()
        waiter.append(future)
        channel.send(("predict",), native)
        return await future

    try:
        return await timed_async(once, n)
    finally:
        loop.remove_reader(from_child.fileno())
        channel.send(None)
        process.join(5)


def full_collection_ms() -> tuple[float, int]:
    """A full gc pass in a fresh interpreter that imported what ``seaway serve`` imports."""
    code = (
        "import gc, time, seaway.cli.main, seaway.serving.server\n"
        "t = time.perf_counter(); gc.collect(); ms = (time.perf_counter() - t) * 1000\n"
        "print(ms, len(gc.get_objects()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    ms, objects = out.stdout.split()
    return float(ms), int(objects)


async def measure(which: str, n: int) -> list[tuple[str, float]]:
    import seaway
    from seaway.packaging.reader import open_package
    from seaway.protocol import rest
    from seaway.runtime.model import load_package
    from seaway.runtime.replica import _predict
    from seaway.serving.dataplane import DataPlane
    from seaway.serving.http.app import create_app
    from seaway.serving.metrics import Metrics
    from seaway.serving.model import ServedModel, ServingOptions

    models, x = serving.train_models()
    model = models[which]
    body = serving.request_body([float(v) for v in x[7]])
    route = f"/v2/models/{which}/infer"
    tmp = Path(tempfile.mkdtemp(prefix="seaway-hotpath-"))
    package = seaway.save_model(model, tmp / "package", sample_input=x[:20])
    served = ServedModel(
        which, "1", str(package.path), open_package(package.path).manifest, ServingOptions()
    )
    await served.start()
    try:
        plane = DataPlane(request_timeout=30.0)
        plane.publish([served])
        app = create_app(plane, metrics=Metrics())
        request = rest.decode_infer_request(
            body, model_name=which, model_version=None, header_length=None
        )
        native, _ = served.native_inputs(request.inputs)
        response = await plane.infer(request)
        outputs = {"predict": model.predict(native)}
        loaded = load_package(package.path)
        replica = served.pool._replicas[0]

        def floor_parse() -> Any:
            tensor = orjson.loads(body)["inputs"][0]
            return np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])

        results = [
            ("floor: whole request (parse, predict, encode)", await timed_async(
                asgi_call(floor.make_app({which: model}), route, body), n)),
            ("floor: parse (orjson, numpy)", timed(floor_parse, n)),
            ("model.predict, 1 row (sklearn, no Seaway)", timed(lambda: model.predict(native), n)),
            ("seaway: whole request, real replica", await timed_async(
                asgi_call(app, route, body), n)),
            ("seaway: DataPlane.infer (batcher, pool, replica)", await timed_async(
                lambda: plane.infer(request), n)),
            ("seaway: ReplicaPool.call (free replica, deadline, replica)", await timed_async(
                lambda: served.pool.call(native, ["predict"]), n)),
            (REPLICA_CALL, await timed_async(
                lambda: replica.call(native, ["predict"]), n)),
            ("seaway child: _predict (signature coerce, predict, split)", timed(
                lambda: _predict(loaded, native, ["predict"]), n)),
            ("process hop alone: echo child, same pipe protocol", await pipe_round_trip(
                native, n)),
            ("pickle dumps+loads of one call (what the wire no longer does)", timed(
                lambda: pickle.loads(pickle.dumps((native, ("predict",)))), n)),
            ("seaway: rest.decode_infer_request", timed(lambda: rest.decode_infer_request(
                body, model_name=which, model_version=None, header_length=None), n)),
            ("seaway: ServedModel.native_inputs (signature coerce)", timed(
                lambda: served.native_inputs(request.inputs), n)),
            ("seaway: rest.encode_infer_response", timed(
                lambda: rest.encode_infer_response(response, request), n)),
        ]  # fmt: skip

        async def no_replica(inputs: Any, wanted: Any) -> dict[str, Any]:
            return dict(outputs)

        served.pool.call = no_replica  # type: ignore[method-assign]
        results.insert(4, ("seaway: whole request, replica call stubbed out", await timed_async(
            asgi_call(app, route, body), n)))  # fmt: skip
        results.insert(5, ("seaway: DataPlane.infer, replica call stubbed out", await timed_async(
            lambda: plane.infer(request), n)))  # fmt: skip
    finally:
        await served.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description="Seaway's request path, stage by stage.")
    parser.add_argument("model", nargs="?", default="lr", choices=["lr", "rf"])
    parser.add_argument("--core", type=int, default=0)
    parser.add_argument("-n", type=int, default=2000, help="calls per round [2000]")
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    n = args.n if args.model == "lr" else max(args.n // 10, 50)
    try:
        import uvloop  # seaway serve runs on uvloop where it is installed
    except ImportError:
        results = asyncio.run(measure(args.model, n))
    else:
        results = uvloop.run(measure(args.model, n))
    print(f"{args.model}: microseconds per single-row request, in process, core {args.core}")
    for name, us in results:
        print(f"{us:9.1f}  {name}")
    us = dict(results)
    whole, replica = us["seaway: whole request, real replica"], us[REPLICA_CALL]
    hop = us["process hop alone: echo child, same pipe protocol"]
    print("derived:")
    print(f"{whole - us['floor: whole request (parse, predict, encode)']:9.1f}  seaway over floor")
    print(f"{replica - hop:9.1f}  the replica's share of Replica.call (predict, interleaved)")
    print(f"{whole - replica:9.1f}  seaway server-side work around Replica.call")
    ms, objects = full_collection_ms()
    print(f"a full gc.collect() after importing the server: {ms:.1f} ms over {objects} objects")


if __name__ == "__main__":
    main()
