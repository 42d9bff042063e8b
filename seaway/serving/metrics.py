"""Prometheus metrics, served at ``/metrics``.

One ``CollectorRegistry`` per server (not the process-global one), so several servers can live in
one test process. Labelled children are cached: ``Counter.labels`` costs a lock and a dict build
per call, which the infer hot path should not pay twice per request. Gauges that describe the
current state (queue depth, healthy replicas) are read from the data plane at scrape time rather
than kept up to date on every request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)


class Metrics:
    def __init__(self) -> None:
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide: *_created doubles a scrape
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = Counter(
            "seaway_requests",
            "Inference requests answered, by model, version, protocol and status",
            ["model", "version", "protocol", "status"],
            registry=r,
        )
        self._latency = Histogram(
            "seaway_request_duration_seconds",
            "Time from request received to response ready, by model, version and protocol",
            ["model", "version", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self._batch_rows = Histogram(
            "seaway_batch_rows",
            "Rows per model call (after adaptive batching)",
            ["model", "version"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self._batch_requests = Histogram(
            "seaway_batch_requests",
            "Requests merged into one model call",
            ["model", "version"],
            buckets=_SIZE_BUCKETS,
            registry=r,
        )
        self._restarts = Counter(
            "seaway_replica_restarts",
            "Replica processes restarted after a crash, hang or timeout",
            ["model", "version"],
            registry=r,
        )
        self._load_seconds = Gauge(
            "seaway_model_load_seconds",
            "Seconds the version took to load and warm its replicas",
            ["model", "version"],
            registry=r,
        )
        self._load_failures = Counter(
            "seaway_model_load_failures",
            "Versions that failed to load (the previous version kept serving)",
            ["model", "version"],
            registry=r,
        )
        self._children: dict[tuple[str, ...], Any] = {}

    def observe_request(
        self, protocol: str, model: str, version: str, status: str, seconds: float
    ) -> None:
        key = (protocol, model, version, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.labels(model, version, protocol, status),
                self._latency.labels(model, version, protocol),
            )
        children[0].inc()
        children[1].observe(seconds)

    def batch_hook(self, model: str, version: str) -> Callable[[int, int], None]:
        rows = self._batch_rows.labels(model, version)
        requests = self._batch_requests.labels(model, version)

        def observe(batch_rows: int, batch_requests: int) -> None:
            rows.observe(batch_rows)
            requests.observe(batch_requests)

        return observe

    def restart_hook(self, model: str, version: str) -> Callable[[], None]:
        return self._restarts.labels(model, version).inc

    def model_loaded(self, model: str, version: str, seconds: float) -> None:
        self._load_seconds.labels(model, version).set(seconds)

    def model_failed(self, model: str, version: str) -> None:
        self._load_failures.labels(model, version).inc()

    def watch(self, source: Callable[[], Iterable[Any]]) -> None:
        """Report queue depth, batches in flight and healthy replicas of ``source()``'s models."""
        self.registry.register(_StateCollector(source))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StateCollector(Collector):
    def __init__(self, source: Callable[[], Iterable[Any]]) -> None:
        self._source = source

    def collect(self) -> Iterable[Metric]:
        labels = ["model", "version"]
        queued = GaugeMetricFamily(
            "seaway_queue_depth", "Requests waiting for a batch", labels=labels
        )
        running = GaugeMetricFamily(
            "seaway_batches_in_flight", "Model calls running on replicas now", labels=labels
        )
        healthy = GaugeMetricFamily(
            "seaway_replicas_healthy", "Replica processes alive and serving", labels=labels
        )
        desired = GaugeMetricFamily(
            "seaway_replicas_desired", "Replica processes configured", labels=labels
        )
        for model in self._source():
            key = [model.name, model.version]
            queued.add_metric(key, model.queued)
            running.add_metric(key, model.in_flight)
            healthy.add_metric(key, model.pool.healthy)
            desired.add_metric(key, model.pool.size)
        return [queued, running, healthy, desired]
