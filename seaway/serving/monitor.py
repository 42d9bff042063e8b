"""What the server watches: the alert evaluator built from the serving config, with a signal
source for each kind of rule and the monitoring gauges of ``/metrics``.

Request-level signals (error rate, p99 latency) come from the server's own metrics
(``alert_signals.py``); drift and accuracy from the prediction log, the reference profiles and the
feedback (``seaway/monitoring/signals.py``), for every served version: the gauges cover
``monitor_window``, the rules their own windows.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from seaway.monitoring import logstore
from seaway.monitoring.alerts import AlertKind
from seaway.monitoring.signals import LogSignals
from seaway.packaging.manifest import Manifest
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
    config: ServeConfig, plane: DataPlane, metrics: Metrics, registry: Registry | None
) -> AlertEvaluator:
    """The evaluator of ``config``'s rules and of the monitoring gauges, registered in
    ``metrics``; start it once the server is ready."""
    horizon = max([_MIN_HORIZON, *(rule.window for rule in config.alerts)])
    requests = RequestWindow(metrics.families, horizon)

    def package(model: str, version: str) -> tuple[Path, Manifest] | None:
        for served in plane.models:
            if served.name == model and served.version == version:
                return Path(served.package_path), served.manifest
        return None

    logged = LogSignals(
        config.log_store or logstore.default_root(),
        package,
        gauge_window=config.monitor_window,
    )
    sources: dict[AlertKind, SignalSource] = {
        AlertKind.ERROR_RATE_ABOVE: requests.error_rate,
        AlertKind.P99_LATENCY_ABOVE: requests.p99_latency,
        AlertKind.DATA_DRIFT: logged.data_drift,
        AlertKind.PREDICTION_DRIFT: logged.prediction_drift,
        AlertKind.ESTIMATED_ACCURACY_BELOW: logged.estimated_accuracy,
        AlertKind.ACCURACY_BELOW: logged.accuracy,
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
        gauges=logged.gauges,
    )
    metrics.registry.register(AlertCollector(evaluator))
    return evaluator
