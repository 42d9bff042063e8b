"""The prediction log's serve settings: per model the most specific rate wins, exclusions add up;
flags, environment and file in the usual order; /metrics counts per model and version."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from seaway.errors import ConfigError, MissingDependencyError
from seaway.monitoring.predlog import LogConfig, PredictionLog
from seaway.packaging.manifest import FrameworkInfo, Manifest, ServingConfig
from seaway.serving.config import ServeConfig
from seaway.serving.metrics import Metrics
from seaway.serving.predlog import LogCollector, model_settings, open_log


def _manifest(serving: ServingConfig | None = None) -> Manifest:
    return Manifest(
        flavor="sklearn",
        framework=FrameworkInfo(name="scikit-learn", version="1"),
        python_version="3.11",
        seaway_version="0",
        created_at=datetime.now(UTC),
        serving=serving,
    )


def _config(
    path: Path | None = None, environ: dict[str, str] | None = None, **flags: object
) -> ServeConfig:
    return ServeConfig.load(path, {"models": ["m"], **flags}, environ=environ or {})


def test_logging_is_off_unless_something_turns_it_on() -> None:
    assert model_settings(_config(), "fraud", _manifest()) == (0.0, set())


def test_the_models_own_serving_config_logs_it() -> None:
    own = _manifest(ServingConfig(log_sample=0.25, log_exclude=["ssn"]))
    assert model_settings(_config(), "fraud", own) == (0.25, {"ssn"})


def test_the_flag_beats_the_models_own_rate_and_exclusions_add_up() -> None:
    own = _manifest(ServingConfig(log_sample=0.25, log_exclude=["ssn"]))
    config = _config(log_sample=1.0, log_exclude=["email"])
    assert model_settings(config, "fraud", own) == (1.0, {"ssn", "email"})


def test_a_models_entry_in_the_config_file_beats_the_global_rate(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(
        "log_sample: 0.1\nper_model:\n  fraud: {log_sample: 0.5, log_exclude: [card]}\n"
        "  quiet: {log_sample: 0}\n"
    )
    config = _config(path)
    assert model_settings(config, "fraud", _manifest()) == (0.5, {"card"})
    assert model_settings(config, "quiet", _manifest(ServingConfig(log_sample=1.0)))[0] == 0.0
    assert model_settings(config, "other", _manifest())[0] == 0.1


def test_environment_beats_file_and_flag_beats_environment(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("log_sample: 0.1\nlog_retention: 7d\n")
    env = {"SEAWAY_SERVE_LOG_SAMPLE": "0.2", "SEAWAY_SERVE_LOG_EXCLUDE": "email, ssn"}
    config = _config(path, env)
    assert (config.log_sample, config.log_retention, config.log_exclude) == (
        0.2,
        "7d",
        ["email", "ssn"],
    )
    assert _config(path, env, log_sample=0.3).log_sample == 0.3


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("log_sample", 1.5, "log_sample"),
        ("log_retention", "soon", "not a duration"),
        ("log_retention", "0d", "longer than zero"),
        ("log_buffer", 0, "log_buffer"),
    ],
)
def test_bad_log_settings_are_refused_by_name(setting: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _config(**{setting: value})


def test_a_bad_per_model_entry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("per_model:\n  fraud: {log_smaple: 0.5}\n")
    with pytest.raises(ConfigError, match="log_smaple"):
        _config(path)


def test_open_log_uses_the_settings(tmp_path: Path) -> None:
    config = _config(log_store=str(tmp_path), log_retention="never", log_buffer=7, log_flush_rows=3)
    log = open_log(config)
    assert log.config.root == str(tmp_path)
    assert log.config.retention is None
    assert (log.config.buffer_rows, log.config.flush_rows) == (7, 3)
    assert open_log(_config(log_retention="12h")).config.retention.total_seconds() == 43200  # type: ignore[union-attr]


def test_metrics_count_rows_and_drops_per_model_and_version(tmp_path: Path) -> None:
    log = PredictionLog(LogConfig(str(tmp_path), buffer_rows=2), rng=random.Random(0), start=False)
    handle = log.model("fraud", "3", sample=1.0)
    assert handle is not None
    for i in range(3):
        handle.record(np.zeros((1, 2)), {"predict": np.zeros(1)}, 1, 0.0, str(i))
    log.poll(force=True)
    metrics = Metrics()
    metrics.registry.register(LogCollector(log))
    text = metrics.render().decode()
    assert 'seaway_prediction_log_rows_total{model="fraud",version="3"} 2.0' in text
    assert 'seaway_prediction_log_dropped_total{model="fraud",version="3"} 1.0' in text
    assert 'seaway_prediction_log_write_errors_total{model="fraud",version="3"} 0.0' in text


def test_log_sample_without_pyarrow_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("seaway.serving.predlog.arrow_available", lambda: False)
    with pytest.raises(MissingDependencyError, match=r"seaway\[monitor\]"):
        open_log(_config(log_sample=0.5))
    open_log(_config())  # nothing asked: fine
