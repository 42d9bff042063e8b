"""Tracing in process: the switch (``OTEL_*`` variables), the batcher's spans through the runtime
hook (queue wait, merged model calls, replica timings, failures, sampling) and the REST front's
server span, with the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import StatusCode

from seaway.errors import PredictionError
from seaway.runtime import tracing as runtime_tracing
from seaway.runtime.batcher import AdaptiveBatcher
from seaway.serving import logs, tracing
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.app import create_app
from seaway.serving.otel import Tracing

PARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = Tracing(provider)
    traced.install()
    yield traced, exporter
    traced.close()
    assert runtime_tracing.hook is None


def _by(spans: tuple[ReadableSpan, ...], rid: str) -> dict[str, ReadableSpan]:
    return {s.name: s for s in spans if (s.attributes or {}).get("seaway.request_id") == rid}


# ---- the switch ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "wanted"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "fraud"}, False),  # naming a service asks for nothing
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://x"}, False),
        ({"OTEL_TRACES_EXPORTER": "console,otlp"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_which_variables_turn_tracing_on(environ: dict[str, str], wanted: bool) -> None:
    assert tracing.requested(environ) is wanted


def test_off_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in os.environ if n.startswith("OTEL_")]:
        monkeypatch.delenv(name)
    assert tracing.from_environment() is None
    assert runtime_tracing.hook is None


def test_asked_for_without_the_extra_warns_once_and_goes_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setitem(sys.modules, "seaway.serving.otel", None)  # as if the SDK were missing
    monkeypatch.setattr(tracing, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="seaway.serving"):
        assert tracing.from_environment() is None
        assert tracing.from_environment() is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "pip install 'seaway[otel]'" in warnings[0]
    assert runtime_tracing.hook is None


def test_an_exporter_not_installed_is_named(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin_json")
    monkeypatch.setattr(tracing, "_warned", False)
    with caplog.at_level(logging.WARNING, logger="seaway.serving"):
        assert tracing.from_environment() is None
    assert "no OpenTelemetry span exporter 'zipkin_json'" in caplog.text


def test_from_the_environment_installs_then_closes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    monkeypatch.delenv("OTEL_RESOURCE_ATTRIBUTES", raising=False)
    traced = tracing.from_environment()
    assert traced is not None
    try:
        assert runtime_tracing.hook is traced.hook
        assert traced.provider.resource.attributes["service.name"] == "seaway"
    finally:
        traced.close()
    assert runtime_tracing.hook is None


# ---- the batcher's spans ---------------------------------------------------------------------------


class FakeReplica:
    """A model call that reports replica timings as ``Replica.call`` does; the first call waits
    for ``gate``, so that the requests behind it queue and leave merged."""

    def __init__(self, fail: bool = False) -> None:
        self.gate = asyncio.Event()
        self.calls = 0
        self.fail = fail

    async def __call__(self, inputs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.calls == 1:
            await self.gate.wait()
        answers = runtime_tracing.replica_calls.get()
        if answers is not None:
            error = "ValueError: bad rows" if self.fail else None
            answers.append(runtime_tracing.ReplicaCall(0, 4242, 1_000 * self.calls, 2_000, error))
        if self.fail:
            raise PredictionError("the model failed to predict: ValueError: bad rows")
        return {"predict": np.asarray(inputs)[:, 0]}


async def _request(traced: Tracing, batcher: AdaptiveBatcher, rid: str, rows: int) -> Any:
    """One request as a front sends it: its id set, under its server span."""
    token = logs.request_id.set(rid)
    span = traced.http("POST", "/v2/models/m/infer", "/v2/models/{name}/infer", rid, None)
    try:
        return await batcher.submit(np.ones((rows, 2)), rows)
    except PredictionError as exc:
        span.fail(exc)
        return exc
    finally:
        logs.request_id.reset(token)
        span.end_http(200, ("m", "1"))


def _three_requests(traced: Tracing, replica: FakeReplica) -> list[Any]:
    async def go() -> list[Any]:
        batcher = AdaptiveBatcher(replica, max_batch_size=64, concurrency=1)
        first = asyncio.ensure_future(_request(traced, batcher, "r1", 1))
        await asyncio.sleep(0)  # r1 is with the replica, alone
        rest = [asyncio.ensure_future(_request(traced, batcher, r, 2)) for r in ("r2", "r3")]
        await asyncio.sleep(0)  # r2 and r3 queue behind it
        replica.gate.set()
        return await asyncio.gather(first, *rest)

    return asyncio.run(go())


def test_queue_wait_model_call_and_replica_spans_per_request(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    traced, exporter = exported
    replica = FakeReplica()
    _three_requests(traced, replica)
    assert replica.calls == 2  # r1 alone, then r2 and r3 merged
    spans = exporter.get_finished_spans()

    alone = _by(spans, "r1")
    assert set(alone) == {
        "POST /v2/models/{name}/infer",
        "seaway.batcher.call",
        "seaway.replica.predict",
    }
    assert alone["seaway.batcher.call"].attributes["seaway.batch.requests"] == 1

    for rid in ("r2", "r3"):
        mine = _by(spans, rid)
        front, queue = mine["POST /v2/models/{name}/infer"], mine["seaway.batcher.queue"]
        call, replica_span = mine["seaway.batcher.call"], mine["seaway.replica.predict"]
        assert {s.context.trace_id for s in (queue, call, replica_span)} == {front.context.trace_id}
        assert queue.parent.span_id == call.parent.span_id == front.context.span_id
        assert replica_span.parent.span_id == call.context.span_id
        assert call.attributes["seaway.batch.requests"] == 2
        assert call.attributes["seaway.batch.rows"] == 4
        assert queue.end_time == call.start_time  # it waited until its call left
        # the replica span is built from the replica's own clock readings
        assert (replica_span.start_time, replica_span.end_time) == (2_000, 2_000)
        assert replica_span.attributes["seaway.replica.pid"] == 4242
    # the two merged requests are in two traces, each whole
    assert _by(spans, "r2")["seaway.batcher.call"].context.trace_id != (
        _by(spans, "r3")["seaway.batcher.call"].context.trace_id
    )


def test_a_failed_model_call_is_recorded_on_its_spans(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    traced, exporter = exported
    results = _three_requests(traced, FakeReplica(fail=True))
    assert all(isinstance(r, PredictionError) for r in results)
    spans = exporter.get_finished_spans()
    for rid in ("r1", "r2", "r3"):
        calls = [
            s
            for s in spans
            if s.name == "seaway.batcher.call" and s.attributes["seaway.request_id"] == rid
        ]
        # a failed merged call is retried one request at a time: every attempt has its span
        assert calls and all(c.status.status_code is StatusCode.ERROR for c in calls)
        assert all(any(e.name == "exception" for e in c.events) for c in calls)
        replicas = [
            s
            for s in spans
            if s.name == "seaway.replica.predict" and s.attributes["seaway.request_id"] == rid
        ]
        assert replicas and all(r.status.description == "ValueError: bad rows" for r in replicas)
        assert _by(spans, rid)["POST /v2/models/{name}/infer"].attributes["error.type"] == (
            "PredictionError"
        )


def test_an_unsampled_request_makes_no_batcher_spans() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_OFF)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = Tracing(provider)
    traced.install()
    try:
        replica = FakeReplica()
        results = _three_requests(traced, replica)
    finally:
        traced.close()
    assert [len(r["predict"]) for r in results] == [1, 2, 2]
    assert exporter.get_finished_spans() == ()


# ---- the REST front --------------------------------------------------------------------------------


def test_the_infer_endpoint_continues_the_callers_trace(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    traced, exporter = exported
    app = create_app(DataPlane(), tracing=traced)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {"traceparent": PARENT, "x-request-id": "front-1"}
            missing = await client.post(
                "/v2/models/nope/versions/3/infer", json={}, headers=headers
            )
            live = await client.get("/v2/health/live")
            return [missing, live]

    missing, live = asyncio.run(go())
    assert (missing.status_code, live.status_code) == (404, 200)
    (span,) = exporter.get_finished_spans()  # health probes are not traced
    assert span.name == "POST /v2/models/{name}/versions/{version}/infer"
    assert span.parent is not None and span.parent.is_remote
    assert format(span.context.trace_id, "032x") == PARENT.split("-")[1]
    assert format(span.parent.span_id, "016x") == PARENT.split("-")[2]
    assert span.attributes["seaway.request_id"] == "front-1"
    assert span.attributes["http.response.status_code"] == 404
    assert span.attributes["error.type"] == "NotFoundError"
    assert span.status.status_code is StatusCode.UNSET  # the client's error, not the server's
