"""`seaway serve` settings: file vs flags, and per model: flag > model's serving config > default."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from seaway.errors import ConfigError
from seaway.packaging.manifest import FrameworkInfo, Manifest, ServingConfig
from seaway.serving.config import DEFAULTS, ServeConfig


def _manifest(serving: ServingConfig | None) -> Manifest:
    return Manifest(
        flavor="sklearn",
        framework=FrameworkInfo(name="scikit-learn", version="1"),
        python_version="3.11",
        seaway_version="0",
        created_at=datetime.now(UTC),
        serving=serving,
    )


def test_flag_beats_model_config_beats_default() -> None:
    config = ServeConfig.load(None, {"models": ["m"], "max_batch_size": 8}, environ={})
    own = _manifest(ServingConfig(max_batch_size=1, max_latency_ms=5, replicas=3))
    options = config.serving_options(own)
    assert options.max_batch_size == 8  # the flag
    assert options.max_latency_ms == 5 and options.replicas == 3  # the model's own
    assert options.max_queue == DEFAULTS.max_queue and options.timeout == DEFAULTS.timeout
    assert config.serving_options(_manifest(None)).replicas == DEFAULTS.replicas


def test_file_then_flags(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("models: ['models:/a/1']\nport: 9000\nreplicas: 2\naccess_log: true\n")
    config = ServeConfig.load(path, {"port": 9100, "replicas": None, "models": []})
    assert config.models == ["models:/a/1"]
    assert config.port == 9100 and config.replicas == 2 and config.access_log


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("models: [a]\nreplicas: 0\n", {}, "replicas"),
        ("models: [a]\nbatch: 3\n", {}, "batch"),
        ("- a\n- b\n", {}, "mapping"),
        ("models: [a\n", {}, "not valid YAML"),
        ("{}", {}, "at least one model"),
        ("models: [a]\nssl_certfile: c.pem\n", {}, "both --ssl-certfile and --ssl-keyfile"),
        ("models: [a]\nport: 9000\ngrpc_port: 9000\n", {}, "--no-grpc"),
        ("models: [a]\nlog_format: xml\n", {}, "log_format"),
        (
            "models: [a]\nlease_seconds: 3\n",
            {},
            r"lease_seconds \(3\) .* twice poll_interval \(2\)",
        ),
    ],
)
def test_bad_settings_name_the_problem(
    tmp_path: Path, text: str, overrides: dict[str, object], message: str
) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        ServeConfig.load(path, overrides)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read serve config"):
        ServeConfig.load(tmp_path / "nope.yaml", {"models": ["a"]})


def test_a_model_records_its_serving_config(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.linear_model import LinearRegression

    import seaway
    from seaway.errors import PackagingError
    from seaway.packaging.reader import open_package

    x = np.arange(8.0).reshape(4, 2)
    model = LinearRegression().fit(x, x.sum(axis=1))
    seaway.save_model(model, tmp_path / "p", sample_input=x, serving={"max_batch_size": 1})
    assert open_package(tmp_path / "p").manifest.serving == ServingConfig(max_batch_size=1)
    with pytest.raises(PackagingError, match="batch_size"):
        seaway.save_model(model, tmp_path / "q", sample_input=x, serving={"batch_size": 1})
    with pytest.raises(PackagingError, match="max_batch_size"):
        seaway.save_model(model, tmp_path / "r", sample_input=x, serving={"max_batch_size": 0})
    assert not (tmp_path / "q").exists()


def test_environment_sits_between_flags_and_file(tmp_path: Path) -> None:
    path = tmp_path / "serve.yaml"
    path.write_text("models: ['models:/a/1']\nport: 9000\nreplicas: 2\n")
    env = {
        "SEAWAY_SERVE_PORT": "9200",
        "SEAWAY_SERVE_AUTH": "true",
        "SEAWAY_SERVE_MODELS": "models:/b/1, models:/c@prod",
        "SEAWAY_SERVE_CONFIG": str(path),  # the CLI's --config variable, not a setting
        "SEAWAY_HOME": "/elsewhere",  # other Seaway variables are not serve settings
    }
    config = ServeConfig.load(path, {"replicas": 3}, environ=env)
    assert config.port == 9200 and config.auth is True  # environment over file
    assert config.replicas == 3  # flag over file
    assert config.models == ["models:/b/1", "models:/c@prod"]
    flagged = ServeConfig.load(path, {"port": 9300}, environ=env)
    assert flagged.port == 9300  # flag over environment


def test_unknown_or_bad_environment_settings_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SEAWAY_SERVE_PORTT"):
        ServeConfig.load(None, {"models": ["a"]}, environ={"SEAWAY_SERVE_PORTT": "1"})
    with pytest.raises(ConfigError, match="port"):
        ServeConfig.load(None, {"models": ["a"]}, environ={"SEAWAY_SERVE_PORT": "eighty"})


def test_the_call_timeout_is_its_own_setting_shorter_than_the_deadline_by_default() -> None:
    plain = ServeConfig.load(None, {"models": ["m"]}, environ={}).serving_options(_manifest(None))
    assert plain.call_timeout is None and plain.model_call_timeout == 0.25 * plain.timeout
    # the model's own: its deadline, its call timeout; then the flag and the environment
    own = _manifest(ServingConfig(timeout=8, call_timeout=3))
    config = ServeConfig.load(None, {"models": ["m"]}, environ={})
    assert config.serving_options(own).model_call_timeout == 3
    config = ServeConfig.load(None, {"models": ["m"]}, environ={"SEAWAY_SERVE_CALL_TIMEOUT": "2"})
    assert config.serving_options(own).model_call_timeout == 2
    deadline_only = _manifest(ServingConfig(timeout=8))
    assert config.serving_options(deadline_only).timeout == 8
    config = ServeConfig.load(None, {"models": ["m"]}, environ={})
    assert config.serving_options(deadline_only).model_call_timeout == 2  # a quarter of 8
    with pytest.raises(ConfigError, match="call_timeout"):
        ServeConfig.load(None, {"models": ["m"], "call_timeout": 0}, environ={})


def test_workers_a_count_or_auto_from_flag_environment_or_file(tmp_path: Path) -> None:
    import os

    base = {"models": ["models:/m/1"]}
    assert ServeConfig.load(None, base, {}).worker_count == 1  # one process unless asked
    assert ServeConfig.load(None, base, {"SEAWAY_SERVE_WORKERS": "3"}).worker_count == 3
    file = tmp_path / "serve.yaml"
    file.write_text("workers: auto\n")
    assert ServeConfig.load(file, base, {}).worker_count == len(os.sched_getaffinity(0))
    assert ServeConfig.load(file, {**base, "workers": "2"}, {}).worker_count == 2
    for bad in ("0", "two", "1.5", "65"):
        with pytest.raises(ConfigError, match=f"workers: .*{bad}.* from 1 to 64, or auto"):
            ServeConfig.load(None, {**base, "workers": bad}, {})
