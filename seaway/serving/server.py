"""Running the server: resolve models, start replicas, serve HTTP, shut down gracefully.

The HTTP listener comes up first (live, not ready) while replicas load and warm; readiness turns
true only when every model is ready. SIGTERM or SIGINT stops accepting connections, lets
in-flight requests finish (uvicorn's graceful shutdown), then drains the batchers and stops the
replicas. A model that fails to load stops the server with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import uvicorn
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seaway.errors import ConfigError, ModelLoadError
from seaway.packaging.reader import open_package
from seaway.registry import Registry
from seaway.registry.uri import is_model_uri, validate_name
from seaway.serving.dataplane import DataPlane
from seaway.serving.http.app import HttpOptions, create_app
from seaway.serving.model import ServedModel, ServingOptions

log = logging.getLogger("seaway.serving")


class ServeConfig(BaseModel):
    """Everything ``seaway serve`` takes; a config file holds the same keys as the flags."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    models: list[str] = Field(default_factory=list)
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    replicas: int = Field(default=1, ge=1, le=256)
    max_batch_size: int = Field(default=64, ge=1)
    max_latency_ms: float = Field(default=0.0, ge=0)
    max_queue: int = Field(default=2048, ge=1)
    timeout: float = Field(default=30.0, gt=0)
    max_body_size: int = Field(default=64 * 1024 * 1024, ge=1024)
    trusted: bool = False
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @classmethod
    def load(cls, path: Path | None, overrides: dict[str, Any]) -> ServeConfig:
        """Config file values, overridden by the flags that were given (not None)."""
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
        data.update({key: value for key, value in overrides.items() if value not in (None, [], ())})
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigError(f"invalid serve settings: {problems}") from exc
        if not config.models:
            raise ConfigError(
                "name at least one model to serve, e.g. seaway serve models:/fraud@production"
            )
        if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
            raise ConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
        return config

    def serving_options(self) -> ServingOptions:
        return ServingOptions(
            replicas=self.replicas,
            max_batch_size=self.max_batch_size,
            max_latency_ms=self.max_latency_ms,
            max_queue=self.max_queue,
            timeout=self.timeout,
            trusted=self.trusted,
        )


def resolve_models(config: ServeConfig, registry: Registry | None) -> list[ServedModel]:
    """Model URIs and package folders -> served models (not started yet)."""
    options = config.serving_options()
    served: dict[tuple[str, str], ServedModel] = {}
    for uri in config.models:
        if is_model_uri(uri):
            if registry is None:
                raise ConfigError(f"{uri} needs a registry")
            record = registry.resolve(uri)
            path = registry.fetch(record)
            model = ServedModel(
                record.name,
                str(record.version),
                str(path),
                record.manifest,
                options,
                manifest_sha256=record.manifest_sha256,
            )
        else:
            package = open_package(uri)
            name = validate_name(package.path.resolve().name)
            model = ServedModel(name, "1", str(package.path), package.manifest, options)
        served.setdefault((model.name, model.version), model)
    return list(served.values())


class _HttpServer(uvicorn.Server):
    """uvicorn without its signal handling: SIGTERM/SIGINT are ours (see ``serve``), so shutdown
    drains the replicas too and the process exits 0 rather than re-raising the signal."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(config: ServeConfig, models: list[ServedModel]) -> None:
    plane = DataPlane(request_timeout=config.timeout)
    plane.publish(models)
    app = create_app(plane, HttpOptions(max_body_bytes=config.max_body_size))
    server = _HttpServer(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=False,
            lifespan="off",
            ssl_certfile=config.ssl_certfile,
            ssl_keyfile=config.ssl_keyfile,
            timeout_graceful_shutdown=max(math.ceil(config.timeout), 5),
        )
    )
    failure: list[BaseException] = []

    async def load() -> None:
        results = await asyncio.gather(*(m.start() for m in models), return_exceptions=True)
        for model, result in zip(models, results, strict=True):
            if isinstance(result, BaseException):
                failure.append(result)
                log.error(
                    "model %s version %s failed to load: %s", model.name, model.version, result
                )
        if failure:
            server.should_exit = True
        else:
            log.info("ready: %s", ", ".join(f"{m.name}/{m.version}" for m in models))

    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if server.should_exit:  # a second signal: stop waiting for in-flight requests
            server.force_exit = True
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    loading = loop.create_task(load())
    try:
        await server.serve()
    finally:
        loading.cancel()
        await plane.stop(drain=True)
    if failure:
        error = failure[0]
        raise error if isinstance(error, ModelLoadError) else ModelLoadError(str(error))
