"""One model replica: a child process that loads a package and answers predict calls over a pipe.

Isolation is the point: a model that crashes, leaks or hangs takes down only its own process. The
parent side is asyncio-native (the pipe's file descriptor is watched by the event loop) and holds
at most one call in flight, so the child is always waiting in ``recv`` when a call is sent and the
parent never blocks on a full pipe.

Wire format (``channel.py`` messages of a head and a body over two private pipes between our own
processes; nothing from the network is unpickled): the parent sends head ``outputs`` (a tuple of
names) with body ``inputs``, or head ``None`` to stop; the child answers head ``"ok"`` with body
``{name: array}``, or head ``("error", kind, message)``. At start the child sends
``("ready", info)`` or ``("failed", msg)``. With tracing on (``tracing.py``) a call's head is the
tuple of names inside a 1-tuple, and the child adds its clock readings around the prediction
(``time.time_ns()``) to its answer: ``("ok", started, ended)``, ``("error", kind, message,
started, ended)``.

Whose fault a death is (``call``): a child that exits on its own while predicting (an exit code,
SIGSEGV, SIGABRT) was brought down by what it was predicting on, and ``ReplicaCrashedError`` says
so; a child killed with SIGKILL was killed from outside (an operator, the kernel's OOM killer, a
chaos test), and ``ReplicaDiedError`` lets the call be retried elsewhere. A ``MemoryError`` in the
model is answered as such (``ModelOutOfMemoryError``) and the child exits: its state is suspect.

The event loop never waits here: large frames are written from a thread and read as they come
(``channel.py``), and killed processes are reaped from a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from seaway.errors import (
    InvalidInputError,
    ModelLoadError,
    ModelOutOfMemoryError,
    PredictionError,
    ReplicaCrashedError,
    ReplicaDiedError,
    ReplicaTimeoutError,
    SeawayError,
)
from seaway.packaging.signature import DEFAULT_OUTPUT_NAME, PROBA_OUTPUT_NAME, split_outputs
from seaway.runtime import spawner, tracing
from seaway.runtime.channel import Channel
from seaway.runtime.deadlines import Deadlines

PREDICT = DEFAULT_OUTPUT_NAME
PREDICT_PROBA = PROBA_OUTPUT_NAME
_PREDICT_ONLY = (PREDICT,)
_CTX = multiprocessing.get_context("spawn")


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

    def __init__(self, spec: ReplicaSpec, index: int, deadlines: Deadlines | None = None) -> None:
        self.spec = spec
        self.index = index
        #: call timeouts (shared by a pool's replicas: one timer for all)
        self._deadlines = deadlines or Deadlines()
        #: the pipes' ends we hold, (from the child, to the child); _channel speaks over them
        self._conns: tuple[Connection, Connection] | None = None
        self._channel: Channel | None = None
        self._process: Any = None
        self._waiter: asyncio.Future[Any] | None = None
        #: the child closed its pipe (it exited, or was killed from outside)
        self._exited = False
        #: a call is in the child: set from send to answer, even when its caller left (see call)
        self.busy = False
        #: the caller of the call in the child was cancelled: its answer is to be dropped
        self._orphaned = False
        #: called when an orphaned call's answer has been dropped and the replica is free again
        self.on_idle: Callable[[], None] | None = None
        #: called when an orphaned call outlives its timeout (the owner kills the replica)
        self.on_hung: Callable[[], None] | None = None
        self._orphan_token: int | None = None
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
        """Spawn the process and wait until the model is loaded and warm. A start that is
        cancelled (the pool stopped meanwhile) kills the process: none is left behind."""
        child_in, to_child = _CTX.Pipe(duplex=False)  # (read end, write end)
        from_child, child_out = _CTX.Pipe(duplex=False)
        self._process = spawner.process(  # forked from a preloaded zygote (spawner.py)
            _replica_main,
            (child_in, child_out, self.spec),
            name=f"seaway-replica-{self.index}",
            package=self.spec.package_path,
        )
        await self._process.launch()
        child_in.close()
        child_out.close()
        self._conns = (from_child, to_child)
        self._channel = Channel(from_child.fileno(), to_child.fileno(), defer_large=True)
        self.started_at = time.monotonic()
        loop = asyncio.get_running_loop()
        loop.add_reader(from_child.fileno(), self._on_readable)
        waiter = self._waiter = loop.create_future()
        try:
            head, _ = await self._wait(waiter, timeout)
        except (ReplicaTimeoutError, ReplicaDiedError) as exc:
            self.kill()
            why = f" within {timeout:g} s" if isinstance(exc, ReplicaTimeoutError) else f": {exc}"
            raise ModelLoadError(f"replica {self.index} did not start{why}") from exc
        except BaseException:  # cancelled: nobody will ever stop this process but us
            self.kill()
            raise
        if head[0] != "ready":
            self.kill()
            raise ModelLoadError(str(head[1]))

    async def call(
        self, inputs: Any, outputs: Sequence[str], timeout: float | None = None
    ) -> dict[str, np.ndarray[Any, Any]]:
        """The model's ``outputs`` for ``inputs``; ``ReplicaTimeoutError`` past ``timeout``, when
        the replica still holds the call (the caller decides its fate); ``ReplicaCrashedError``
        when the child exited on its own meanwhile, ``ReplicaDiedError`` when it went otherwise.

        A caller cancelled while the child predicts leaves the replica ``busy`` until the child
        answers; that answer is dropped, so it can never reach the next call. This is what lets
        a lone request await its replica in its own task instead of a batch task of its own.
        """
        channel = self._channel
        if channel is None:  # a dead process closes its end: sending fails, reading gets EOF
            raise ReplicaDiedError(f"replica {self.index} is not running")
        if self.busy:  # pragma: no cover - the pool never sends two calls at once
            raise RuntimeError("replica already has a call in flight")
        self.busy = True
        self.calls += 1
        # the waiter exists before the call leaves: an answer can never find nobody to take it
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        times = None if tracing.hook is None else tracing.replica_calls.get()
        try:
            large = channel.send(tuple(outputs) if times is None else (tuple(outputs),), inputs)
        except OSError as exc:  # BrokenPipeError and the like: the child was gone already
            self._waiter = None
            self.busy = False
            raise ReplicaDiedError(f"replica {self.index} exited") from exc
        sent = time.monotonic()
        whole = large is None  # the child has (or will have) the whole call
        try:
            if large is not None:
                await self._write_large(channel, large)
                whole = True
            message = await self._wait(waiter, timeout)
        except asyncio.CancelledError:
            self._left(waiter, sent, timeout)
            raise
        except ReplicaDiedError:
            self.busy = False
            if whole and self._exited:  # it closed its pipe while predicting: how did it go?
                raise await self._why_exited() from None
            raise
        except BaseException:
            self.busy = False
            raise
        self.busy = False
        head, body = message
        if head == "ok":
            return body  # type: ignore[no-any-return]
        if times is not None:  # a traced call: the child timed it
            error = None if head[0] == "ok" else head[2]
            times.append(tracing.ReplicaCall(self.index, self.pid, head[-2], head[-1], error))
            if error is None:
                return body  # type: ignore[no-any-return]
        kind, text = head[1], head[2]
        if kind == "invalid":
            raise InvalidInputError(text)
        if kind == "memory":
            raise ModelOutOfMemoryError(
                f"the model ran out of memory ({text}); its replica was restarted, retry later"
            )
        raise PredictionError(text)

    def _left(self, waiter: asyncio.Future[Any], sent: float, timeout: float | None) -> None:
        """The caller was cancelled. Whatever landed in the same loop turn decides what the
        replica is now: answered (free), timed out (hung: its owner kills it), gone (free), or
        still predicting (orphaned: its answer is dropped when it comes)."""
        self._waiter = None
        outcome = None if not waiter.done() or waiter.cancelled() else waiter.exception()
        answered = waiter.done() and not waiter.cancelled() and outcome is None
        if answered or self._channel is None:
            self.busy = False
            return
        if isinstance(outcome, ReplicaTimeoutError):
            self.busy = False
            if self.on_hung is not None:
                self.on_hung()
            return
        self._orphaned = self.busy = True  # the answer is still to come
        if timeout is not None:  # a hung model is still found out
            left = max(sent + timeout - time.monotonic(), 0.0)
            self._orphan_token = self._deadlines.add(left, _orphan_hung, self)

    async def _write_large(self, channel: Channel, parts: list[Any]) -> None:
        """A frame too large for one write goes from a thread: the loop serves others meanwhile.
        Cancelled, the write still completes (the child then answers an orphaned call)."""
        future = asyncio.get_running_loop().run_in_executor(None, channel.write_parts, parts)
        future.add_done_callback(_retrieve)
        try:
            await asyncio.shield(future)
        except OSError as exc:
            raise ReplicaDiedError(f"replica {self.index} exited") from exc

    async def _why_exited(self) -> ReplicaDiedError:
        """Why the child closed its pipe mid-call, from its exit status (reaped off the loop)."""
        process = self._process
        code = process.exitcode
        if code is None:  # the pipe closes a moment before the process is a zombie
            await asyncio.get_running_loop().run_in_executor(None, process.join, 5.0)
            code = process.exitcode
        if code == -signal.SIGKILL:
            return ReplicaDiedError(f"replica {self.index} was killed (SIGKILL) from outside")
        if code is not None and code < 0:
            how = f"was killed by {signal.Signals(-code).name}"
        else:
            how = f"exited with code {code}"
        return ReplicaCrashedError(f"its replica {how}", code)

    async def _wait(self, waiter: asyncio.Future[Any], timeout: float | None) -> Any:
        """``waiter``'s message; ``ReplicaTimeoutError`` past ``timeout`` (see deadlines.py for
        why not ``asyncio.timeout``)."""
        token = None if timeout is None else self._deadlines.add(timeout, _time_out, waiter)
        try:
            return await waiter
        finally:
            self._waiter = None
            if token is not None:
                self._deadlines.discard(token)

    def _on_readable(self) -> None:
        assert self._channel is not None
        try:
            message = self._channel.poll()
        except (EOFError, OSError):
            self._exited = True
            self._detach()
            if self._waiter is not None and not self._waiter.done():
                code = self._process.exitcode if self._process is not None else None
                self._waiter.set_exception(
                    ReplicaDiedError(f"replica {self.index} exited (exit code {code})")
                )
            return
        if message is None:  # part of a large frame
            return
        if self._orphaned:  # the answer to a call whose caller left
            self._orphaned = self.busy = False
            self._cancel_orphan_timer()
            if self.on_idle is not None:
                self.on_idle()
        elif self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(message)

    def _cancel_orphan_timer(self) -> None:
        if self._orphan_token is not None:
            self._deadlines.discard(self._orphan_token)
            self._orphan_token = None

    def _detach(self) -> None:
        if self._conns is not None:
            from_child, to_child = self._conns
            with contextlib.suppress(ValueError, OSError, RuntimeError):
                asyncio.get_running_loop().remove_reader(from_child.fileno())
            from_child.close()
            to_child.close()
            self._conns = None
            self._channel = None
        self._orphaned = self.busy = False
        self._cancel_orphan_timer()

    def kill(self) -> None:
        """Stop the process now (it may be hung); any waiting call fails with ReplicaDiedError.
        The dead process is reaped from a thread when a loop runs: the loop never waits for it."""
        process = self._process
        if process is not None and process.is_alive():
            with contextlib.suppress(OSError):
                os.kill(process.pid, signal.SIGKILL)
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                process.join(timeout=5)
            else:
                loop.run_in_executor(None, process.join, 5.0).add_done_callback(_retrieve)
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


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Read a background future's outcome, so an error in it is never reported as unretrieved."""
    if not future.cancelled():
        future.exception()


