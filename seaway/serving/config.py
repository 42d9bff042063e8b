"""``ServeConfig``: everything ``seaway serve`` takes. A YAML config file holds the same keys as the
flags (``--max-batch-size`` is ``max_batch_size``), and so does the environment
(``SEAWAY_SERVE_MAX_BATCH_SIZE``; ``SEAWAY_SERVE_MODELS`` separated by commas or spaces).
Precedence: a flag that is given, then the environment, then the file, then the defaults.

Batching, replicas and timeouts may also come from a model's own serving config (recorded when it
was logged, ``log_model(..., serving={...})``). Per model the order is: flag or config file, then
the model's serving config, then the defaults below. The prediction log's per-model settings
(``per_model``, in the file only) are resolved in ``seaway/serving/predlog.py``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from seaway.errors import ConfigError, InvalidInputError
from seaway.monitoring.alerts import AlertRule, Duration
from seaway.monitoring.durations import parse_duration
from seaway.packaging.manifest import Manifest
from seaway.serving.model import ServingOptions
from seaway.serving.webhooks import WebhookSpec

#: Defaults for what a model's serving config may also set.
DEFAULTS = ServingOptions()
ENV_PREFIX = "SEAWAY_SERVE_"
#: The config file's own variable (read by the CLI's ``--config``), not a setting.
CONFIG_ENV = "SEAWAY_SERVE_CONFIG"
_MAX_WORKERS = 64
#: settings given as lists: in the environment, separated by commas or spaces
_LISTS = ("models", "deployments", "log_exclude")


class ModelSettings(BaseModel):
    """What the serve config may set for one model (``per_model: {NAME: {...}}``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    log_sample: float | None = Field(default=None, ge=0, le=1)
    log_exclude: list[str] = Field(default_factory=list)
    log_proba: bool | None = None


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(default_factory=list)
    #: deployments served by name (``'*'``: every deployment in the registry); docs/deployments.md
    deployments: list[str] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    grpc: bool = True
    grpc_port: int = Field(default=8081, ge=0, le=65535)
    # per model (None: the model's serving config, else the default)
    replicas: int | None = Field(default=None, ge=1, le=256)
    max_batch_size: int | None = Field(default=None, ge=1)
    max_latency_ms: float | None = Field(default=None, ge=0)
    max_queue: int | None = Field(default=None, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    call_timeout: float | None = Field(default=None, gt=0)
    # server
    max_body_size: int = Field(default=64 * 1024 * 1024, ge=1024)
    trusted: bool = False
    poll_interval: float = Field(default=2.0, ge=0)
    #: how long a server's lease on a deployment's decisions lasts unrenewed, so how soon another
    #: server takes over from one that died (None: 3 poll intervals, at least 10 s)
    lease_seconds: float | None = Field(default=None, gt=0)
    auth: bool = False
    rate_limit: float | None = Field(default=None, gt=0)
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    access_log: bool = False
    #: run the batch scheduler in a background thread (``seaway serve --scheduler``)
    scheduler: bool = False
    #: front processes (``seaway/serving/workers.py``); ``auto``: one per usable core
    workers: int | Literal["auto"] = 1
    # the prediction log (docs/monitoring.md; per model: seaway/serving/predlog.py)
    #: share of requests logged (None: each model's own serving config, else 0: off)
    log_sample: float | None = Field(default=None, ge=0, le=1)
    #: where: a folder or fsspec URL (None: ``<SEAWAY_HOME>/monitoring/predictions``)
    log_store: str | None = None
    #: how long logged predictions are kept: ``30d``, ``12h``, ... or ``never``
    log_retention: str = "30d"
    #: inputs never logged, for every model
    log_exclude: list[str] = Field(default_factory=list)
    #: logged requests of a classifier also log its probabilities, for estimated performance
    #: (None: for the models whose package has a calibration; seaway/serving/predlog.py)
    log_proba: bool | None = None
    #: rows held for the writer before requests are dropped (and counted)
    log_buffer: int = Field(default=100_000, ge=1)
    #: a part file is written when this many rows wait ...
    log_flush_rows: int = Field(default=10_000, ge=1)
    #: ... or when the oldest has waited this many seconds
    log_flush_seconds: float = Field(default=60.0, gt=0)
    #: settings of one model, by name (config file only): ``{fraud: {log_sample: 1.0}}``
    per_model: dict[str, ModelSettings] = Field(default_factory=dict)
    #: alert rules (``seaway/monitoring/alerts.py``), evaluated every ``alert_interval`` seconds
    #: by worker 0 (``seaway/serving/alerting.py``); their events go to the registry and webhooks
    alerts: list[AlertRule] = Field(default_factory=list)
    webhooks: list[WebhookSpec] = Field(default_factory=list)
    alert_interval: float = Field(default=60.0, gt=0)
    #: the window of the drift and accuracy gauges in ``/metrics``
    monitor_window: Duration = timedelta(hours=1)

    @field_validator("alerts")
    @classmethod
    def _unique_rule_names(cls, rules: list[AlertRule]) -> list[AlertRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two alert rules are named {rule.name!r}; give each its own name")
            seen.add(rule.name)
        return rules

    @field_validator("log_retention")
    @classmethod
    def _retention(cls, value: str) -> str:
        text = str(value).strip().lower()
        if text != "never":
            try:
                parse_duration(text, what="log_retention")
            except InvalidInputError as exc:
                raise ValueError(str(exc)) from None
        return text

    @field_validator("workers", mode="before")
    @classmethod
    def _workers(cls, value: Any) -> Any:
        text = str(value).strip().lower()
        if text == "auto":
            return "auto"
        if not text.isdigit() or not 1 <= int(text) <= _MAX_WORKERS:
            raise ValueError(f"{value!r} is not a whole number from 1 to {_MAX_WORKERS}, or auto")
        return int(text)

    @classmethod
    def load(
        cls,
        path: Path | None,
        overrides: dict[str, Any],
        environ: Mapping[str, str] | None = None,
    ) -> ServeConfig:
        """Defaults < config file < ``SEAWAY_SERVE_*`` < the flags that were given (not None)."""
        env = os.environ if environ is None else environ
        data: dict[str, Any] = {}
        if path is not None:
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            except OSError as exc:
                raise ConfigError(f"cannot read serve config {path}: {exc.strerror}") from exc
            except yaml.YAMLError as exc:
                raise ConfigError(f"serve config {path} is not valid YAML: {exc}") from exc
            if not isinstance(data, dict):
                raise ConfigError(f"serve config {path} must be a mapping of settings")
        data.update(_from_environment(env))
        data.update({key: value for key, value in overrides.items() if value not in (None, [], ())})
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid serve settings: {problems}") from exc
        if not config.models and not config.deployments:
            raise ConfigError(
                "name at least one model to serve, e.g. seaway serve models:/fraud@production, "
                "or a deployment: seaway serve --deployment fraud"
            )
        lease = config.lease_seconds
        if lease is not None and config.poll_interval > 0 and lease < 2 * config.poll_interval:
            raise ConfigError(
                f"lease_seconds ({lease:g}) must be at least twice poll_interval "
                f"({config.poll_interval:g}): a server renews its leases once per poll, and would "
                "lose them between polls"
            )
        if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
            raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
        for flag, file in (
            ("--ssl-certfile", config.ssl_certfile),
            ("--ssl-keyfile", config.ssl_keyfile),
        ):
            if file is not None and not Path(file).is_file():
                raise ConfigError(f"{flag} {file} does not exist (or is not a file)")
        if config.grpc and config.grpc_port == config.port and config.port != 0:
            raise ConfigError(
                f"--port and --grpc-port are both {config.port}; give gRPC its own port "
                "or turn it off with --no-grpc"
            )
        if config.worker_count > 1 and sys.platform != "linux":
            raise ConfigError(
                "--workers above 1 needs Linux (the workers share their ports with SO_REUSEPORT)"
            )
        return config

    @property
    def worker_count(self) -> int:
        """How many front processes: ``workers``, with ``auto`` as the usable cores."""
        if self.workers == "auto":
            usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
            return max(1, len(usable) if usable else os.cpu_count() or 1)
        return self.workers

    @property
    def request_timeout(self) -> float:
        return self.timeout if self.timeout is not None else DEFAULTS.timeout or 30.0

    def serving_options(self, manifest: Manifest | None = None) -> ServingOptions:
        """Flags first, then the model's own serving config, then the defaults."""
        own = manifest.serving if manifest is not None and manifest.serving else None

        def pick(key: str) -> Any:
            flag = getattr(self, key)
            if flag is not None:
                return flag
            value = getattr(own, key, None) if own is not None else None
            return value if value is not None else getattr(DEFAULTS, key)

        return ServingOptions(
            replicas=pick("replicas"),
            max_batch_size=pick("max_batch_size"),
            max_latency_ms=pick("max_latency_ms"),
            max_queue=pick("max_queue"),
            timeout=pick("timeout"),
            trusted=self.trusted,
            call_timeout=pick("call_timeout"),
        )


#: settings whose environment variable holds YAML (or JSON): lists of mappings
_STRUCTURED = frozenset({"alerts", "webhooks"})


def _structured(key: str, raw: str) -> Any:
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{ENV_PREFIX}{key.upper()} is not valid YAML or JSON: {exc}") from exc


def _from_environment(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in ServeConfig.model_fields:
        raw = env.get(ENV_PREFIX + key.upper())
        if raw is None or raw == "":
            continue
        if key in _STRUCTURED:  # lists of mappings: YAML or JSON text
            values[key] = _structured(key, raw)
            continue
        values[key] = [part for part in re.split(r"[,\s]+", raw) if part] if key in _LISTS else raw
    unknown = sorted(
        name
        for name in env
        if name.startswith(ENV_PREFIX)
        and name != CONFIG_ENV
        and name[len(ENV_PREFIX) :].lower() not in ServeConfig.model_fields
    )
    if unknown:
        raise ConfigError(
            f"unknown serve setting(s) in the environment: {', '.join(unknown)}; known: "
            + ", ".join(ENV_PREFIX + key.upper() for key in ServeConfig.model_fields)
        )
    return values
