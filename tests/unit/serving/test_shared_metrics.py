"""Several front workers: a scrape of one reports the counts of all (seaway/serving/metrics.py)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from seaway.serving.metrics import Metrics, SharedMetrics, retire


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


class _Pool:
    healthy, size = 1, 1


class _Model:
    name, version, queued, in_flight, pool = "lr", "1", 2, 1, _Pool()


def _worker(folder: Path, index: int) -> Metrics:
    metrics = Metrics(SharedMetrics(folder, index))
    metrics.watch(lambda: [_Model()])
    return metrics


REQUESTS = ("seaway_requests_total", (("model", "lr"), ("protocol", "rest"), ("status", "200"), ("version", "1")))  # fmt: skip
LATENCY_COUNT = ("seaway_request_duration_seconds_count", (("model", "lr"), ("protocol", "rest"), ("version", "1")))  # fmt: skip
LOW_BUCKET = ("seaway_request_duration_seconds_bucket", (("le", "0.001"), ("model", "lr"), ("protocol", "rest"), ("version", "1")))  # fmt: skip
LOAD = ("seaway_model_load_seconds", (("model", "lr"), ("version", "1")))
QUEUE = ("seaway_queue_depth", (("model", "lr"), ("version", "1")))


def test_a_scrape_sums_every_worker_counters_histograms_and_state(tmp_path: Path) -> None:
    zero, one = _worker(tmp_path, 0), _worker(tmp_path, 1)
    for _ in range(3):
        zero.observe_request("rest", "lr", "1", "200", 0.0004)
    for _ in range(5):
        one.observe_request("rest", "lr", "1", "200", 0.2)
    zero.model_loaded("lr", "1", 0.5)
    one.model_loaded("lr", "1", 0.8)
    one.publish()

    seen = samples(zero.render())  # zero's own counts live, one's from its snapshot
    assert seen[REQUESTS] == 8
    assert seen[LATENCY_COUNT] == 8
    assert seen[LOW_BUCKET] == 3  # cumulative buckets add up bucket by bucket
    assert seen[QUEUE] == 4  # queued across both workers
    assert seen[LOAD] == 0.8  # a load time is not summed: the largest

    # what one did after its last snapshot is not seen yet; the next snapshot brings it
    one.observe_request("rest", "lr", "1", "200", 0.2)
    assert samples(zero.render())[REQUESTS] == 8
    one.publish()
    assert samples(zero.render())[REQUESTS] == 9


def test_a_dead_worker_counts_are_kept_and_its_gauges_dropped(tmp_path: Path) -> None:
    zero, one = _worker(tmp_path, 0), _worker(tmp_path, 1)
    zero.observe_request("rest", "lr", "1", "200", 0.01)
    for _ in range(4):
        one.observe_request("rest", "lr", "1", "200", 0.01)
    one.publish()
    retire(tmp_path, 1)  # worker 1 died; its replacement starts from nothing
    assert not (tmp_path / "worker-1.json").exists()
    replacement = _worker(tmp_path, 1)
    replacement.observe_request("rest", "lr", "1", "200", 0.01)
    replacement.publish()

    seen = samples(zero.render())
    assert seen[REQUESTS] == 6  # 1 + 4 (retired) + 1: never back
    assert seen[QUEUE] == 4  # the dead worker's queue is gone: zero's 2 and the replacement's 2

    retire(tmp_path, 1)  # a second death adds to what was retired before
    assert samples(zero.render())[REQUESTS] == 6


def test_one_process_reads_no_folder() -> None:
    metrics = Metrics()
    metrics.observe_request("rest", "lr", "1", "200", 0.01)
    metrics.publish()  # nothing to publish to
    assert metrics.shared is None
    assert samples(metrics.render())[REQUESTS] == 1
