"""Alert rules the serve config once took and could never honour, or crashed on: an overflowing
or negative duration given as a number, an unknown metric, a threshold that is not a number."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.errors import ConfigError
from seaway.monitoring import alerts, metrics
from seaway.serving.config import ServeConfig


@pytest.mark.parametrize(
    ("rule", "problem"),
    [
        # timedelta(seconds=1e300) and of infinity raised OverflowError: a traceback at start
        ("error_rate_above: 0.1, window: 1.0e+300", "alerts.0.window"),
        ("error_rate_above: 0.1, window: .inf", "alerts.0.window"),
        ("error_rate_above: 0.1, window: 5m, for: -5", "alerts.0.for"),
        ("error_rate_above: 0.1, window: 5m, keep_firing_for: -1", "alerts.0.keep_firing_for"),
        # taken, then never computable: the rule could never fire
        ("accuracy_below: 0.8, metric: banana", "metric 'banana'"),
        ("estimated_accuracy_below: 0.8, metric: roc_auc", "metric 'roc_auc'"),
        ("accuracy_below: .nan", "accuracy_below must be a finite number"),
        ("p99_latency_above: .inf", "p99_latency_above must be a finite number"),
    ],
)
def test_a_rule_that_could_never_work_is_refused_at_start(
    tmp_path: Path, rule: str, problem: str
) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(f"models: [m]\nalerts: [{{model: m, {rule}}}]\n")
    with pytest.raises(ConfigError, match="invalid serve settings") as info:
        ServeConfig.load(path, {}, environ={})
    assert problem in str(info.value)


def test_every_metric_a_rule_may_name_is_one_performance_computes() -> None:
    assert set(metrics.CLASSIFIER_METRICS + metrics.REGRESSOR_METRICS) >= alerts.REALISED_METRICS
    assert alerts.ESTIMATED_METRICS <= alerts.REALISED_METRICS
    path_ok = {"accuracy_below": 0.1, "metric": "R2", "model": "m"}
    assert alerts.AlertRule.model_validate(path_ok).metric_name == "r2"
    assert alerts.AlertRule.model_validate({"model": "m", "for": 30, "error_rate_above": 0.1})


@pytest.mark.parametrize(
    ("hook", "problem"),
    [
        # the port was read only when the server built the webhook's label: a traceback at start
        ('url: "http://127.0.0.1:99999/x"', "'http://127.0.0.1:99999/x' is not a valid URL"),
        ('url: "http://host:abc/x"', "'http://host:abc/x' is not a valid URL"),
        ('url: "http://[::1/x"', "'http://[::1/x' is not a valid URL"),
        # taken, then every delivery failed in the HTTP client
        ('url: "http://h/x", headers: {"X-Token": "a\\nb"}', "header 'X-Token'"),
        ('url: "http://h/x", headers: {"Bad Name": "a"}', "header 'Bad Name'"),
    ],
)
def test_a_webhook_that_could_never_be_called_is_refused_at_start(
    tmp_path: Path, hook: str, problem: str
) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(f"models: [m]\nwebhooks: [{{{hook}}}]\n")
    with pytest.raises(ConfigError, match="invalid serve settings") as info:
        ServeConfig.load(path, {}, environ={})
    assert problem in str(info.value)