def _orphan_hung(replica: Replica) -> None:
    replica._orphan_token = None
    if replica._orphaned and replica.on_hung is not None:
        replica.on_hung()


def _time_out(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(ReplicaTimeoutError("timed out"))


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
            outputs, inputs = channel.recv()
        except (EOFError, OSError):
            return
        if outputs is None:
            return
        if outputs and type(outputs[0]) is tuple:  # a traced call: time it (see the docstring)
            if _timed_call(channel, model, inputs, outputs[0]):
                continue
            return
        try:
            result = _predict(model, inputs, outputs)
        except InvalidInputError as exc:
            channel.send(("error", "invalid", str(exc)))
        except MemoryError as exc:  # a server-side failure: answer it, then leave (state suspect)
            channel.send(("error", "memory", f"MemoryError: {exc}"))
            return
        except Exception as exc:
            channel.send(("error", "prediction", f"{type(exc).__name__}: {exc}"))
        else:
            channel.send("ok", result)


def _timed_call(channel: Channel, model: Any, inputs: Any, outputs: Sequence[str]) -> bool:
    """A traced call: answered as untraced ones are, with the clock read around the prediction.
    False: the child must leave (as after an untraced ``MemoryError``: its state is suspect)."""
    started = time.time_ns()
    try:
        result = _predict(model, inputs, outputs)
    except InvalidInputError as exc:
        channel.send(("error", "invalid", str(exc), started, time.time_ns()))
    except MemoryError as exc:
        channel.send(("error", "memory", f"MemoryError: {exc}", started, time.time_ns()))
        return False
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        channel.send(("error", "prediction", error, started, time.time_ns()))
    else:
        channel.send(("ok", started, time.time_ns()), result)
    return True


def _predict(model: Any, inputs: Any, outputs: Sequence[str]) -> Mapping[str, Any]:
    """Run only what the requested outputs need: predict, predict_proba, or both."""
    native = model.assemble(inputs)  # the server checked them against the signature
    result: dict[str, Any]
    if outputs == _PREDICT_ONLY:  # the common call, in the fewest steps
        predicted = model.predict_native(native)
        if type(predicted) is np.ndarray:
            return {PREDICT: predicted}
        result = split_outputs(predicted, PREDICT)
        wanted = {PREDICT}
    else:
        result = {}
        wanted = set(outputs)
        if wanted - {PREDICT_PROBA}:
            result.update(split_outputs(model.predict_native(native), PREDICT))
    if PREDICT_PROBA in wanted:
        result[PREDICT_PROBA] = np.asarray(model.predict_proba_native(native))
    unknown = sorted(wanted - result.keys())
    if unknown:
        raise InvalidInputError(f"unknown output(s) {unknown}; this model gives {sorted(result)}")
    return {name: result[name] for name in outputs}
