"""``seaway serve``: put registered models (or package folders) behind the inference server."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from seaway.batch.scheduler import Scheduler
from seaway.cli.state import state
from seaway.monitoring import logstore
from seaway.registry import Registry
from seaway.registry.uri import is_model_uri
from seaway.runtime import spawner
from seaway.serving import preflight
from seaway.serving.config import ServeConfig
from seaway.serving.logs import configure_logging
from seaway.serving.server import run

_PER_MODEL = "Per model: this flag, else the model's serving config, else the default."


def serve_command(
    ctx: typer.Context,
    models: Annotated[
        list[str] | None,
        typer.Argument(
            help="models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest, or a folder. "
            "Aliases and latest are followed: move the alias and the server swaps versions."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            envvar="SEAWAY_SERVE_CONFIG",
            help="YAML file with the same keys as the flags (SEAWAY_SERVE_<KEY> variables too).",
        ),
    ] = None,
    host: Annotated[str | None, typer.Option(help="Address to bind [default: 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port [default: 8080].")] = None,
    grpc: Annotated[
        bool | None, typer.Option("--grpc/--no-grpc", help="Serve gRPC too [default: on].")
    ] = None,
    grpc_port: Annotated[int | None, typer.Option(help="gRPC port [default: 8081].")] = None,
    replicas: Annotated[
        int | None,
        typer.Option(help=f"Worker processes per model version [default: 1]. {_PER_MODEL}"),
    ] = None,
    max_batch_size: Annotated[
        int | None,
        typer.Option(help=f"Rows per model call; 1 turns batching off [default: 64]. {_PER_MODEL}"),
    ] = None,
    max_latency_ms: Annotated[
        float | None,
        typer.Option(
            help="Under load, how long a freed replica may wait for its batch to fill; "
            f"0 = never wait [default: 5]. {_PER_MODEL}"
        ),
    ] = None,
    max_queue: Annotated[
        int | None,
        typer.Option(help=f"Requests waiting per model before 429 [default: 2048]. {_PER_MODEL}"),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(help=f"Per-request deadline in seconds [default: 30]. {_PER_MODEL}"),
    ] = None,
    call_timeout: Annotated[
        float | None,
        typer.Option(
            help="Seconds one model call may run before its replica is killed as hung "
            f"[default: a quarter of --timeout]. {_PER_MODEL}"
        ),
    ] = None,
    max_body_size: Annotated[
        int | None, typer.Option(help="Largest request body in bytes [default: 64 MiB].")
    ] = None,
    trusted: Annotated[
        bool | None,
        typer.Option("--trusted", help="Allow packages that run pickle or packaged code."),
    ] = None,
    poll_interval: Annotated[
        float | None,
        typer.Option(
            help="Seconds between registry checks for moved aliases and deployments; 0 = never [2]."
        ),
    ] = None,
    auth: Annotated[
        bool | None,
        typer.Option(
            "--auth", help="Require API keys (seaway keys create) on inference and admin."
        ),
    ] = None,
    rate_limit: Annotated[
        float | None,
        typer.Option(help="Requests/s per API key, unless the key sets its own [default: none]."),
    ] = None,
    ssl_certfile: Annotated[str | None, typer.Option(help="TLS certificate (PEM).")] = None,
    ssl_keyfile: Annotated[str | None, typer.Option(help="TLS private key (PEM).")] = None,
    log_level: Annotated[
        str | None, typer.Option(help="debug, info, warning or error [default: info].")
    ] = None,
    log_format: Annotated[
        str | None, typer.Option(help="json (one object per line) or text [default: json].")
    ] = None,
    access_log: Annotated[
        bool | None,
        typer.Option("--access-log/--no-access-log", help="Log every request [default: off]."),
    ] = None,
    scheduler: Annotated[
        bool | None,
        typer.Option(
            "--scheduler", help="Also run scheduled batch jobs (as 'seaway scheduler' does)."
        ),
    ] = None,
    workers: Annotated[
        str | None,
        typer.Option(
            help="Front processes that parse requests, each with its own replicas, sharing the "
            "ports; 'auto' = one per usable core [default: 1]."
        ),
    ] = None,
    log_sample: Annotated[
        float | None,
        typer.Option(
            help="Share of requests written to the prediction log, 0 to 1 [default: the "
            "model's serving config, else 0: off]."
        ),
    ] = None,
    log_store: Annotated[
        str | None,
        typer.Option(
            help="Folder or fsspec URL of the prediction log [default: "
            "<SEAWAY_HOME>/monitoring/predictions]."
        ),
    ] = None,
    log_retention: Annotated[
        str | None,
        typer.Option(
            help="Delete logged predictions older than this: 30d, 12h, 90m or never [30d]."
        ),
    ] = None,
    deployment: Annotated[
        list[str] | None,
        typer.Option(
            "--deployment",
            help="Serve this deployment of the registry by its name (repeat for more; '*': all "
            "of them, new ones too). See seaway deploy.",
        ),
    ] = None,
    log_exclude: Annotated[
        str | None,
        typer.Option(help="Inputs never logged, comma-separated (added to each model's own)."),
    ] = None,
    log_proba: Annotated[
        bool | None,
        typer.Option(
            "--log-proba/--no-log-proba",
            help="Logged requests of classifiers also log their probabilities, for estimated "
            "performance [default: for models logged with reference_labels].",
            show_default=False,
        ),
    ] = None,
    alert_interval: Annotated[
        float | None,
        typer.Option(help="Seconds between evaluations of the config's alert rules [default: 60]."),
    ] = None,
) -> None:
    """Serve models over the Open Inference Protocol (REST and gRPC) and MLflow's /invocations."""
    settings = ServeConfig.load(
        config,
        {
            "models": models,
            "host": host,
            "port": port,
            "grpc": grpc,
            "grpc_port": grpc_port,
            "replicas": replicas,
            "max_batch_size": max_batch_size,
            "max_latency_ms": max_latency_ms,
            "max_queue": max_queue,
            "timeout": timeout,
            "call_timeout": call_timeout,
            "max_body_size": max_body_size,
            "trusted": trusted,
            "poll_interval": poll_interval,
            "auth": auth,
            "rate_limit": rate_limit,
            "ssl_certfile": ssl_certfile,
            "ssl_keyfile": ssl_keyfile,
            "log_level": log_level,
            "log_format": log_format,
            "access_log": access_log,
            "scheduler": scheduler,
            "workers": workers,
            "log_sample": log_sample,
            "log_store": log_store,
            "log_retention": log_retention,
            "log_exclude": [n.strip() for n in log_exclude.split(",") if n.strip()]
            if log_exclude
            else None,
            "log_proba": log_proba,
            "alert_interval": alert_interval,
            "deployments": deployment,
        },
    )
    if settings.log_store is None:  # the home the CLI's --home and SEAWAY_HOME point at
        home = state(ctx).settings().home
        settings = settings.model_copy(update={"log_store": logstore.default_root(home)})
    if settings.worker_count == 1:  # several workers: each starts its own, once forked
        spawner.start_early(settings.models)  # its imports run beside the registry's opening
    needs_registry = (
        settings.auth
        or settings.scheduler
        or bool(settings.alerts)  # alert events are recorded there
        or any(is_model_uri(uri) for uri in settings.models)
        or bool(settings.deployments)
    )
    with contextlib.ExitStack() as stack:
        registry: Registry | None = None
        if needs_registry:
            registry = stack.enter_context(state(ctx).registry())
        # unknown models, missing folders, taken ports: one "Error:" line, before any log line
        preflight.check(settings, registry)
        configure_logging(settings.log_level, settings.log_format)
        background = [Scheduler(registry)] if settings.scheduler and registry is not None else []
        run(settings, registry, background)
