"""Alert rules, and the state machine that turns a rule's signal into firing and resolving events.

A rule watches one signal of one model (one version, or each served version on its own) over a
window: data or prediction drift, estimated or realised accuracy below a threshold, the error
rate or the p99 latency above one. The server computes the signal every ``--alert-interval``
(``seaway/serving/alerting.py``); :func:`evaluate` here is a pure function of the rule, the
signal, the alert's previous status and the time, so every transition is tested with an injected
clock and no server.

The states are Prometheus's, plus ``resolved``::

    inactive --condition holds--> pending --held for `for`--> firing --clear--> resolved
        ^                            |                          (for `keep_firing_for`)  |
        +-------condition clears-----+          resolved --condition holds--> pending ---+

``for: 0`` goes from inactive straight to firing. Only firing and resolving make events (what the
registry stores and webhooks send). A signal that cannot be computed (no requests or no feedback in
the window, no reference profile) never fires and says why: a pending alert goes back to inactive,
and a firing one stays firing, because no data is not evidence that the problem went away (a model
that fails every request may well lose its traffic).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from seaway.monitoring.durations import LONGEST, parse_duration
from seaway.registry.alerts import AlertEvent


class AlertKind(StrEnum):
    DATA_DRIFT = "data_drift"
    PREDICTION_DRIFT = "prediction_drift"
    ESTIMATED_ACCURACY_BELOW = "estimated_accuracy_below"
    ACCURACY_BELOW = "accuracy_below"
    ERROR_RATE_ABOVE = "error_rate_above"
    P99_LATENCY_ABOVE = "p99_latency_above"


#: kinds whose condition is the signal's own verdict (drift), not a comparison with a threshold
VERDICT_KINDS = frozenset({AlertKind.DATA_DRIFT, AlertKind.PREDICTION_DRIFT})
_BELOW = frozenset({AlertKind.ESTIMATED_ACCURACY_BELOW, AlertKind.ACCURACY_BELOW})
#: realised metrics where lower is better: "below" would alert on good news
_LOWER_IS_BETTER = frozenset({"mae", "rmse", "mse", "log_loss"})
#: what ``metric:`` may name: the higher-is-better metrics ``performance`` computes, and of those
#: the ones CBPE estimates (another name would never be computable, so the rule never fired)
REALISED_METRICS = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
ESTIMATED_METRICS = frozenset({"accuracy", "precision", "recall", "f1"})


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class AlertState(StrEnum):
    INACTIVE = "inactive"
    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


def _duration(value: Any) -> Any:
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not 0 <= value <= LONGEST.total_seconds():  # NaN too; beyond, timedelta overflows
            raise ValueError(f"{value!r} seconds is not a duration from 0 to 100 years")
        return timedelta(seconds=value)  # a bare number is seconds
    if isinstance(value, str) and value.strip() in ("0", "0s"):
        return timedelta(0)
    return parse_duration(value, what="a duration") if isinstance(value, str) else value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class AlertRule(BaseModel):
    """One rule of the serving config's ``alerts:`` list; exactly one kind key is given::

    - name: fraud-errors
      model: fraud
      error_rate_above: 0.05
      window: 5m
      for: 2m
      severity: critical
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = ""
    model: str = Field(min_length=1)
    #: one version; None: each served version of the model, alerting on its own
    version: str | None = None
    window: Duration = timedelta(hours=1)
    for_: Duration = Field(default=timedelta(0), alias="for")
    #: once firing, how long the condition must stay clear before the alert resolves
    keep_firing_for: Duration = timedelta(0)
    severity: Severity = Severity.WARNING
    # the kinds: exactly one is set
    data_drift: bool | None = None
    prediction_drift: bool | None = None
    #: drift kinds: one feature's verdict instead of the overall one
    feature: str | None = None
    estimated_accuracy_below: float | None = Field(default=None, ge=0, le=1)
    accuracy_below: float | None = None
    #: accuracy kinds: the metric compared (accuracy by default; f1, precision, recall, ...)
    metric: str | None = None
    error_rate_above: float | None = Field(default=None, ge=0, le=1)
    #: milliseconds
    p99_latency_above: float | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _version_as_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("version"), int):
            data = {**data, "version": str(data["version"])}
        return data

    @model_validator(mode="after")
    def _one_kind(self) -> AlertRule:
        given = [kind for kind in AlertKind if getattr(self, kind.value) not in (None, False)]
        if len(given) != 1:
            names = ", ".join(kind.value for kind in AlertKind)
            what = "none" if not given else ", ".join(kind.value for kind in given)
            raise ValueError(f"an alert rule takes exactly one of {names} (got {what})")
        kind = given[0]
        if self.feature is not None and kind is not AlertKind.DATA_DRIFT:
            raise ValueError("feature goes with data_drift (one input feature's verdict)")
        if self.metric is not None:
            if kind not in _BELOW:
                raise ValueError("metric goes with accuracy_below or estimated_accuracy_below")
            if self.metric.lower() in _LOWER_IS_BETTER:
                raise ValueError(
                    f"{self.metric} is lower-is-better: 'below' would alert when it improves; "
                    "pick a metric where higher is better (accuracy, f1, precision, recall, "
                    "roc_auc, r2)"
                )
            known = (
                ESTIMATED_METRICS
                if kind is AlertKind.ESTIMATED_ACCURACY_BELOW
                else REALISED_METRICS
            )
            if self.metric.lower() not in known:
                raise ValueError(
                    f"metric {self.metric!r} is not one {kind.value} can watch; pick one of "
                    + ", ".join(sorted(known))
                )
        threshold = getattr(self, kind.value)
        if kind not in VERDICT_KINDS and not math.isfinite(threshold):
            raise ValueError(f"{kind.value} must be a finite number, got {threshold}")
        if self.window <= timedelta(0):
            raise ValueError("window must be longer than zero")
        if not self.name:
            suffix = f"-{self.feature}" if self.feature else ""
            object.__setattr__(self, "name", f"{self.model}-{kind.value}{suffix}")
        return self

    @property
    def kind(self) -> AlertKind:
        return next(k for k in AlertKind if getattr(self, k.value) not in (None, False))

    @property
    def threshold(self) -> float | None:
        """The number the rule compares with (None for drift: the drift test's own verdict)."""
        if self.kind in VERDICT_KINDS:
            return None
        value = getattr(self, self.kind.value)
        return float(value)

    @property
    def metric_name(self) -> str:
        return (self.metric or "accuracy").lower()

    def applies_to(self, model: str, version: str) -> bool:
        return model == self.model and (self.version is None or self.version == version)


