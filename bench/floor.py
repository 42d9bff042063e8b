"""The floor: the thinnest V2 REST server we can write, to measure Seaway against.

A raw ASGI callable (no framework, no middleware) on uvicorn with httptools and uvloop, one worker,
access log off. ``POST /v2/models/{name}/infer`` parses the Open Inference Protocol JSON body with
orjson and numpy, calls ``model.predict`` right in the event loop and answers a V2 JSON response.
It accepts what ``bench/serving.py`` sends Seaway: one FP64 ``[rows, features]`` tensor (or one
1-D tensor per feature column). There is no batching, no process isolation, no validation beyond
what keeps it from crashing: that is the point of a floor.

Models are plain pickles written by ``bench/serving.py`` (our own files, never from the network)::

    python bench/floor.py --port 9000 --model rf=/tmp/x/rf.pkl --model lr=/tmp/x/lr.pkl

Routes: ``POST /v2/models/{name}/infer``, ``GET /v2/health/ready``, and ``POST /noop`` (reads the
body, answers a constant: the load generator's calibration target).

``--workers N``: N forked copies of the server accepting on one shared listening socket, as
``uvicorn --workers N`` runs an app (the two-core mode of ``bench/serving.py``).

``--isolated``: the same server with each model in a child process, the least that isolation
costs: the event loop sends the parsed array's raw bytes down a pipe (``os.write``, no pickle) and
waits on the answer's file descriptor (``loop.add_reader``); the child reads, predicts and writes
the prediction's raw bytes back. One request at a time per model (an ``asyncio.Lock``), no
batching, no restarts, no timeouts. It is what any server that keeps models out of its own
process pays for the hop, measured on the same core.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pickle
import signal
import struct
from typing import Any

import numpy as np
import orjson
import uvicorn

PREFIX = "/v2/models/"
SUFFIX = "/infer"
JSON_HEADERS = [(b"content-type", b"application/json")]
DATATYPES = {
    "int64": "INT64",
    "int32": "INT32",
    "float64": "FP64",
    "float32": "FP32",
    "bool": "BOOL",
}


class IsolatedModel:
    """A model in a child process, called through a pipe with raw float64 and int64 bytes."""

    def __init__(self, model: Any) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        child_in, self._to_child = os.pipe()  # (read end, write end)
        self._from_child, child_out = os.pipe()
        self._process = context.Process(target=_child, args=(model, child_in, child_out))
        self._process.daemon = True
        self._process.start()
        os.close(child_in)
        os.close(child_out)
        self._lock: Any = None

    async def predict(self, x: Any) -> Any:
        import asyncio

        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            loop = asyncio.get_running_loop()
            x = np.ascontiguousarray(x, dtype=np.float64)
            payload = x.tobytes()
            os.write(self._to_child, struct.pack("<qq", *x.shape) + payload)
            done = loop.create_future()
            loop.add_reader(self._from_child, done.set_result, None)
            try:
                await done
            finally:
                loop.remove_reader(self._from_child)
            (rows,) = struct.unpack("<q", _read_exactly(self._from_child, 8))
            return np.frombuffer(_read_exactly(self._from_child, rows * 8), dtype=np.int64)


def _child(model: Any, inbox: int, outbox: int) -> None:
    while True:
        header = _read_exactly(inbox, 16)
        if not header:
            return
        rows, columns = struct.unpack("<qq", header)
        raw = _read_exactly(inbox, rows * columns * 8)
        x = np.frombuffer(raw, dtype=np.float64).reshape(rows, columns)
        y = np.asarray(model.predict(x), dtype=np.int64)
        os.write(outbox, struct.pack("<q", len(y)) + y.tobytes())


def _read_exactly(fd: int, size: int) -> bytes:
    parts, got = [], 0
    while got < size:
        part = os.read(fd, size - got)
        if not part:
            return b""
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def make_app(models: dict[str, Any]) -> Any:
    async def respond(send: Any, status: int, body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
        await send({"type": "http.response.body", "body": body})

    async def read_body(receive: Any) -> bytes:
        message = await receive()
        body = message.get("body", b"")
        if not message.get("more_body"):
            return body  # type: ignore[no-any-return]
        chunks = [body]
        while message.get("more_body"):
            message = await receive()
            chunks.append(message.get("body", b""))
        return b"".join(chunks)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if method == "POST" and path.startswith(PREFIX) and path.endswith(SUFFIX):
            name = path[len(PREFIX) : -len(SUFFIX)]
            body = await read_body(receive)
            model = models.get(name)
            if model is None:
                await respond(send, 404, orjson.dumps({"error": f"no model {name!r}"}))
                return
            try:
                inputs = orjson.loads(body)["inputs"]
                if len(inputs) == 1:
                    tensor = inputs[0]
                    x = np.asarray(tensor["data"], dtype=np.float64).reshape(tensor["shape"])
                else:  # one 1-D tensor per feature column, in order
                    x = np.column_stack([np.asarray(t["data"], dtype=np.float64) for t in inputs])
                if isinstance(model, IsolatedModel):
                    y = await model.predict(x)
                else:
                    y = np.asarray(model.predict(x))
            except Exception as exc:
                await respond(send, 400, orjson.dumps({"error": f"{type(exc).__name__}: {exc}"}))
                return
            output = {
                "name": "predict",
                "datatype": DATATYPES.get(y.dtype.name, "BYTES"),
                "shape": list(y.shape),
                "data": y.ravel(),
            }
            doc = {"model_name": name, "outputs": [output]}
            await respond(send, 200, orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY))
        elif method == "POST" and path == "/noop":
            await read_body(receive)
            await respond(send, 200, b'{"ok":true}')
        elif path == "/v2/health/ready":
            await respond(send, 200, b'{"ready":true}')
        else:
            await read_body(receive)
            await respond(send, 404, b'{"error":"not found"}')

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--model", action="append", default=[], metavar="NAME=PICKLE", help="repeatable"
    )
    parser.add_argument(
        "--isolated", action="store_true", help="each model in a child process (see above)"
    )
    parser.add_argument("--workers", type=int, default=1, help="forked server processes [1]")
    args = parser.parse_args()
    models: dict[str, Any] = {}
    for item in args.model:
        name, _, path = item.partition("=")
        with open(path, "rb") as file:
            models[name] = pickle.load(file)  # our own file, written by bench/serving.py
        if args.isolated:
            models[name] = IsolatedModel(models[name])
    config = uvicorn.Config(
        make_app(models),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        workers=1,
        access_log=False,
        log_level="warning",
        lifespan="off",
    )
    if args.workers <= 1:
        uvicorn.Server(config).run()
        return
    sock = config.bind_socket()  # one listening socket, accepted on by every worker
    children = []
    for _ in range(args.workers):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            uvicorn.Server(config).run(sockets=[sock])
            os._exit(0)
        children.append(pid)

    def forward(signum: int, frame: Any) -> None:
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)


if __name__ == "__main__":
    main()
