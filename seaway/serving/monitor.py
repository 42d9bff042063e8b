"""What the server watches: the alert evaluator built from the serving config, with a signal
source for each kind of rule and the monitoring gauges of ``/metrics``.

Request-level signals (error rate, p99 latency) come from the server's own metrics
(``alert_signals.py``); drift and accuracy from the prediction log, the reference profile and the
feedback (``monitor_sources.py``).
"""

from __future__ import annotations

from datetime import timedelta

from seaway.monitoring.alerts import AlertKind
from seaway.registry import Registry
from seaway.serving.alert_signals import RequestWindow
from seaway.serving.alerting import AlertCollector, AlertEvaluator, SignalSource
from seaway.serving.config import ServeConfig
from seaway.serving.dataplane import DataPlane
from seaway.serving.metrics import Metrics
from seaway.serving.webhooks import WebhookSender

#: samples of the request counters kept at least this long, whatever the rules' windows
_MIN_HORIZON = timedelta(minutes=5)


def build_evaluator(
    config: ServeConfig,
    plane: DataPlane,
    metrics: Metrics,
    registry: Registry | None,
    *,
    extra_sources: dict[AlertKind, SignalSource] | None = None,
) -> AlertEvaluator | None:
    """The evaluator for ``config``'s rules (None when there are none), its gauges registered in
    ``metrics``; start it once the server is ready."""
    if not config.alerts:
        return None
    horizon = max([_MIN_HORIZON, *(rule.window for rule in config.alerts)])
    requests = RequestWindow(metrics.families, horizon)
    sources: dict[AlertKind, SignalSource] = {
        AlertKind.ERROR_RATE_ABOVE: requests.error_rate,
        AlertKind.P99_LATENCY_ABOVE: requests.p99_latency,
        **(extra_sources or {}),
    }
    evaluator = AlertEvaluator(
        config.alerts,
        sources,
        targets=lambda: [(model.name, model.version) for model in plane.models],
        interval=config.alert_interval,
        record=registry.alerts.record if registry is not None else None,
        firing=registry.alerts.firing if registry is not None else None,
        sender=WebhookSender(config.webhooks) if config.webhooks else None,
        before_round=[requests.sample],
    )
    metrics.registry.register(AlertCollector(evaluator))
    return evaluator
