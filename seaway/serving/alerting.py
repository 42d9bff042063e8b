"""The alert evaluator: a task in the server that evaluates the serving config's alert rules every
``--alert-interval`` seconds, records firing and resolving events in the registry, sends them to
the webhooks, and keeps the monitoring gauges of ``/metrics`` current.

One round: sample the request counters (on the event loop: the metrics are the loop's), compute
every rule's signal for every served version it applies to, and the gauges of each served version,
in one worker thread (drift and accuracy read the prediction log and feedback), then step each
alert's state machine (``seaway/monitoring/alerts.py``, pure). New events go to the webhooks first
(a queue: never waits) and then to the registry, in a thread. A registry that cannot be reached
does not stop the evaluator: the events are kept (up to :data:`MAX_UNRECORDED`) and recorded on a
later round; the outage is logged once, and its end. A rule whose signal raises is logged and
reads as "cannot compute". With ``--workers N`` only worker 0 evaluates.

On start the evaluator reads the alerts firing now from the registry, so that a restarted server
neither fires them again nor forgets to resolve them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from seaway.errors import SeawayError
from seaway.monitoring.alerts import (
    AlertKind,
    AlertRule,
    AlertState,
    AlertStatus,
    Signal,
    evaluate,
    retire,
)
from seaway.monitoring.signals import ModelGauges
from seaway.registry.alerts import AlertEvent
from seaway.serving.webhooks import RESULTS, WebhookSender

log = logging.getLogger("seaway.serving.alerting")
#: events kept for the registry while it cannot be reached; older ones are dropped beyond this
MAX_UNRECORDED = 10_000

#: computes one rule's signal for one model version at a time; may block (runs in a thread)
SignalSource = Callable[[AlertRule, str, str, datetime], Signal]
Key = tuple[str, str, str]  # rule, model, version


#: computes one served version's gauges; may block (runs in a thread)
GaugeSource = Callable[[str, str, datetime], ModelGauges]


class AlertEvaluator:
    def __init__(
        self,
        rules: Sequence[AlertRule],
        sources: Mapping[AlertKind, SignalSource],
        *,
        targets: Callable[[], Iterable[tuple[str, str]]],
        interval: float,
        record: Callable[[list[AlertEvent]], list[AlertEvent]] | None = None,
        firing: Callable[[], list[AlertEvent]] | None = None,
        sender: WebhookSender | None = None,
        before_round: Sequence[Callable[[datetime], None]] = (),
        gauges: GaugeSource | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.rules = list(rules)
        self.sources = dict(sources)
        self.interval = interval
        self.sender = sender
        self.statuses: dict[Key, AlertStatus] = {}
        self.gauges: dict[tuple[str, str], ModelGauges] = {}
        self.rounds = 0
        self._targets = targets
        self._record = record
        self._firing = firing
        self._before_round = list(before_round)
        self._gauge_source = gauges
        self._clock = clock
        self._unrecorded: list[AlertEvent] = []
        self._registry_down = False
        self._failing: set[tuple[str, str]] = set()  # (rule, error) already logged
        self._why: dict[Key, str] = {}  # why each alert's signal is unknown, as last logged
        self._idle: set[str] = set()  # rules matching no served version, as last logged
        self._task: asyncio.Task[None] | None = None

    @property
    def unrecorded(self) -> int:
        """Events waiting for the registry to come back."""
        return len(self._unrecorded)

    def start(self) -> None:
        if self.sender is not None:
            self.sender.start()
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.sender is not None:
            await self.sender.close()

    async def run(self) -> None:
        await self.restore()
        while True:
            try:
                await self.round()
            except Exception:  # a bug in a round must not end alerting for good
                log.exception("alert evaluation failed; trying again next round")
            await asyncio.sleep(self.interval)

    async def restore(self) -> None:
        """Take up the alerts the registry says are firing (a restarted server)."""
        if self._firing is None:
            return
        try:
            firing = await asyncio.to_thread(self._firing)
        except Exception as exc:
            log.warning("cannot read the alerts firing now from the registry: %s", exc)
            return
        names = {rule.name for rule in self.rules}
        for event in firing:
            if event.rule in names:
                self.statuses[(event.rule, event.model, event.version)] = AlertStatus(
                    AlertState.FIRING, event.time, event.time, value=event.value
                )

    async def round(self) -> list[AlertEvent]:
        """One evaluation of every rule; the events it made."""
        now = self._clock()
        served = sorted(set(self._targets()))
        for hook in self._before_round:
            hook(now)
        work = [
            (rule, model, version)
            for rule in self.rules
            for model, version in served
            if rule.applies_to(model, version)
        ]
        self._say_idle({rule.name for rule, _, _ in work}, served)
        signals, gauges = await asyncio.to_thread(self._compute, work, served, now)
        self.gauges = gauges
        events: list[AlertEvent] = []
        for (rule, model, version), signal in zip(work, signals, strict=True):
            key = (rule.name, model, version)
            self._say_why(key, signal)
            status, made = evaluate(
                rule, signal, self.statuses.get(key, AlertStatus()), now, version=version
            )
            self.statuses[key] = status
            events += made
        live = {(rule.name, model, version) for rule, model, version in work}
        by_name = {rule.name: rule for rule in self.rules}
        for key in [k for k in self.statuses if k not in live]:
            gone = self.statuses.pop(key)
            if key[0] in by_name:
                events += retire(by_name[key[0]], gone, now, version=key[2])
        self.rounds += 1
        for event in events:
            log.warning("alert %s: %s", event.state, event.message)
            if self.sender is not None:
                self.sender.submit(event)
        await self._store(events)
        return events

    def _compute(
        self, work: list[tuple[AlertRule, str, str]], served: list[tuple[str, str]], now: datetime
    ) -> tuple[list[Signal], dict[tuple[str, str], ModelGauges]]:
        signals = [self._signal(rule, model, version, now) for rule, model, version in work]
        gauges: dict[tuple[str, str], ModelGauges] = {}
        if self._gauge_source is not None:
            for model, version in served:
                try:
                    gauges[(model, version)] = self._gauge_source(model, version, now)
                except Exception as exc:
                    self._log_once("gauges", f"monitoring gauges of {model}/{version}", exc)
        return signals, gauges

    def _signal(self, rule: AlertRule, model: str, version: str, now: datetime) -> Signal:
        source = self.sources.get(rule.kind)
        if source is None:
            return Signal.missing(f"{rule.kind.value} cannot be computed by this server")
        try:
            return source(rule, model, version, now)
        except Exception as exc:
            self._log_once(rule.name, f"alert rule {rule.name!r}", exc)
            return Signal.missing(f"cannot compute: {exc}")

    def _say_idle(self, busy: set[str], served: list[tuple[str, str]]) -> None:
        """Warn, once until it changes, of a rule that watches nothing this server serves (a typo
        in ``model:`` would otherwise make an alert that never fires); a model loaded later
        through the repository API is watched from then on."""
        for rule in self.rules:
            if rule.name in busy:
                self._idle.discard(rule.name)
                continue
            if rule.name in self._idle:
                continue
            self._idle.add(rule.name)
            what = f"model {rule.model}" + (f" version {rule.version}" if rule.version else "")
            shown = ", ".join(f"{m}/{v}" for m, v in served) or "nothing"
            log.warning(
                "alert rule %r watches %s, which this server does not serve (it serves "
                "%s): it is evaluated once that is served",
                rule.name,
                what,
                shown,
            )

    def _say_why(self, key: Key, signal: Signal) -> None:
        """Log when a rule's signal cannot be computed, and why, each time the reason changes
        (a drift rule that never fires because the log is off should say so)."""
        reason = signal.reason if signal.value is None and signal.breached is None else ""
        if reason and reason != self._why.get(key):
            log.info("alert rule %r cannot be evaluated for %s/%s: %s", *key, reason)
        self._why[key] = reason

    def _log_once(self, what: str, name: str, exc: Exception) -> None:
        """Say why once per distinct error (a Seaway error says it all; others get a trace)."""
        key = (what, f"{type(exc).__name__}: {exc}")
        if key not in self._failing:
            self._failing.add(key)
            trace = None if isinstance(exc, SeawayError) else exc
            log.warning("%s cannot be computed: %s", name, exc, exc_info=trace)

    async def _store(self, events: list[AlertEvent]) -> None:
        if self._record is None:
            return
        waiting = self._unrecorded + events
        if not waiting:
            return
        try:
            await asyncio.to_thread(self._record, waiting)
        except Exception as exc:
            self._unrecorded = waiting[-MAX_UNRECORDED:]
            if not self._registry_down:
                self._registry_down = True
                log.warning(
                    "alert events cannot be recorded in the registry (%s); keeping them and "
                    "trying again each round",
                    exc,
                )
            return
        self._unrecorded = []
        if self._registry_down:
            self._registry_down = False
            log.info("alert events recorded in the registry again (%d held back)", len(waiting))


class AlertCollector(Collector):
    """The evaluator's state at scrape time: which alerts fire, the drift and accuracy gauges of
    each served version, and the webhooks' delivery counts."""

    def __init__(self, evaluator: AlertEvaluator) -> None:
        self._evaluator = evaluator

    def collect(self) -> Iterable[Metric]:
        evaluator = self._evaluator
        firing = GaugeMetricFamily(
            "seaway_alert_firing",
            "1 while an alert rule fires for a model version, else 0",
            labels=["rule", "model", "version"],
        )
        for (rule, model, version), status in sorted(evaluator.statuses.items()):
            firing.add_metric([rule, model, version], float(status.state is AlertState.FIRING))
        unrecorded = GaugeMetricFamily(
            "seaway_alert_events_unrecorded",
            "Alert events waiting for the registry to be reachable again",
            value=evaluator.unrecorded,
        )
        rounds = CounterMetricFamily(
            "seaway_alert_evaluations",
            "Evaluation rounds of the alert rules and monitoring gauges done",
            value=evaluator.rounds,
        )
        families: list[Metric] = [firing, unrecorded, rounds, *_gauges(evaluator.gauges)]
        if evaluator.sender is not None:
            deliveries = CounterMetricFamily(
                "seaway_webhook_deliveries",
                "Alert events delivered to a webhook (sent), given up after retries (failed), "
                "or dropped with its queue full (dropped)",
                labels=["webhook", "result"],
            )
            for label, counts in evaluator.sender.counts.items():
                for result in RESULTS:
                    deliveries.add_metric([label, result], getattr(counts, result))
            families.append(deliveries)
        return families


