"""OpenTelemetry spans for inference requests; imported only when tracing is on (``tracing.py``).

One trace per traced request (REST infer, ``/invocations``, gRPC ``ModelInfer``)::

    POST /v2/models/{name}/infer       SERVER: the front, from the first header to the last byte
    ├── seaway.batcher.queue           waiting in the batcher (absent when the request went alone)
    └── seaway.batcher.call            the model call it rode in (rows and requests of the batch)
        └── seaway.replica.predict     inside the replica process, timed by the replica itself

Every span carries ``seaway.request_id``; the server span also the model name and version that
answered, the HTTP status or gRPC code, and any error (an exception event; status ERROR for
server errors). A ``traceparent`` header (or gRPC metadata) makes the server span the caller's
child. A merged model call serves several traces: each of its requests gets its own call and
replica spans, with the same times, so every trace reads whole on its own.

The replica span is honest without tracing inside the replica: the child process reads the
clock before and after predicting (``runtime/replica.py``) and the parent builds the span from
those readings, so the gap between the call span and the replica span is the pipe and the
queueing for a replica, and nothing in the replica exports spans. Spans below the server span
are made only while that span is recording (sampled): an unsampled request costs the batcher
one check.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from importlib.metadata import entry_points
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from seaway._version import __version__
from seaway.errors import ConfigError
from seaway.runtime import tracing as runtime_tracing
from seaway.serving import logs

Outputs = runtime_tracing.Outputs
_PROPAGATOR = TraceContextTextMapPropagator()
#: gRPC codes that are the server's fault (OpenTelemetry's semantic conventions for RPC spans)
_GRPC_SERVER_ERRORS = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
REQUEST_ID = "seaway.request_id"


class RequestSpan:
    """The server span of one request, current in its context until ``leave``."""

    __slots__ = ("_span", "_token")

    def __init__(self, span: Span, token: object) -> None:
        self._span = span
        self._token: object | None = token

    def fail(self, exc: BaseException) -> None:
        """Record the error the request is answered with."""
        self._span.record_exception(exc)
        self._span.set_attribute("error.type", type(exc).__qualname__)

    def leave(self) -> None:
        """Stop being the current span (call it in the task that started it)."""
        if self._token is not None:
            otel_context.detach(self._token)  # type: ignore[arg-type]
            self._token = None

    def end_http(self, status: int, labels: tuple[str, str] | None) -> None:
        span = self._span
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
        self._end(labels)

    def end_grpc(self, code: str, number: int, labels: Sequence[str] | None) -> None:
        span = self._span
        span.set_attribute("rpc.grpc.status_code", number)
        if code in _GRPC_SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR))
        self._end(labels)

    def _end(self, labels: Sequence[str] | None) -> None:
        self.leave()
        if labels and labels[0]:
            self._span.set_attribute("seaway.model.name", labels[0])
            self._span.set_attribute("seaway.model.version", labels[1])
        self._span.end()


class Tracing:
    """A server's tracer: server spans for the fronts, and the hook the runtime reports to."""

    def __init__(self, provider: TracerProvider, *, owned: bool = False) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("seaway", __version__)
        self.hook = BatcherHook(self.tracer)
        self._owned = owned
        self._previous: runtime_tracing.Hook | None = None

    @classmethod
    def from_environment(cls) -> Tracing:
        """A provider as the ``OTEL_*`` variables describe it (exporters, sampler, resource,
        batch processor); ``ConfigError`` for an exporter that is not installed."""
        resource = Resource.create()
        if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
            resource = resource.merge(Resource({"service.name": "seaway"}))
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        for exporter in _exporters(os.environ):
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider, owned=True)

    def install(self) -> None:
        """Let the batcher and replicas of this process report to this tracer."""
        self._previous = runtime_tracing.install(self.hook)

    def close(self) -> None:
        """Uninstall the hook; flush and stop an owned provider (blocks: call it off the loop)."""
        if runtime_tracing.hook is self.hook:
            runtime_tracing.install(self._previous)
        if self._owned:
            self._owned = False
            self.provider.shutdown()

    def http(
        self, method: str, path: str, route: str, rid: str, parent: Mapping[str, str] | None
    ) -> RequestSpan:
        """A REST request's server span; ``parent``: its ``traceparent``/``tracestate``."""
        attributes = {
            "http.request.method": method,
            "url.path": path,
            "http.route": route,
            REQUEST_ID: rid,
        }
        return self._start(f"{method} {route}", attributes, parent)

    def grpc(self, rpc: str, rid: str, metadata: Mapping[str, str]) -> RequestSpan:
        attributes = {
            "rpc.system": "grpc",
            "rpc.service": "inference.GRPCInferenceService",
            "rpc.method": rpc,
            REQUEST_ID: rid,
        }
        return self._start(f"inference.GRPCInferenceService/{rpc}", attributes, metadata)

    def _start(
        self, name: str, attributes: dict[str, Any], parent: Mapping[str, str] | None
    ) -> RequestSpan:
        context = (
            _PROPAGATOR.extract(parent) if parent is not None and "traceparent" in parent else None
        )
        span = self.tracer.start_span(name, context, SpanKind.SERVER, attributes)
        return RequestSpan(span, otel_context.attach(trace.set_span_in_context(span, context)))


