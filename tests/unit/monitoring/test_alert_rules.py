"""Alert rules and their state machine (issue 11, item 5), with an injected clock: pending, `for`,
firing, resolved, flapping, no data, `keep_firing_for`; and the rules' validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from seaway.monitoring.alerts import (
    AlertKind,
    AlertRule,
    AlertState,
    AlertStatus,
    Signal,
    evaluate,
    retire,
)
from seaway.registry.alerts import AlertEvent

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def rule(**fields: Any) -> AlertRule:
    return AlertRule.model_validate({"model": "fraud", **fields})


class Clock:
    """Steps an alert through signals, one evaluation a minute, collecting its events."""

    def __init__(self, alert: AlertRule) -> None:
        self.rule = alert
        self.now = T0
        self.status = AlertStatus()
        self.events: list[AlertEvent] = []
        self.states: list[AlertState] = []

    def step(self, value: float | None, *, reason: str = "", minutes: float = 1) -> AlertState:
        self.now += timedelta(minutes=minutes)
        signal = Signal(value, reason) if value is not None else Signal.missing(reason)
        self.status, events = evaluate(self.rule, signal, self.status, self.now, version="3")
        self.events += events
        self.states.append(self.status.state)
        return self.status.state


def test_for_zero_fires_at_once_and_resolves_when_clear() -> None:
    clock = Clock(rule(error_rate_above=0.05))
    assert clock.step(0.01) is AlertState.INACTIVE
    assert clock.step(0.2) is AlertState.FIRING
    assert clock.step(0.3) is AlertState.FIRING  # one event per firing, not per evaluation
    assert clock.step(0.05) is AlertState.RESOLVED  # not above: equal is clear
    assert clock.step(0.01) is AlertState.RESOLVED
    firing, resolved = clock.events
    assert (firing.state, firing.value, firing.threshold) == ("firing", 0.2, 0.05)
    assert (firing.rule, firing.model, firing.version) == ("fraud-error_rate_above", "fraud", "3")
    assert (firing.kind, firing.severity, firing.time) == (
        "error_rate_above",
        "warning",
        T0 + timedelta(minutes=2),
    )
    assert firing.message == "error rate of fraud/3 is 20.0%, above 5.0%, over 1h"
    assert (resolved.state, resolved.value) == ("resolved", 0.05)
    assert "no longer above" in resolved.message


def test_pending_until_the_condition_held_for_long_enough() -> None:
    clock = Clock(rule(p99_latency_above=250, **{"for": "3m"}))
    states = [clock.step(v) for v in (100, 300, 400, 500, 600, 700)]
    assert states == [
        AlertState.INACTIVE,
        AlertState.PENDING,  # 09:02, held 0 min
        AlertState.PENDING,  # held 1
        AlertState.PENDING,  # held 2
        AlertState.FIRING,  # held 3 = for
        AlertState.FIRING,
    ]
    assert clock.status.active_since == T0 + timedelta(minutes=2)
    assert clock.status.since == T0 + timedelta(minutes=5)
    (firing,) = clock.events
    assert firing.time == T0 + timedelta(minutes=5) and firing.value == 600


def test_flapping_shorter_than_for_never_fires() -> None:
    clock = Clock(rule(error_rate_above=0.05, **{"for": "2m"}))
    for value in (0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.2):
        clock.step(value)
    assert clock.events == []
    assert set(clock.states) == {AlertState.PENDING, AlertState.INACTIVE}


def test_flapping_around_a_firing_alert_with_keep_firing_for() -> None:
    plain = Clock(rule(error_rate_above=0.05))
    kept = Clock(rule(error_rate_above=0.05, keep_firing_for="3m"))
    for value in (0.2, 0.0, 0.2, 0.0, 0.2, 0.0, 0.0, 0.0, 0.0):
        plain.step(value)
        kept.step(value)
    # without keep_firing_for each flap is an event; with it, one firing and one resolved
    assert [e.state for e in plain.events] == ["firing", "resolved"] * 3
    assert [e.state for e in kept.events] == ["firing", "resolved"]
    assert kept.events[1].time == T0 + timedelta(minutes=9)  # clear since 09:06, for 3m


def test_firing_again_after_resolving_goes_through_pending() -> None:
    clock = Clock(rule(error_rate_above=0.05, **{"for": "1m"}))
    for value in (0.2, 0.2, 0.0, 0.2):
        clock.step(value)
    assert clock.states == [
        AlertState.PENDING,
        AlertState.FIRING,
        AlertState.RESOLVED,
        AlertState.PENDING,
    ]
    clock.step(0.2)
    assert [e.state for e in clock.events] == ["firing", "resolved", "firing"]


def test_no_data_never_fires_and_says_why() -> None:
    clock = Clock(rule(error_rate_above=0.05))
    assert clock.step(None, reason="no requests in the last 1h") is AlertState.INACTIVE
    assert clock.status.reason == "no requests in the last 1h"
    assert clock.events == []
    assert clock.step(float("nan"), reason="0 of 0") is AlertState.INACTIVE

    pending = Clock(rule(error_rate_above=0.05, **{"for": "5m"}))
    pending.step(0.5)
    assert pending.step(None, reason="no requests") is AlertState.INACTIVE  # back, not on
    assert pending.events == []


def test_a_firing_alert_stays_firing_without_data() -> None:
    clock = Clock(rule(error_rate_above=0.05))
    clock.step(0.5)
    assert clock.step(None, reason="no requests") is AlertState.FIRING
    assert clock.status.value is None and clock.status.reason == "no requests"
    assert clock.step(0.0) is AlertState.RESOLVED
    assert [e.state for e in clock.events] == ["firing", "resolved"]


def test_below_rules_and_verdict_rules() -> None:
    accuracy = Clock(rule(accuracy_below=0.9, metric="F1", window="7d"))
    assert accuracy.step(0.95) is AlertState.INACTIVE
    assert accuracy.step(0.85) is AlertState.FIRING
    assert accuracy.events[0].message == "f1 of fraud/3 is 0.850, below 0.900, over 1w"

    drift = rule(data_drift=True, window="24h")
    assert drift.kind is AlertKind.DATA_DRIFT and drift.threshold is None
    status, events = evaluate(
        drift,
        Signal(1.0, "2 of 4 features: amount, hour", breached=True),
        AlertStatus(),
        T0,
        version="3",
    )
    assert status.state is AlertState.FIRING
    assert events[0].message == (
        "data drift of fraud/3 over 1d: drifted (2 of 4 features: amount, hour)"
    )
    status, events = evaluate(drift, Signal(0.0, breached=False), status, T0, version="3")
    assert status.state is AlertState.RESOLVED and events[0].state == "resolved"
    one = rule(data_drift=True, feature="amount")
    assert one.name == "fraud-data_drift-amount"
    _, events = evaluate(
        one, Signal(0.4, breached=True, threshold=0.1), AlertStatus(), T0, version="1"
    )
    assert events[0].threshold == 0.1  # the drift test's own threshold
    assert "data drift in amount" in events[0].message


def test_a_retired_version_resolves_its_firing_alert() -> None:
    alert = rule(error_rate_above=0.05)
    assert retire(alert, AlertStatus(AlertState.PENDING), T0, version="3") == []
    (event,) = retire(alert, AlertStatus(AlertState.FIRING, value=0.3), T0, version="3")
    assert event.state == "resolved" and "no longer served" in event.message


def test_rules_parse_as_written_in_yaml() -> None:
    parsed = rule(
        name="fraud-p99",
        version=3,
        p99_latency_above=250,
        window="5m",
        severity="critical",
        **{"for": 120},
    )
    assert parsed.version == "3" and parsed.window == timedelta(minutes=5)
    assert parsed.for_ == timedelta(minutes=2) and parsed.threshold == 250.0
    assert parsed.applies_to("fraud", "3") and not parsed.applies_to("fraud", "2")
    assert rule(error_rate_above=0.1).applies_to("fraud", "7")
    assert rule(error_rate_above=0.1, **{"for": "0"}).for_ == timedelta(0)


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({}, "exactly one of .* \\(got none\\)"),
        (
            {"error_rate_above": 0.1, "p99_latency_above": 5},
            "got error_rate_above, p99_latency_above",
        ),
        ({"data_drift": False}, "got none"),
        ({"error_rate_above": 1.5}, "less than or equal to 1"),
        ({"p99_latency_above": 0}, "greater than 0"),
        ({"error_rate_above": 0.1, "window": "soon"}, "not a duration"),
        ({"error_rate_above": 0.1, "feature": "x"}, "feature goes with data_drift"),
        ({"error_rate_above": 0.1, "metric": "f1"}, "metric goes with"),
        ({"accuracy_below": 0.1, "metric": "rmse"}, "lower-is-better"),
        ({"error_rate_above": 0.1, "thresold": 1}, "Extra inputs"),
    ],
)
def test_bad_rules_say_what_is_wrong(fields: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        rule(**fields)
