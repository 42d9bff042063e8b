"""``seaway batch schedule ...`` (batch jobs on a cron) and ``seaway scheduler`` (what runs them)."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import FrameType
from typing import Annotated, Any

import typer

from seaway.batch.schedule import timezone_of
from seaway.batch.scheduler import (
    ScheduledRun,
    Scheduler,
    create_schedule,
    last_job,
    next_run,
)
from seaway.cli.output import fmt, log_lines, print_json, say, table
from seaway.cli.state import state
from seaway.types import JobStatus

log = logging.getLogger("seaway.batch.scheduler")

app = typer.Typer(
    help="Batch jobs on a cron: 'seaway scheduler' (or 'seaway serve --scheduler') runs them.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The schedule's name.")],
    cron: Annotated[
        str,
        typer.Option(help="When: five cron fields ('0 2 * * *' = 02:00 daily) or @daily, ..."),
    ],
    model: Annotated[
        str,
        typer.Option(help="models:/NAME@ALIAS (resolved at each run), models:/NAME/VERSION, ..."),
    ],
    input: Annotated[
        str,
        typer.Option(
            "--input", "-i", help="File, folder or glob; may hold {date}, e.g. data/{date}/."
        ),
    ],
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="A folder per run: must hold {date} (or finer), e.g. preds/{date}/.",
        ),
    ],
    timezone: Annotated[
        str, typer.Option(help="IANA timezone of the cron and the placeholders.")
    ] = "UTC",
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
    engine: Annotated[str, typer.Option(help="local or ray.")] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address for --engine ray [default: local].")
    ] = None,
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Allow packages that run pickle or packaged code.")
    ] = False,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Create it switched off (the scheduler skips it).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Create a schedule: run a batch job on a cron, each run into its own output folder."""
    options: dict[str, Any] = {
        "output_format": output_format,
        "input_format": input_format,
        "keep": _names(keep),
        "features": _names(features),
        "proba": proba,
        "on_error": on_error,
        "workers": workers,
        "chunk_rows": chunk_rows,
        "engine": engine,
        "ray_address": address,
        "trusted": trusted,
    }
    with state(ctx).registry() as registry:
        schedule = create_schedule(
            registry,
            name,
            cron=cron,
            model=model,
            input=input,
            output=output,
            timezone=timezone,
            options=options,
            enabled=not disabled,
        )
    upcoming = next_run(schedule, datetime.now(UTC))
    if as_json:
        print_json({**schedule.to_dict(), "next_run": _iso(upcoming)})
        return
    say(
        f"Created schedule {schedule.name}: {schedule.model_uri} on '{schedule.cron}' "
        f"({schedule.timezone}); "
        + (f"next run {fmt(upcoming)}" if upcoming else "disabled")
        + ". It runs where 'seaway scheduler' (or 'seaway serve --scheduler') runs.",
        err=True,
    )


@app.command("list")
def list_schedules(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Schedules with their next run, last occurrence, and last job and its status."""
    now = datetime.now(UTC)
    with state(ctx).registry(read_only=True) as registry:
        rows = [(s, next_run(s, now), last_job(registry, s)) for s in registry.schedules.list()]
    if as_json:
        print_json(
            [
                {
                    **schedule.to_dict(),
                    "next_run": _iso(upcoming),
                    "last_job_id": job.job_id if job else schedule.last_job_id,
                    "last_job_status": job.status.value if job else None,
                }
                for schedule, upcoming, job in rows
            ]
        )
        return
    if not rows:
        say("No schedules yet. Create one with 'seaway batch schedule create'.")
        return
    table(
        "Batch schedules",
        ["name", "cron", "timezone", "model", "next run", "last occurrence", "last job", "status"],
        [
            [
                schedule.name,
                schedule.cron,
                schedule.timezone,
                schedule.model_uri,
                _local(upcoming, schedule.timezone) if upcoming else "disabled",
                _local(schedule.last_occurrence, schedule.timezone),
                job.job_id if job else schedule.last_job_id,
                job.status.value if job else None,
            ]
            for schedule, upcoming, job in rows
        ],
        identifiers=("name", "model", "last job"),
    )


@app.command("delete")
def delete(ctx: typer.Context, name: str) -> None:
    """Delete a schedule (its jobs and their outputs stay)."""
    with state(ctx).registry() as registry:
        schedule = registry.schedules.delete(name)
    say(f"Deleted schedule {schedule.name}.", err=True)


def scheduler_command(
    ctx: typer.Context,
    poll_interval: Annotated[
        float, typer.Option(help="Seconds between looks at the schedules.", min=0.1)
    ] = 30.0,
    once: Annotated[
        bool,
        typer.Option("--once", help="Run what is due now, then exit (1 if a job failed)."),
    ] = False,
) -> None:
    """Run scheduled batch jobs as they fall due, until SIGTERM (which lets the running job
    finish; a second one interrupts it, resumable) or Ctrl-C."""
    log_lines("%(asctime)s %(levelname)s %(message)s")
    with state(ctx).registry() as registry:
        scheduler = Scheduler(registry, poll_seconds=poll_interval)
        runs: list[ScheduledRun] = []
        if once:
            _in_thread(scheduler, lambda: runs.extend(scheduler.tick()))
        else:
            _in_thread(scheduler, scheduler.run_forever)
    if once:
        _report(runs)


def _report(runs: list[ScheduledRun]) -> None:
    if not runs:
        say("Nothing was due.", err=True)
    for run in runs:
        what = f"job {run.job_id} {run.status.value}" if run.job_id and run.status else "no job"
        error = f": {run.error}" if run.error else ""
        say(f"{run.schedule} ({run.occurrence.isoformat()}): {what}{error}", err=True)
    if any(run.status is not JobStatus.SUCCEEDED for run in runs):
        raise typer.Exit(1)


def _in_thread(scheduler: Scheduler, work: Callable[[], None]) -> None:
    """Run ``work`` in a thread while this (main) thread takes the signals: the first SIGTERM
    stops the scheduler after the running job, a second interrupts it; Ctrl-C interrupts it."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            work()
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=target, name="seaway-scheduler")
    with _sigterm_stops() as heard:
        thread.start()
        acted = 0
        try:
            while thread.is_alive():
                thread.join(0.2)
                if heard[0] > acted:  # acted on here, never in the handler (see _sigterm_stops)
                    acted = heard[0]
                    if acted == 1:
                        log.info(
                            "stopping after the running job; send SIGTERM again to interrupt it"
                        )
                        scheduler.stop()
                    else:
                        log.info(
                            "interrupting the running job "
                            "(resume it with 'seaway batch run --resume')"
                        )
                        scheduler.stop(cancel_running=True)
        except KeyboardInterrupt:
            scheduler.stop(cancel_running=True)
            thread.join()
            raise
    if failures:
        raise failures[0]


@contextlib.contextmanager
def _sigterm_stops() -> Iterator[list[int]]:
    """Count SIGTERMs for the main loop to act on. The handler takes no lock: one that logged or
    set an ``Event`` deadlocked when a second signal arrived while the first handler held that
    same lock (both run in the main thread)."""
    heard = [0]

    def on_sigterm(_signum: int, _frame: FrameType | None) -> None:
        heard[0] += 1

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield heard
    finally:
        signal.signal(signal.SIGTERM, previous)


def _local(value: datetime | None, timezone: str) -> datetime | None:
    """A time as the schedule's own clock reads it."""
    return None if value is None else value.astimezone(timezone_of(timezone))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