@dataclass(frozen=True)
class Signal:
    """A rule's signal for one model version now: a value, or None with the reason it cannot be
    computed. Drift sources give their own verdict in ``breached`` (and the threshold it used)."""

    value: float | None
    reason: str = ""
    breached: bool | None = None
    threshold: float | None = None

    @classmethod
    def missing(cls, reason: str) -> Signal:
        return cls(None, reason)


@dataclass(frozen=True)
class AlertStatus:
    """Where one rule stands for one model version."""

    state: AlertState = AlertState.INACTIVE
    #: when this state began
    since: datetime | None = None
    #: since when the condition has held (pending and firing)
    active_since: datetime | None = None
    #: firing with the condition clear: since when (``keep_firing_for``)
    clear_since: datetime | None = None
    value: float | None = None
    #: why the signal could not be computed, or what it says (drifted features)
    reason: str = ""


def condition(rule: AlertRule, signal: Signal) -> bool | None:
    """Whether the rule's condition holds for ``signal``; None when it cannot be told."""
    if rule.kind in VERDICT_KINDS:
        return signal.breached
    if signal.value is None or math.isnan(signal.value):
        return None
    threshold = rule.threshold
    assert threshold is not None
    return signal.value < threshold if rule.kind in _BELOW else signal.value > threshold


