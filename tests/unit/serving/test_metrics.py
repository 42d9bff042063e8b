"""The hot-path series: what Prometheus reads from them must be what prometheus_client would write."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from seaway.serving.metrics import Metrics


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def test_request_series_match_prometheus_client() -> None:
    latencies = [0.0001, 0.0005, 0.0007, 0.001, 0.3, 2.5, 31.0]  # on bounds, between, above all
    metrics = Metrics()
    reference = CollectorRegistry()
    count = Counter("seaway_requests", "d", ["model", "version", "protocol", "status"],
                    registry=reference)  # fmt: skip
    latency = Histogram(
        "seaway_request_duration_seconds",
        "d",
        ["model", "version", "protocol"],
        buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                 10.0, 30.0),
        registry=reference,
    )  # fmt: skip
    for seconds in latencies:
        status = "200" if seconds < 1 else "429"
        metrics.observe_request("rest", "fraud", "3", status, seconds)
        count.labels("fraud", "3", "rest", status).inc()
        latency.labels("fraud", "3", "rest").observe(seconds)
    ours, theirs = samples(metrics.render()), samples(generate_latest(reference))
    wanted = {key: value for key, value in theirs.items() if not key[0].endswith("_created")}
    assert {key: ours[key] for key in wanted} == wanted
    bucket = ("seaway_request_duration_seconds_bucket",
              (("le", "0.0005"), ("model", "fraud"), ("protocol", "rest"), ("version", "3")))  # fmt: skip
    assert ours[bucket] == 2  # a value equal to a bound is in that bound's bucket


def test_batch_hook_counts_rows_and_requests() -> None:
    metrics = Metrics()
    observe = metrics.batch_hook("fraud", "3")
    for rows, requests in [(1, 1), (64, 3), (200, 10)]:
        observe(rows, requests)
    got = samples(metrics.render())
    key = (("model", "fraud"), ("version", "3"))
    assert got[("seaway_batch_rows_count", key)] == 3
    assert got[("seaway_batch_rows_sum", key)] == 265
    assert got[("seaway_batch_rows_bucket", (("le", "64.0"), *key))] == 2
    assert got[("seaway_batch_requests_bucket", (("le", "2.0"), *key))] == 1
    assert got[("seaway_batch_requests_bucket", (("le", "+Inf"), *key))] == 3
