"""Alert rules and webhooks in the serve config (issue 11, item 5): from the file or the
environment (YAML text), and bad ones refused naming the problem."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from seaway.errors import ConfigError
from seaway.monitoring.alerts import AlertKind, Severity
from seaway.serving.config import ServeConfig

CONFIG = """\
models: ["models:/fraud@production"]
alert_interval: 15
alerts:
  - name: fraud-errors
    model: fraud
    error_rate_above: 0.05
    window: 5m
    for: 2m
    severity: critical
  - model: fraud
    version: 3
    data_drift: true
    feature: amount
    window: 24h
webhooks:
  - url: http://127.0.0.1:9/hook
    headers: {Authorization: "Bearer x"}
    retries: 1
"""


def test_rules_and_webhooks_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(CONFIG)
    config = ServeConfig.load(path, {}, environ={})
    errors, drift = config.alerts
    assert (errors.kind, errors.threshold, errors.severity) == (
        AlertKind.ERROR_RATE_ABOVE,
        0.05,
        Severity.CRITICAL,
    )
    assert errors.window == timedelta(minutes=5) and errors.for_ == timedelta(minutes=2)
    assert (drift.name, drift.version, drift.feature) == ("fraud-data_drift-amount", "3", "amount")
    (hook,) = config.webhooks
    assert hook.headers == {"Authorization": "Bearer x"} and hook.retries == 1
    assert config.alert_interval == 15
    assert ServeConfig.load(path, {"alert_interval": 1.5}, environ={}).alert_interval == 1.5


def test_rules_from_the_environment_as_yaml_or_json() -> None:
    environ = {
        "SEAWAY_SERVE_MODELS": "models:/fraud/1",
        "SEAWAY_SERVE_ALERTS": '[{"model": "fraud", "p99_latency_above": 250}]',
        "SEAWAY_SERVE_WEBHOOKS": "- url: https://hooks.example.com/x",
        "SEAWAY_SERVE_ALERT_INTERVAL": "5",
    }
    config = ServeConfig.load(None, {}, environ=environ)
    assert config.alerts[0].name == "fraud-p99_latency_above"
    assert config.webhooks[0].url == "https://hooks.example.com/x"
    assert config.alert_interval == 5
    with pytest.raises(ConfigError, match="SEAWAY_SERVE_ALERTS is not valid YAML"):
        ServeConfig.load(None, {}, environ={**environ, "SEAWAY_SERVE_ALERTS": "[{"})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "alerts: [{model: a, error_rate_above: 0.1}, {model: a, error_rate_above: 0.2}]",
            "alerts: Value error, two alert rules are named 'a-error_rate_above'",
        ),
        ("alerts: [{model: a}]", "alerts.0: Value error, an alert rule takes exactly one of"),
        ("alerts: [{model: a, error_rate_above: 5%}]", "alerts.0.error_rate_above"),
        (
            "webhooks: [{url: hooks.example.com}]",
            "webhooks.0.url: Value error, 'hooks.example.com'",
        ),
        ("alert_interval: 0", "alert_interval: Input should be greater than 0"),
    ],
)
def test_bad_rules_are_refused_naming_the_problem(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(f"models: [m]\n{text}\n")
    with pytest.raises(ConfigError, match="invalid serve settings") as info:
        ServeConfig.load(path, {}, environ={})
    assert problem in str(info.value)
