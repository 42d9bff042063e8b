"""The runtime's tracing hook: an empty slot unless a server with tracing on fills it.

The runtime sits below serving and must cost nothing when tracing is off, so it imports no
OpenTelemetry and knows no spans: :data:`hook` is None unless the serving layer installs one
(``seaway.serving.otel``, when the ``OTEL_*`` variables ask for tracing). The batcher tests it
once per request and once per model call, and a replica call once; with it None nothing else
happens.

With a hook installed:

- a request that queues in the batcher keeps ``hook.queued()`` (its trace context and when it
  queued); a request that goes alone keeps nothing (it runs in its caller's own task and context);
- every model call runs through ``hook.model_call``, which opens a span per traced request in the
  call and sets :data:`replica_calls` to a list for the replica to report into;
- ``Replica.call`` asks its child process to time the prediction and appends a
  :class:`ReplicaCall` with the child's own clock readings (the wall clock, shared by the
  processes of one machine), so the time inside the replica is measured there, not guessed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

import numpy as np

Outputs = Mapping[str, np.ndarray[Any, Any]]


class ReplicaCall:
    """One answer from a replica process: which one, and when it started and ended predicting
    (``time.time_ns()`` read in the child). ``error``: the child's message when it failed."""

    __slots__ = ("ended_ns", "error", "index", "pid", "started_ns")

    def __init__(
        self, index: int, pid: int | None, started_ns: int, ended_ns: int, error: str | None
    ) -> None:
        self.index = index
        self.pid = pid
        self.started_ns = started_ns
        self.ended_ns = ended_ns
        self.error = error


class Hook(Protocol):
    """What the serving layer's tracer offers the runtime."""

    def queued(self) -> object | None:
        """The calling request's trace context and when it queued; None: not traced."""

    def model_call(
        self,
        run: Callable[[Any], Awaitable[Outputs]],
        inputs: Any,
        traces: Sequence[object | None] | None,
        rows: int,
    ) -> Awaitable[Outputs]:
        """``run(inputs)``, one model call of ``rows`` rows, traced for each request of
        ``traces`` (what ``queued`` gave them; None: one request, in its caller's own task)."""


#: The installed hook; None (the default) is tracing off.
hook: Hook | None = None

#: While a traced model call runs: where the replica reports its answers (``ReplicaCall``).
replica_calls: ContextVar[list[ReplicaCall] | None] = ContextVar(
    "seaway_replica_calls", default=None
)


def install(new: Hook | None) -> Hook | None:
    """Install ``new`` (None: tracing off) and return the hook it replaces."""
    global hook
    old, hook = hook, new
    return old