def _gauges(gauges: Mapping[tuple[str, str], ModelGauges]) -> list[Metric]:
    labels = ["model", "version"]
    score = GaugeMetricFamily(
        "seaway_drift_score",
        "Each input feature's drift statistic over the monitoring window, against the reference",
        labels=[*labels, "feature"],
    )
    detected = GaugeMetricFamily(
        "seaway_drift_detected",
        "1 when the inputs drifted over the window (overall verdict)",
        labels=labels,
    )
    predictions = GaugeMetricFamily(
        "seaway_prediction_drift_detected",
        "1 when the predictions drifted over the window",
        labels=labels,
    )
    estimated = GaugeMetricFamily(
        "seaway_estimated_accuracy",
        "Accuracy estimated from the predicted probabilities over the window (before labels)",
        labels=labels,
    )
    realised = GaugeMetricFamily(
        "seaway_accuracy", "Accuracy against the feedback labels over the window", labels=labels
    )
    for (model, version), found in sorted(gauges.items()):
        key = [model, version]
        for feature, value in sorted(found.drift_scores.items()):
            score.add_metric([*key, feature], value)
        pairs: list[tuple[GaugeMetricFamily, Any]] = [
            (detected, found.drift_detected),
            (predictions, found.prediction_drift_detected),
            (estimated, found.estimated_accuracy),
            (realised, found.accuracy),
        ]
        for family, value in pairs:
            if value is not None:
                family.add_metric(key, float(value))
    return [score, detected, predictions, estimated, realised]