class BatcherHook:
    """``runtime.tracing.Hook``: spans for queueing, model calls and replicas."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def queued(self) -> tuple[Context, int, str | None] | None:
        context = otel_context.get_current()
        if not trace.get_current_span(context).is_recording():
            return None
        return context, time.time_ns(), logs.request_id.get()

    async def model_call(
        self,
        run: Callable[[Any], Awaitable[Outputs]],
        inputs: Any,
        traces: Sequence[object | None] | None,
        rows: int,
    ) -> Outputs:
        if traces is None:  # one request, in its own task: its context is the current one
            context = otel_context.get_current()
            if not trace.get_current_span(context).is_recording():
                return await run(inputs)
            traced: list[Any] = [(context, None, logs.request_id.get())]
            requests = 1
        else:
            traced = [t for t in traces if t is not None]
            requests = len(traces)
            if not traced:
                return await run(inputs)
        tracer = self.tracer
        now = time.time_ns()
        calls = []
        for context, queued_ns, rid in traced:
            ids = {REQUEST_ID: rid} if rid is not None else {}
            if queued_ns is not None:
                tracer.start_span(
                    "seaway.batcher.queue", context, start_time=queued_ns, attributes=ids
                ).end(now)
            attributes = {"seaway.batch.rows": rows, "seaway.batch.requests": requests, **ids}
            call = tracer.start_span(
                "seaway.batcher.call", context, start_time=now, attributes=attributes
            )
            calls.append((call, ids))
        answers: list[runtime_tracing.ReplicaCall] = []
        token = runtime_tracing.replica_calls.set(answers)
        failure: BaseException | None = None
        try:
            return await run(inputs)
        except BaseException as exc:  # recorded and raised on: cancellation included
            failure = exc
            raise
        finally:
            runtime_tracing.replica_calls.reset(token)
            for span, ids in calls:
                self._replica_spans(span, answers, ids)
                if failure is not None:
                    span.record_exception(failure)
                    span.set_status(Status(StatusCode.ERROR, type(failure).__qualname__))
                span.end()

    def _replica_spans(
        self, call: Span, answers: list[runtime_tracing.ReplicaCall], ids: dict[str, Any]
    ) -> None:
        parent = trace.set_span_in_context(call)
        for answer in answers:
            attributes = {"seaway.replica.index": answer.index, **ids}
            if answer.pid is not None:
                attributes["seaway.replica.pid"] = answer.pid
            span = self.tracer.start_span(
                "seaway.replica.predict",
                parent,
                start_time=answer.started_ns,
                attributes=attributes,
            )
            if answer.error is not None:
                span.set_status(Status(StatusCode.ERROR, answer.error))
            span.end(answer.ended_ns)


def _exporters(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (default ``otlp``), found by the entry
    points the OpenTelemetry packages register; ``otlp`` is ``otlp_proto_http`` unless
    ``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` says ``grpc``."""
    names = [n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    exporters = []
    for name in names:
        if name in ("", "none"):
            continue
        entry = name
        if name == "otlp":
            protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get(
                "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"
            )
            entry = "otlp_proto_grpc" if protocol.strip() == "grpc" else "otlp_proto_http"
        found = entry_points(group="opentelemetry_traces_exporter", name=entry)
        if not found:
            raise ConfigError(
                f"no OpenTelemetry span exporter {entry!r} is installed{_hint(entry)}"
            )
        exporters.append(next(iter(found)).load()())
    return exporters


def _hint(entry: str) -> str:
    if entry == "otlp_proto_http":
        return ": pip install 'seaway[otel]'"
    if entry == "otlp_proto_grpc":
        return ": pip install opentelemetry-exporter-otlp-proto-grpc (or set OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf)"
    return " (OTEL_TRACES_EXPORTER names it)"
