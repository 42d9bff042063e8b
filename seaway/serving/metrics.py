"""Prometheus metrics, served at ``/metrics``.

One ``CollectorRegistry`` per server (not the process-global one), so several servers can live in
one test process. The four series touched by every request (request count, latency, batch rows,
batch requests) are plain numbers kept by :class:`_Series` and turned into Prometheus families
at scrape time: ``prometheus_client``'s own children take a lock per update and walk their
buckets in Python, 4.6 us a request on the hot path against under 1 here (``bench/hotpath.py``).
They are updated from the event loop's thread only (REST and grpc.aio both run there), so they
need no lock. Gauges that describe the current state (queue depth, healthy replicas) are read from
the data plane at scrape time rather than kept up to date on every request.

Several front processes (``seaway serve --workers N``): a scrape reaches one worker, which answers
for all. Each worker writes a snapshot of its samples to a shared folder once a second
(:class:`SharedMetrics`); at scrape time the worker adds its own live samples to the others'
snapshots: counters and histograms are summed, state gauges too (queue depth, healthy replicas
across workers), load times take the largest. When a worker dies the supervisor folds its last
snapshot's counters into ``retired.json`` (see :func:`retire`), so totals never go back: only the
increments of a killed worker's last second are lost. One process keeps none of this.
"""

from __future__ import annotations

import contextlib
import os
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

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
    def __init__(self, shared: SharedMetrics | None = None) -> None:
        self.shared = shared
        disable_created_metrics()  # type: ignore[no-untyped-call]  # process-wide: *_created doubles a scrape
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self._requests = _Family(
            "seaway_requests",
            "Inference requests answered, by model, version, protocol and status",
            ["model", "version", "protocol", "status"],
        )
        self._latency = _Family(
            "seaway_request_duration_seconds",
            "Time from request received to response ready, by model, version and protocol",
            ["model", "version", "protocol"],
            _LATENCY_BUCKETS,
        )
        self._batch_rows = _Family(
            "seaway_batch_rows",
            "Rows per model call (after adaptive batching)",
            ["model", "version"],
            _SIZE_BUCKETS,
        )
        self._batch_requests = _Family(
            "seaway_batch_requests",
            "Requests merged into one model call",
            ["model", "version"],
            _SIZE_BUCKETS,
        )
        #: requests the model itself failed on (it raised or crashed on the input: answered 400,
        #: PredictionError), for the error rate alerts watch (``seaway/serving/alert_signals.py``)
        self._model_errors = _Family(
            "seaway_model_errors",
            "Inference requests the model failed on (it raised or crashed on the input)",
            ["model", "version"],
        )
        for family in (
            self._requests,
            self._latency,
            self._batch_rows,
            self._batch_requests,
            self._model_errors,
        ):
            r.register(family)
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
        self._children: dict[tuple[str, ...], tuple[_Series, _Series]] = {}

    def observe_request(
        self, protocol: str, model: str, version: str, status: str, seconds: float
    ) -> None:
        key = (protocol, model, version, status)
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self._requests.series(model, version, protocol, status),
                self._latency.series(model, version, protocol),
            )
        children[0].sum += 1
        children[1].observe(seconds)

    def model_error(self, model: str, version: str) -> None:
        self._model_errors.series(model, version).sum += 1

    def batch_hook(self, model: str, version: str) -> Callable[[int, int], None]:
        rows = self._batch_rows.series(model, version)
        requests = self._batch_requests.series(model, version)

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
        if self.shared is None:
            return generate_latest(self.registry)
        own = snapshot(self.registry)
        return generate_latest(_Merged([own, *self.shared.read_others()]))

    def families(self) -> list[Metric]:
        """Every family with its samples as a scrape would report them: with several workers,
        all workers' counts summed (the alert evaluator reads request counts and latencies here)."""
        if self.shared is None:
            return list(self.registry.collect())
        own = snapshot(self.registry)
        return list(_Merged([own, *self.shared.read_others()]).collect())

    def publish(self) -> None:
        """Write this worker's snapshot for the others to read (several workers only)."""
        if self.shared is not None:
            self.shared.write(snapshot(self.registry))


#: A snapshot: families as ``[name, type, documentation, [[sample, labels, value], ...]]``.
Snapshot = list[list[Any]]
#: Gauges that are not summed across workers: the largest is reported.
_LARGEST = frozenset({"seaway_model_load_seconds"})
_RETIRED = "retired.json"


