"""The server's side of the prediction log: one log per front process, each served version's
settings, and the log's counters in ``/metrics``.

Each version's sample rate is, most specific first: its model's entry under ``per_model`` in
the serve config, then ``--log-sample`` (flag, ``SEAWAY_SERVE_LOG_SAMPLE``, config file), then the
model's own serving config (``log_model(serving={"log_sample": 0.1})``), else 0: not logged.
Excluded inputs add up: ``--log-exclude``, the ``per_model`` entry's and the model's own
``log_exclude`` are all left out. The data plane calls :func:`attach` for every version it
publishes; a version with a rate above 0 gets a :class:`~seaway.monitoring.predlog.ModelLog`,
and the data plane records each answered request into it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from seaway.errors import MissingDependencyError
from seaway.monitoring import logstore
from seaway.monitoring.durations import parse_duration
from seaway.monitoring.predlog import LogConfig, PredictionLog, arrow_available
from seaway.packaging.manifest import Manifest

if TYPE_CHECKING:
    from seaway.packaging.profile import ReferenceProfile
    from seaway.serving.config import ServeConfig
    from seaway.serving.model import ServedModel


def open_log(config: ServeConfig) -> PredictionLog:
    """This process's log (its writer thread starts with the first version that logs). Asking
    every model to be logged (``--log-sample``) without pyarrow installed is an error now; a
    model that asks for itself is served unlogged, and the server says why once."""
    if config.log_sample and not arrow_available():
        raise MissingDependencyError("pyarrow", "monitor", "The prediction log (--log-sample)")
    retention = None if config.log_retention == "never" else parse_duration(config.log_retention)
    if config.log_store:
        logstore.open_store(config.log_store)  # an unknown scheme, a missing extra: said at start
    return PredictionLog(
        LogConfig(
            root=config.log_store or logstore.default_root(),
            retention=retention,
            buffer_rows=config.log_buffer,
            flush_rows=config.log_flush_rows,
            flush_seconds=config.log_flush_seconds,
        )
    )


def model_settings(config: ServeConfig, name: str, manifest: Manifest) -> tuple[float, set[str]]:
    """``name``'s sample rate and excluded inputs (see the module docstring for the order)."""
    own = manifest.serving
    entry = config.per_model.get(name)
    sample = next(
        (
            rate
            for rate in (
                entry.log_sample if entry is not None else None,
                config.log_sample,
                own.log_sample if own is not None else None,
            )
            if rate is not None
        ),
        0.0,
    )
    exclude = set(config.log_exclude)
    if entry is not None:
        exclude.update(entry.log_exclude)
    if own is not None and own.log_exclude:
        exclude.update(own.log_exclude)
    return sample, exclude


def attacher(log: PredictionLog, config: ServeConfig) -> Callable[[ServedModel], None]:
    """What the data plane calls on each version it publishes: give it its log, once."""

    def attach(model: ServedModel) -> None:
        if model.logger is not None:
            return
        sample, exclude = model_settings(config, model.name, model.manifest)
        model.logger = log.model(
            model.name,
            model.version,
            sample=sample,
            exclude=exclude,
            classes=model.classes,
            profile=_profile_reader(model.package_path, model.manifest),
        )
        model.log_proba = model.logger is not None and log_proba(config, model)

    return attach


def log_proba(config: ServeConfig, model: ServedModel) -> bool:
    """Whether logged requests of ``model`` also log its probabilities (a second model call on
    those requests, for estimated performance): the ``per_model`` entry's ``log_proba``, else
    the server's, else on exactly when the package has a calibration (``log_model(...,
    reference_labels=...)``: its owner asked for estimates)."""
    if not model.supports_proba:
        return False
    entry = config.per_model.get(model.name)
    for choice in (entry.log_proba if entry is not None else None, config.log_proba):
        if choice is not None:
            return choice
    return model.manifest.calibration is not None


def _profile_reader(package_path: str, manifest: Manifest) -> Callable[[], ReferenceProfile | None]:
    def read() -> ReferenceProfile | None:
        if manifest.reference_profile is None:
            return None
        from seaway.packaging.profile import ReferenceProfile

        text = (Path(package_path) / manifest.reference_profile).read_text("utf-8")
        return ReferenceProfile.model_validate(json.loads(text))

    return read


class LogCollector(Collector):
    """The log's counters per model and version, read at scrape time."""

    def __init__(self, log: PredictionLog) -> None:
        self._log = log

    def collect(self) -> Iterable[Metric]:
        labels = ["model", "version"]
        rows = CounterMetricFamily(
            "seaway_prediction_log_rows", "Rows written to the prediction log", labels=labels
        )
        requests = CounterMetricFamily(
            "seaway_prediction_log_requests",
            "Requests written to the prediction log",
            labels=labels,
        )
        dropped = CounterMetricFamily(
            "seaway_prediction_log_dropped",
            "Sampled requests not logged because the log's buffer was full",
            labels=labels,
        )
        errors = CounterMetricFamily(
            "seaway_prediction_log_write_errors",
            "Prediction log writes that failed (their rows are lost)",
            labels=labels,
        )
        failed = CounterMetricFamily(
            "seaway_prediction_log_failed_rows",
            "Rows lost to prediction log write errors",
            labels=labels,
        )
        for model in self._log.models:
            key = [model.model, model.version]
            rows.add_metric(key, model.rows)
            requests.add_metric(key, model.requests)
            dropped.add_metric(key, model.dropped)
            errors.add_metric(key, model.write_errors)
            failed.add_metric(key, model.failed_rows)
        buffered = GaugeMetricFamily(
            "seaway_prediction_log_buffered_rows", "Rows waiting to be written to the log"
        )
        buffered.add_metric([], self._log.buffered_rows)
        return [rows, requests, dropped, errors, failed, buffered]

    def describe(self) -> Iterable[Metric]:
        return []