def evaluate(
    rule: AlertRule, signal: Signal, previous: AlertStatus, now: datetime, *, version: str
) -> tuple[AlertStatus, list[AlertEvent]]:
    """The alert's next status, and the events (firing, resolved) the step makes."""
    holds = condition(rule, signal)
    value, reason = signal.value, signal.reason
    state = previous.state
    if holds is None:
        if state is AlertState.FIRING:
            return replace(previous, value=value, reason=reason, clear_since=None), []
        if state is AlertState.PENDING:
            return AlertStatus(AlertState.INACTIVE, now, value=value, reason=reason), []
        return replace(previous, value=value, reason=reason), []
    if holds:
        if state is AlertState.FIRING:
            return replace(previous, value=value, reason=reason, clear_since=None), []
        started = previous.active_since if state is AlertState.PENDING else now
        assert started is not None
        if now - started >= rule.for_:
            status = AlertStatus(AlertState.FIRING, now, started, None, value, reason)
            return status, [_event(rule, signal, version, "firing", now)]
        since = previous.since if state is AlertState.PENDING else now
        return AlertStatus(AlertState.PENDING, since, started, None, value, reason), []
    if state is AlertState.FIRING:
        clear = previous.clear_since or now
        if now - clear >= rule.keep_firing_for:
            status = AlertStatus(AlertState.RESOLVED, now, value=value, reason=reason)
            return status, [_event(rule, signal, version, "resolved", now)]
        return replace(previous, value=value, reason=reason, clear_since=clear), []
    if state is AlertState.PENDING:
        return AlertStatus(AlertState.INACTIVE, now, value=value, reason=reason), []
    return replace(previous, value=value, reason=reason), []


def retire(
    rule: AlertRule, previous: AlertStatus, now: datetime, *, version: str
) -> list[AlertEvent]:
    """A version no longer served: its firing alert resolves (nothing left to watch)."""
    if previous.state is not AlertState.FIRING:
        return []
    event = _event(rule, Signal(previous.value), version, "resolved", now)
    message = f"{rule.model}/{version} is no longer served: {rule.name} resolves"
    return [replace(event, message=message)]


def describe(rule: AlertRule, signal: Signal, state: str, version: str) -> str:
    """One line for people: what the alert watches, the value against the threshold, the state."""
    where = f"{rule.model}/{version}"
    window = _span(rule.window)
    kind = rule.kind
    if kind in VERDICT_KINDS:
        what = "prediction drift" if kind is AlertKind.PREDICTION_DRIFT else "data drift"
        if rule.feature:
            what = f"{what} in {rule.feature}"
        verdict = "drifted" if state == "firing" else "no longer drifted"
        text = f"{what} of {where} over {window}: {verdict}"
        return f"{text} ({signal.reason})" if signal.reason else text
    value = number(kind, signal.value)
    limit = number(kind, rule.threshold)
    label = {
        AlertKind.ESTIMATED_ACCURACY_BELOW: f"estimated {rule.metric_name}",
        AlertKind.ACCURACY_BELOW: rule.metric_name,
        AlertKind.ERROR_RATE_ABOVE: "error rate",
        AlertKind.P99_LATENCY_ABOVE: "p99 latency",
    }[kind]
    side = "below" if kind in _BELOW else "above"
    if state == "firing":
        text = f"{label} of {where} is {value}, {side} {limit}, over {window}"
    else:
        text = f"{label} of {where} is {value}, no longer {side} {limit}, over {window}"
    return f"{text} ({signal.reason})" if signal.reason else text


def _event(rule: AlertRule, signal: Signal, version: str, state: str, now: datetime) -> AlertEvent:
    threshold = rule.threshold if rule.threshold is not None else signal.threshold
    return AlertEvent(
        rule=rule.name,
        model=rule.model,
        version=version,
        state="firing" if state == "firing" else "resolved",
        value=signal.value,
        threshold=threshold,
        message=describe(rule, signal, state, version),
        time=now,
        kind=rule.kind.value,
        severity=rule.severity.value,
    )


def number(kind: str, value: float | None) -> str:
    """A signal's value as people read it: a percentage, milliseconds, a plain number."""
    if value is None:
        return "unknown"
    if kind == AlertKind.P99_LATENCY_ABOVE:
        return f"{value:.0f} ms" if value >= 10 else f"{value:.2f} ms"
    if kind == AlertKind.ERROR_RATE_ABOVE:
        return f"{value:.1%}"
    if kind in VERDICT_KINDS:
        return f"{value:.3g}"
    return f"{value:.3f}"


def _span(window: timedelta) -> str:
    seconds = window.total_seconds()
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size:.0f}{unit}"
    return f"{seconds:g}s"
