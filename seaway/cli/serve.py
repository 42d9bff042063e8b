"""``seaway serve``: put registered models (or package folders) behind the inference server."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer

from seaway.cli.state import state
from seaway.registry.uri import is_model_uri
from seaway.serving.server import ServeConfig, resolve_models, serve


def serve_command(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest, or a folder."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML file with the same keys as the flags."),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [default: 8080].")] = None,
    replicas: Annotated[
        int | None, typer.Option(help="Worker processes per model version [default: 1].")
    ] = None,
    max_batch_size: Annotated[
        int | None, typer.Option(help="Rows per model call; 1 disables batching [default: 64].")
    ] = None,
    max_latency_ms: Annotated[
        float | None, typer.Option(help="Longest wait to fill a batch [default: 0].")
    ] = None,
    max_queue: Annotated[
        int | None, typer.Option(help="Requests waiting per model before 429 [default: 2048].")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Per-request deadline in seconds [default: 30].")
    ] = None,
    max_body_size: Annotated[
        int | None, typer.Option(help="Largest request body in bytes [default: 64 MiB].")
    ] = None,
    trusted: Annotated[
        bool | None,
        typer.Option("--trusted", help="Allow packages that run pickle or packaged code."),
    ] = None,
    ssl_certfile: Annotated[str | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="TLS private key (PEM).")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error [default: info].")
    ] = None,
) -> None:
    """Serve models over the Open Inference Protocol (REST) and MLflow's /invocations."""
    settings = ServeConfig.load(
        config,
        {
            "models": models,
            "host": host,
            "port": port,
            "replicas": replicas,
            "max_batch_size": max_batch_size,
            "max_latency_ms": max_latency_ms,
            "max_queue": max_queue,
            "timeout": timeout,
            "max_body_size": max_body_size,
            "trusted": trusted,
            "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile,
            "log_level": log_level,
        },
    )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if any(is_model_uri(uri) for uri in settings.models):
        with state(ctx).registry() as registry:
            served = resolve_models(settings, registry)
    else:
        served = resolve_models(settings, None)
    asyncio.run(serve(settings, served))
