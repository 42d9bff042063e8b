"""The signals of request-level alert rules: error rate and p99 latency over a window, from the
server's own metrics.

Nothing is added to the request path: :class:`RequestWindow` samples the cumulative counters the
metrics already keep (``seaway_requests``, ``seaway_model_errors`` and the latency histogram,
all workers' summed) once per evaluation, and a window's figures are the difference between the
newest sample and the newest one at least a window old (or zero, when the server is younger than
the window). The window's edges are as fine as the evaluation interval.

**Error rate**: the fraction of a version's inference requests (REST, gRPC and ``/invocations``)
that failed by the server's or the model's fault: answered HTTP 5xx, or gRPC INTERNAL, UNKNOWN,
UNAVAILABLE, DEADLINE_EXCEEDED or DATA_LOSS, or failed by the model itself on its input (it raised
or crashed its replica: ``PredictionError``, answered 400 / INVALID_ARGUMENT). Requests refused for
the client's own mistakes (invalid inputs, 401, 403, 404, 413, 415) and 429s (the client should
retry later) are counted in the total but are not errors.

**p99 latency**: the 99th percentile of request latency, in milliseconds, estimated from the
latency histogram's buckets by linear interpolation within the bucket (as Prometheus's
``histogram_quantile`` does); above the highest finite bucket it reads as that bucket's bound.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from seaway.monitoring.alerts import AlertRule, Signal

#: gRPC codes that mean the server failed the request (the others are the client's doing)
SERVER_FAULT_CODES = frozenset(
    {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"}
)
Key = tuple[str, str]  # model, version


@dataclass(frozen=True)
class Counts:
    """One version's cumulative request figures at one moment."""

    requests: float = 0.0
    errors: float = 0.0
    #: latency bucket bounds in seconds (the last is +Inf) and cumulative counts at each
    bounds: tuple[float, ...] = ()
    buckets: tuple[float, ...] = ()

    def minus(self, earlier: Counts) -> Counts:
        if earlier.bounds and earlier.bounds != self.bounds:
            earlier = Counts(earlier.requests, earlier.errors)
        before = earlier.buckets or (0.0,) * len(self.buckets)
        return Counts(
            self.requests - earlier.requests,
            self.errors - earlier.errors,
            self.bounds,
            tuple(now - then for now, then in zip(self.buckets, before, strict=True)),
        )


def is_error(status: str) -> bool:
    """Whether a request counted with this status failed by the server's fault (see above;
    the model's own failures are counted apart, in ``seaway_model_errors``)."""
    if status.isdigit():
        return int(status) >= 500
    return status in SERVER_FAULT_CODES


def read_counts(families: Iterable[Any]) -> dict[Key, Counts]:
    """Cumulative counts per model version from the metrics' families."""
    requests: dict[Key, float] = {}
    errors: dict[Key, float] = {}
    buckets: dict[Key, dict[float, float]] = {}
    for family in families:
        if family.name == "seaway_requests":
            for sample in family.samples:
                key = _key(sample.labels)
                if key is not None:
                    requests[key] = requests.get(key, 0.0) + sample.value
                    if is_error(sample.labels.get("status", "")):
                        errors[key] = errors.get(key, 0.0) + sample.value
        elif family.name == "seaway_model_errors":
            for sample in family.samples:
                key = _key(sample.labels)
                if key is not None:
                    errors[key] = errors.get(key, 0.0) + sample.value
        elif family.name == "seaway_request_duration_seconds":
            for sample in family.samples:
                key = _key(sample.labels)
                if key is not None and sample.name.endswith("_bucket"):
                    bound = float(sample.labels["le"])
                    found = buckets.setdefault(key, {})
                    found[bound] = found.get(bound, 0.0) + sample.value
    counts = {}
    for key, total in requests.items():
        by_bound = buckets.get(key, {})
        bounds = tuple(sorted(by_bound))
        counts[key] = Counts(
            total, errors.get(key, 0.0), bounds, tuple(by_bound[b] for b in bounds)
        )
    return counts


def quantile(q: float, bounds: tuple[float, ...], cumulative: tuple[float, ...]) -> float | None:
    """The ``q`` quantile from cumulative histogram buckets (``histogram_quantile``'s method)."""
    if not cumulative or cumulative[-1] <= 0:
        return None
    rank = q * cumulative[-1]
    previous_count, lower = 0.0, 0.0
    for bound, count in zip(bounds, cumulative, strict=True):
        if count >= rank:
            if math.isinf(bound):
                return lower  # above every finite bucket: the highest bound is all we know
            inside = count - previous_count
            share = (rank - previous_count) / inside if inside > 0 else 1.0
            return lower + (bound - lower) * share
        previous_count, lower = count, bound
    return lower


class RequestWindow:
    """Samples of cumulative request counts, and the window signals computed from them.

    :meth:`sample` runs on the event loop (the metrics are the loop's); the signal methods may run
    in a worker thread while no sample is being taken (the evaluator awaits them in turn).
    """

    def __init__(self, read: Callable[[], Iterable[Any]], horizon: timedelta) -> None:
        self._read = read
        self.horizon = horizon
        self._samples: deque[tuple[datetime, dict[Key, Counts]]] = deque()

    def sample(self, now: datetime) -> None:
        self._samples.append((now, read_counts(self._read())))
        # keep the newest sample older than the horizon: the longest window's baseline
        while len(self._samples) > 1 and self._samples[1][0] <= now - self.horizon:
            self._samples.popleft()

    def window(self, key: Key, span: timedelta, now: datetime) -> Counts:
        """The figures of ``span`` back from ``now`` (to the first sample when it is younger)."""
        if not self._samples:
            return Counts()
        current = self._samples[-1][1].get(key, Counts())
        edge = now - span
        baseline = Counts()
        for when, counts in reversed(self._samples):
            if when <= edge:
                baseline = counts.get(key, Counts())
                break
        return current.minus(baseline)

    def error_rate(self, rule: AlertRule, model: str, version: str, now: datetime) -> Signal:
        counts = self.window((model, version), rule.window, now)
        if counts.requests <= 0:
            return Signal.missing(f"no requests for {model}/{version} in the window")
        failed, total = round(counts.errors), round(counts.requests)
        return Signal(counts.errors / counts.requests, f"{failed} of {total} requests failed")

    def p99_latency(self, rule: AlertRule, model: str, version: str, now: datetime) -> Signal:
        counts = self.window((model, version), rule.window, now)
        seconds = quantile(0.99, counts.bounds, counts.buckets)
        if counts.requests <= 0 or seconds is None:
            return Signal.missing(f"no requests for {model}/{version} in the window")
        return Signal(seconds * 1000.0, f"{round(counts.requests)} requests")


def _key(labels: dict[str, str]) -> Key | None:
    model = labels.get("model", "")
    return (model, labels.get("version", "")) if model else None
