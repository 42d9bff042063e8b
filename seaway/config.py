"""Settings, resolved once and passed in; nothing reads the environment at import time.

Precedence, highest first (documented in docs/configuration.md and tested):

1. explicit arguments (CLI flags, keyword arguments)
2. environment variables ``SEAWAY_*``
3. the config file: ``--config``/``SEAWAY_CONFIG``, else ``<home>/config.yaml`` when it exists
4. defaults: home ``./.seaway``, SQLite registry ``<home>/registry.db``, artifacts ``<home>/artifacts``
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from seaway.errors import ConfigError

#: Settings that may come from the environment, with their variable names.
ENV_VARS: dict[str, str] = {
    "home": "SEAWAY_HOME",
    "registry_url": "SEAWAY_REGISTRY_URL",
    "artifact_root": "SEAWAY_ARTIFACT_ROOT",
    "cache_dir": "SEAWAY_CACHE_DIR",
}
CONFIG_ENV_VAR = "SEAWAY_CONFIG"
#: Keys a config file may set. ``home`` is not among them: it locates the default config file.
FILE_KEYS = ("registry_url", "artifact_root", "cache_dir")


class Settings(BaseModel):
    """Where the registry and artifacts live. Build with :meth:`Settings.resolve`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    home: Path
    registry_url: str
    artifact_root: str
    cache_dir: Path

    @classmethod
    def resolve(
        cls,
        *,
        home: str | os.PathLike[str] | None = None,
        registry_url: str | None = None,
        artifact_root: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        config_file: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        env = os.environ if environ is None else environ
        explicit: dict[str, Any] = {
            "home": home,
            "registry_url": registry_url,
            "artifact_root": artifact_root,
            "cache_dir": cache_dir,
        }
        from_env = {key: env[var] for key, var in ENV_VARS.items() if env.get(var)}

        home_value = explicit["home"] or from_env.get("home") or ".seaway"
        home_path = Path(home_value).expanduser().absolute()

        file_path = config_file or env.get(CONFIG_ENV_VAR)
        from_file: dict[str, Any] = {}
        if file_path:
            from_file = _read_config_file(Path(file_path))
        elif (home_path / "config.yaml").is_file():
            from_file = _read_config_file(home_path / "config.yaml")

        def pick(key: str, default: Any) -> Any:
            for source in (explicit, from_env, from_file):
                if source.get(key):
                    return source[key]
            return default

        try:
            return cls(
                home=home_path,
                registry_url=pick("registry_url", f"sqlite:///{home_path / 'registry.db'}"),
                artifact_root=str(pick("artifact_root", str(home_path / "artifacts"))),
                cache_dir=Path(pick("cache_dir", home_path / "cache")).expanduser().absolute(),
            )
        except ValidationError as exc:  # pragma: no cover - all fields are coerced strings
            raise ConfigError(f"invalid settings: {exc}") from exc


def missing_sqlite_file(url: str) -> Path | None:
    """The file of a SQLite registry URL (``sqlite:///PATH``) that does not exist yet, else None
    (another database, in memory, or a file that exists). Readers use it to avoid creating one."""
    scheme, sep, rest = url.partition(":///")
    if not sep or scheme.split("+", 1)[0] != "sqlite":
        return None
    database = rest.split("?", 1)[0]
    if not database or database == ":memory:":
        return None
    path = Path(database).expanduser()
    return None if path.exists() else path


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of settings, not {type(data).__name__}"
        )
    unknown = sorted(set(data) - set(FILE_KEYS))
    if unknown:
        raise ConfigError(
            f"config file {path} has unknown setting(s) {', '.join(unknown)}; "
            f"known settings are {', '.join(FILE_KEYS)}"
        )
    return {key: str(value) for key, value in data.items() if value is not None}