def snapshot(registry: Any) -> Snapshot:
    return [
        [family.name, family.type, family.documentation, [list(s[:3]) for s in family.samples]]
        for family in registry.collect()
    ]


class SharedMetrics:
    """One worker's view of the folder where the workers of one server leave their snapshots."""

    def __init__(self, folder: Path, worker: int) -> None:
        self.folder = folder
        self.worker = worker
        self.own = folder / f"worker-{worker}.json"

    def write(self, data: Snapshot) -> None:
        temporary = self.own.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(orjson.dumps(data))
        os.replace(temporary, self.own)  # readers see the old snapshot or the new, whole

    def read_others(self) -> list[Snapshot]:
        found = []
        for path in sorted(self.folder.glob("*.json")):
            if path != self.own:
                data = _read(path)
                if data is not None:
                    found.append(data)
        return found


def retire(folder: Path, worker: int) -> None:
    """Fold a dead worker's last counters and histograms into ``retired.json`` (gauges go: they
    described a process that is gone), so the totals a scrape reports never decrease."""
    dead = folder / f"worker-{worker}.json"
    data = _read(dead)
    if data is None:
        return
    kept = [family for family in data if family[1] in ("counter", "histogram")]
    previous = _read(folder / _RETIRED) or []
    merged = snapshot(_Merged([previous, kept]))
    temporary = folder / f"{_RETIRED}.tmp"
    temporary.write_bytes(orjson.dumps(merged))
    os.replace(temporary, folder / _RETIRED)
    dead.unlink(missing_ok=True)


def _read(path: Path) -> Snapshot | None:
    with contextlib.suppress(OSError, orjson.JSONDecodeError):
        data = orjson.loads(path.read_bytes())
        if isinstance(data, list):
            return data
    return None


class _Merged:
    """Snapshots summed sample by sample, as a collector ``generate_latest`` can render."""

    def __init__(self, snapshots: Sequence[Snapshot]) -> None:
        self._snapshots = snapshots

    def collect(self) -> Iterable[Metric]:
        families: dict[str, Metric] = {}
        values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
        for data in self._snapshots:
            for name, kind, doc, samples in data:
                if name not in families:
                    families[name] = Metric(name, doc, kind)
                    values[name] = {}
                found = values[name]
                for sample, labels, value in samples:
                    key = (sample, tuple(sorted(labels.items())))
                    before = found.get(key)
                    if before is None:
                        found[key] = value
                    elif name in _LARGEST:
                        found[key] = max(before, value)
                    else:
                        found[key] = before + value
        for name, metric in families.items():
            for (sample, labels), value in values[name].items():
                metric.add_sample(sample, dict(labels), value)
            yield metric


class _Series:
    """One label set's numbers: a counter's value (``sum``), or a histogram's sum and the count
    of observations in each bucket (not cumulative; the last is above every bound)."""

    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1  # a bucket holds values <= its bound
        self.sum += value


class _Family(Collector):
    """A counter (no ``buckets``) or a histogram over labelled :class:`_Series`."""

    def __init__(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float] | None = None
    ) -> None:
        self.name, self.doc, self.labels = name, doc, list(labels)
        self.histogram = buckets is not None
        self._bounds = tuple(float(b) for b in buckets or ())
        self._les = [floatToGoString(b) for b in self._bounds] + ["+Inf"]  # type: ignore[no-untyped-call]
        self._series: dict[tuple[str, ...], _Series] = {}

    def series(self, *labels: str) -> _Series:
        found = self._series.get(labels)
        if found is None:
            found = self._series[labels] = _Series(self._bounds)
        return found

    def collect(self) -> Iterable[Metric]:
        if not self.histogram:
            counter = CounterMetricFamily(self.name, self.doc, labels=self.labels)
            for labels, series in list(self._series.items()):
                counter.add_metric(list(labels), series.sum)
            return [counter]
        histogram = HistogramMetricFamily(self.name, self.doc, labels=self.labels)
        for labels, series in list(self._series.items()):
            cumulative, total = [], 0
            for le, count in zip(self._les, series.counts, strict=True):
                total += count
                cumulative.append((le, float(total)))
            histogram.add_metric(list(labels), cumulative, series.sum)
        return [histogram]

    def describe(self) -> Iterable[Metric]:
        kind = HistogramMetricFamily if self.histogram else CounterMetricFamily
        return [kind(self.name, self.doc, labels=self.labels)]


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
