"""One model replica: a child process that loads a package and answers predict calls over a pipe.

Isolation is the point: a model that crashes, leaks or hangs takes down only its own process. The
parent side is asyncio-native (the pipe's file descriptor is watched by the event loop) and holds
at most one call in flight, so the child is always waiting in ``recv`` when a call is sent and the
parent never blocks on a full pipe.

Wire format (pickle over two private pipes between our own processes, framed by
``channel.py``; nothing from the network is unpickled): parent sends ``(inputs, outputs)``; child
answers ``("ok", {name: array})`` or ``("error", kind, message)``. At start the child sends
``("ready", info)`` or ``("failed", msg)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from seaway.errors import (
    InvalidInputError,
    ModelLoadError,
    ModelUnavailableError,
    PredictionError,
    SeawayError,
)
from seaway.packaging.signature import split_outputs
from seaway.runtime.channel import Channel

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"
_CTX = multiprocessing.get_context("spawn")


class ReplicaDiedError(ModelUnavailableError):
    """The replica process exited while holding a call; the caller may retry elsewhere."""


@dataclass(frozen=True)
class ReplicaSpec:
    """What a replica loads: a verified package folder."""

    package_path: str
    trusted: bool = False
    manifest_sha256: str | None = None
    #: Run the package's input example through the model before reporting ready.
    warm: bool = True


class Replica:
    """Parent-side handle of one replica process."""

    def __init__(self, spec: ReplicaSpec, index: int) -> None:
        self.spec = spec
        self.index = index
        #: the pipes' ends we hold, (from the child, to the child); _channel speaks over them
        self._conns: tuple[Connection, Connection] | None = None
        self._channel: Channel | None = None
        self._process: Any = None
        self._waiter: asyncio.Future[Any] | None = None
        self.busy = False
        self.calls = 0
        self.started_at = 0.0

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def connected(self) -> bool:
        """The pipes are open: the process was alive when we last heard from it (no syscall)."""
        return self._channel is not None

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    async def start(self, timeout: float = 300.0) -> None:
        """Spawn the process and wait until the model is loaded and warm."""
        child_in, to_child = _CTX.Pipe(duplex=False)  # (read end, write end)
        from_child, child_out = _CTX.Pipe(duplex=False)
        self._process = _CTX.Process(
            target=_replica_main,
            args=(child_in, child_out, self.spec),
            name=f"seaway-replica-{self.index}",
            daemon=True,
        )
        self._process.start()
        child_in.close()
        child_out.close()
        self._conns = (from_child, to_child)
        self._channel = Channel(from_child.fileno(), to_child.fileno())
        self.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        loop.add_reader(from_child.fileno(), self._on_readable)
        try:
            message = await asyncio.wait_for(self._receive(), timeout)
        except (TimeoutError, ReplicaDiedError) as exc:
            self.kill()
            raise ModelLoadError(
                f"replica {self.index} did not start: {exc or 'timed out'}"
            ) from exc
        if message[0] != "ready":
            self.kill()
            raise ModelLoadError(str(message[1]))

    async def call(self, inputs: Any, outputs: Sequence[str]) -> dict[str, np.ndarray[Any, Any]]:
        channel = self._channel
        if channel is None:  # a dead process closes its end: sending fails, reading gets EOF
            raise ReplicaDiedError(f"replica {self.index} is not running")
        if self.busy:  # pragma: no cover - the pool never sends two calls at once
            raise RuntimeError("replica already has a call in flight")
        self.busy = True
        self.calls += 1
        try:
            try:
                channel.send((inputs, tuple(outputs)))
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError) as exc:
                raise ReplicaDiedError(f"replica {self.index} exited") from exc
            message = await self._receive()
        finally:
            self.busy = False
        if message[0] == "ok":
            return message[1]  # type: ignore[no-any-return]
        _, kind, text = message
        if kind == "invalid":
            raise InvalidInputError(text)
        raise PredictionError(text)

    async def _receive(self) -> Any:
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            return await self._waiter
        finally:
            self._waiter = None

    def _on_readable(self) -> None:
        assert self._channel is not None
        try:
            message = self._channel.recv()
        except (EOFError, OSError):
            self._detach()
            if self._waiter is not None and not self._waiter.done():
                code = self._process.exitcode if self._process is not None else None
                self._waiter.set_exception(
                    ReplicaDiedError(f"replica {self.index} exited (exit code {code})")
                )
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(message)

    def _detach(self) -> None:
        if self._conns is not None:
            from_child, to_child = self._conns
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                asyncio.get_running_loop().remove_reader(from_child.fileno())
            from_child.close()
            to_child.close()
            self._conns = None
            self._channel = None

    def kill(self) -> None:
        """Stop the process now (it may be hung); any waiting call fails with ReplicaDiedError."""
        if self._process is not None and self._process.is_alive():
            with contextlib.suppress(OSError):
                os.kill(self._process.pid, signal.SIGKILL)
            self._process.join(timeout=5)
        self._detach()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_exception(ReplicaDiedError(f"replica {self.index} was stopped"))

    async def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to exit after its current call; kill it if it does not."""
        if self._channel is not None and not self.busy:
            with contextlib.suppress(OSError, ValueError):
                self._channel.send(None)
        process = self._process
        deadline = time.monotonic() + timeout
        while process is not None and process.is_alive() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        self.kill()


def _replica_main(inbox: Connection, outbox: Connection, spec: ReplicaSpec) -> None:
    """Child process: load, warm, then serve calls until told to stop or the parent goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when replicas stop
    channel = Channel(inbox.fileno(), outbox.fileno())  # the Connections own the pipes
    from seaway.runtime.model import load_package

    try:
        model = load_package(
            spec.package_path, trusted=spec.trusted, manifest_sha256=spec.manifest_sha256
        )
        if spec.warm:
            example = model.input_example()
            if example is not None:
                model.predict(example)
    except SeawayError as exc:
        channel.send(("failed", str(exc)))
        return
    except Exception as exc:  # a framework failing to load is reported, not raised
        channel.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    gc.collect()
    gc.freeze()  # the model and its framework stay: full collections need not walk them
    channel.send(("ready", {"pid": os.getpid(), "flavor": model.flavor}))
    while True:
        try:
            request = channel.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        inputs, outputs = request
        try:
            reply: tuple[Any, ...] = ("ok", _predict(model, inputs, outputs))
        except InvalidInputError as exc:
            reply = ("error", "invalid", str(exc))
        except Exception as exc:
            reply = ("error", "prediction", f"{type(exc).__name__}: {exc}")
        channel.send(reply)


def _predict(model: Any, inputs: Any, outputs: Sequence[str]) -> Mapping[str, Any]:
    """Run only what the requested outputs need: predict, predict_proba, or both."""
    result: dict[str, Any] = {}
    wanted = set(outputs)
    if wanted - {PREDICT_PROBA}:
        result.update(split_outputs(model.predict(inputs), PREDICT))
    if PREDICT_PROBA in wanted:
        result[PREDICT_PROBA] = np.asarray(model.predict_proba(inputs))
    unknown = sorted(wanted - result.keys())
    if unknown:
        raise InvalidInputError(f"unknown output(s) {unknown}; this model gives {sorted(result)}")
    return {name: result[name] for name in outputs}
