"""``seaway batch ...``: score files with a registered model; list and inspect the jobs."""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from seaway.batch import BatchOptions, run_job
from seaway.batch.driverlock import observed
from seaway.batch.progress import for_terminal
from seaway.cli import schedules
from seaway.cli.output import fields, fmt, log_lines, print_json, say, table
from seaway.cli.state import state
from seaway.errors import InvalidInputError
from seaway.monitoring import logstore
from seaway.registry.jobs import BatchJob, JobStore
from seaway.types import JobStatus

app = typer.Typer(
    help="Batch scoring of Parquet, CSV and JSON Lines files: chunked, parallel, resumable.",
    no_args_is_help=True,
)
app.add_typer(schedules.app, name="schedule")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@app.command("run")
def run(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Argument(help="models:/NAME@ALIAS, models:/NAME/VERSION or models:/NAME/latest."),
    ] = None,
    input: Annotated[
        str | None,
        typer.Option("--input", "-i", help="A file, a folder or a glob; local or any fsspec URL."),
    ] = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="A new (or this job's own) folder.")
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            help="Continue job JOB_ID from its last committed chunk (nothing else needed)."
        ),
    ] = None,
    keep: Annotated[
        str | None, typer.Option(help="Input columns to copy to the output, comma-separated.")
    ] = None,
    proba: Annotated[bool, typer.Option("--proba", help="Add class probabilities.")] = False,
    output_format: Annotated[
        str, typer.Option("--format", help="parquet or csv [default: parquet].")
    ] = "parquet",
    input_format: Annotated[
        str | None,
        typer.Option(help="parquet, csv or jsonl, when file names do not tell [default: by name]."),
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(help="For a model taking one array: its feature columns, in order."),
    ] = None,
    on_error: Annotated[
        str,
        typer.Option(help="skip: write bad rows to _rejects/ with the reason; fail: stop."),
    ] = "skip",
    workers: Annotated[
        int | None, typer.Option(help="Worker processes [default: the usable cores].")
    ] = None,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows per chunk: memory is about chunk size x 2 x workers.")
    ] = 100_000,
    engine: Annotated[
        str | None, typer.Option(help="local or ray [default: local; a resumed job's own].")
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address for --engine ray [default: local].")
    ] = None,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Allow packages that run pickle or packaged code.")
    ] = False,
    allow_changed_input: Annotated[
        bool,
        typer.Option(
            "--allow-changed-input",
            help="Continue a job even though an input file changed since it started.",
        ),
    ] = False,
    log_sample: Annotated[
        float | None,
        typer.Option(
            help="Share of scored rows written to the prediction log, 0 to 1 [default: the "
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
    log_exclude: Annotated[
        str | None,
        typer.Option(help="Inputs never logged, comma-separated (added to the model's own)."),
    ] = None,
) -> None:
    """Score files with a registered model; rerun with --resume JOB_ID (or the same output) to
    continue a job that was stopped."""
    log_lines("%(asctime)s %(message)s")
    if log_store:  # an unknown scheme or a missing extra: said now, not after every chunk
        logstore.open_store(log_store)
    signal.signal(signal.SIGTERM, _interrupt)  # recorded as interrupted, resumable
    with state(ctx).registry() as registry:
        if resume is not None:
            if model or input or output:
                raise InvalidInputError(
                    "--resume takes the job's own model, input and output; give only the job id"
                )
            job = run_job(
                registry,
                resume=resume,
                workers=workers,
                engine=engine,
                ray_address=address,
                progress=for_terminal(f"job {resume}"),
                allow_changed_input=allow_changed_input,
            )
        else:
            if not (model and input and output):
                raise InvalidInputError(
                    "name the model, --input and --output (or --resume JOB_ID), e.g. seaway batch "
                    "run models:/fraud@production --input data/ --output preds/"
                )
            options = BatchOptions(
                model=model,
                input=input,
                output=output,
                output_format=output_format,  # type: ignore[arg-type]
                input_format=input_format,
                keep=_names(keep),
                features=_names(features),
                proba=proba,
                on_error=on_error,  # type: ignore[arg-type]
                workers=workers,
                chunk_rows=chunk_rows,
                engine=engine or "local",  # type: ignore[arg-type]
                ray_address=address,
                trusted=trusted,
                log_sample=log_sample,
                log_store=log_store or logstore.default_root(state(ctx).settings().home),
                log_exclude=_names(log_exclude),
            )
            job = run_job(
                registry,
                options,
                progress=for_terminal(model),
                allow_changed_input=allow_changed_input,
            )
    _summary(job)


@app.command("list")
def list_jobs(
    ctx: typer.Context,
    status: Annotated[
        JobStatus | None, typer.Option(help="Only jobs in this state.", case_sensitive=False)
    ] = None,
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Batch jobs, newest first."""
    with state(ctx).registry(read_only=True) as registry:
        jobs = _listed(registry.jobs, limit, status)
    if as_json:
        print_json([job.to_dict() for job in jobs])
        return
    if not jobs:
        say("No batch jobs yet. Start one with 'seaway batch run'.")
        return
    table(
        "Batch jobs",
        ["job", "status", "model", "rows in", "out", "rejected", "duration", "started"],
        [
            [
                job.job_id,
                job.status.value,
                f"{job.model_name}/{job.model_version}",
                job.rows_in,
                job.rows_out,
                job.rows_rejected,
                _seconds(job.duration_s),
                job.started_at or job.created_at,
            ]
            for job in jobs
        ],
        identifiers=("job", "model"),
    )


@app.command("show")
def show(ctx: typer.Context, job_id: str, as_json: JsonOption = False) -> None:
    """One job: model version, input, output, counts, duration, error."""
    with state(ctx).registry(read_only=True) as registry:
        job = observed(registry.jobs.get(job_id))
    if as_json:
        print_json(job.to_dict())
        return
    fields(
        f"Batch job {job.job_id}",
        [
            ("status", job.status.value),
            ("model", f"models:/{job.model_name}/{job.model_version} (asked: {job.model_uri})"),
            ("input", job.input),
            ("output", job.output),
            ("rows in", job.rows_in),
            ("rows out", job.rows_out),
            ("rows rejected", job.rows_rejected),
            ("duration", _seconds(job.duration_s)),
            ("created", job.created_at),
            ("started", job.started_at),
            ("finished", job.finished_at),
            ("schedule", job.schedule),
            ("settings", ", ".join(f"{k}={fmt(v)}" for k, v in sorted(job.params.items()))),
            ("error", job.error),
        ],
    )


def _listed(store: JobStore, limit: int, status: JobStatus | None) -> list[BatchJob]:
    """The jobs as they are (``observed``): a ``running`` record whose driver is gone is listed
    as interrupted, and found by ``--status interrupted``."""
    if status not in (JobStatus.RUNNING, JobStatus.INTERRUPTED):
        return [observed(job) for job in store.list(limit=limit, status=status)]
    either = store.list(limit=limit, status=JobStatus.RUNNING)
    either += store.list(limit=limit, status=JobStatus.INTERRUPTED)
    either.sort(key=lambda job: (job.created_at is not None, job.created_at, job.job_id))
    jobs = [observed(job) for job in reversed(either)]
    return [job for job in jobs if job.status is status][:limit]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _summary(job: BatchJob) -> None:
    rejected = (
        f", {job.rows_rejected:,} rejected (see {job.output}/_rejects)" if job.rows_rejected else ""
    )
    say(
        f"Job {job.job_id} {job.status.value}: {job.rows_out:,} of {job.rows_in:,} rows scored"
        f"{rejected} in {_seconds(job.duration_s)} -> {job.output}",
        err=True,
    )


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f} s"
