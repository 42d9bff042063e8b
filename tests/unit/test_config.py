"""Settings precedence: explicit > SEAWAY_* env > config file > defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from seaway.config import Settings
from seaway.errors import ConfigError


def test_defaults_live_under_home(tmp_path: Path) -> None:
    settings = Settings.resolve(home=tmp_path / "h", environ={})
    assert settings.registry_url == f"sqlite:///{tmp_path / 'h' / 'registry.db'}"
    assert settings.artifact_root == str(tmp_path / "h" / "artifacts")
    assert settings.cache_dir == tmp_path / "h" / "cache"


def test_default_home_is_dot_seaway_in_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Settings.resolve(environ={}).home == tmp_path / ".seaway"


def test_precedence_explicit_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = tmp_path / "seaway.yaml"
    config.write_text(
        "registry_url: sqlite:///from-file.db\nartifact_root: /from-file\ncache_dir: /cache-file\n"
    )
    env = {
        "SEAWAY_HOME": str(tmp_path / "env-home"),
        "SEAWAY_ARTIFACT_ROOT": "/from-env",
        "SEAWAY_CONFIG": str(config),
    }
    settings = Settings.resolve(registry_url="sqlite:///explicit.db", environ=env)
    assert settings.registry_url == "sqlite:///explicit.db"  # explicit beats file
    assert settings.artifact_root == "/from-env"  # env beats file
    assert settings.cache_dir == Path("/cache-file")  # file beats default
    assert settings.home == tmp_path / "env-home"
    assert (
        Settings.resolve(home=tmp_path / "x", environ=env).home == tmp_path / "x"
    )  # explicit beats env


def test_config_file_in_home_is_read_when_present(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("artifact_root: s3://bucket/models\n")
    assert Settings.resolve(home=tmp_path, environ={}).artifact_root == "s3://bucket/models"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("registry_url: [unclosed", "not valid YAML"),
        ("- a\n- b\n", "must hold a mapping"),
        ("home: /x\nregistyr_url: y\n", "unknown setting.*home, registyr_url"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Settings.resolve(config_file=config, environ={})


def test_a_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.resolve(environ={"SEAWAY_CONFIG": str(tmp_path / "nope.yaml")})


def test_errors_with_extra_arguments_survive_pickling() -> None:
    import pickle

    from seaway.errors import MissingDependencyError, RateLimitedError

    missing = pickle.loads(pickle.dumps(MissingDependencyError("ray", "ray", "The Ray engine")))
    assert str(missing).startswith("The Ray engine needs the 'ray' package")
    assert missing.extra == "ray"
    limited = pickle.loads(pickle.dumps(RateLimitedError("slow down", retry_after=2.5)))
    assert isinstance(limited, RateLimitedError) and limited.retry_after == 2.5
